//! [`MemoryHandle`]: the global allocator or an arena lane, chosen when a collection is made.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

use super::arena::{Arena, ArenaHandle};

/// Where a long-lived collection's memory comes from: the global allocator (the default) or a
/// lane of an [`Arena`]. One concrete allocator type, so a cache's tables have the same type
/// whichever the embedder chose.
///
/// ```
/// use std::sync::Arc;
/// use allocator_api2::vec::Vec;
/// use stratacache_alloc::{Arena, MemoryHandle};
///
/// let arena = Arc::new(Arena::new());
/// let mut on_arena: Vec<u32, MemoryHandle> = Vec::new_in(MemoryHandle::arena(&arena, 3));
/// let mut on_global: Vec<u32, MemoryHandle> = Vec::new_in(MemoryHandle::global());
/// on_arena.push(1);
/// on_global.push(2);
/// assert_eq!(arena.stats().in_use, 16); // the vector's first block, of the 16-byte class
/// ```
#[derive(Clone, Default)]
pub struct MemoryHandle {
    arena: Option<ArenaHandle>,
}

impl MemoryHandle {
    /// The global allocator.
    pub const fn global() -> Self {
        Self { arena: None }
    }

    /// `arena`, on `lane` (modulo [`LANES`](crate::LANES)).
    pub fn arena(arena: &alloc::sync::Arc<Arena>, lane: usize) -> Self {
        Self {
            arena: Some(Arena::handle(arena, lane)),
        }
    }

    /// The arena, when the memory comes from one.
    pub fn as_arena(&self) -> Option<&Arena> {
        self.arena.as_ref().map(ArenaHandle::arena)
    }
}

impl fmt::Debug for MemoryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arena {
            None => f.write_str("MemoryHandle::Global"),
            Some(handle) => f
                .debug_tuple("MemoryHandle::Arena")
                .field(&handle.lane())
                .finish(),
        }
    }
}

// SAFETY: every call is forwarded to one allocator, fixed when the handle was made and shared
// by its clones, so blocks are freed by the allocator that made them.
unsafe impl Allocator for MemoryHandle {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        match &self.arena {
            None => Global.allocate(layout),
            Some(handle) => handle.allocate(layout),
        }
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        match &self.arena {
            // SAFETY: forwarded: the caller's contract, to the allocator that made the block.
            None => unsafe { Global.deallocate(ptr, layout) },
            // SAFETY: as above.
            Some(handle) => unsafe { handle.deallocate(ptr, layout) },
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match &self.arena {
            // SAFETY: forwarded: the caller's contract, to the allocator that made the block.
            None => unsafe { Global.grow(ptr, old, new) },
            // SAFETY: as above.
            Some(handle) => unsafe { handle.grow(ptr, old, new) },
        }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match &self.arena {
            // SAFETY: forwarded: the caller's contract, to the allocator that made the block.
            None => unsafe { Global.shrink(ptr, old, new) },
            // SAFETY: as above.
            Some(handle) => unsafe { handle.shrink(ptr, old, new) },
        }
    }
}
