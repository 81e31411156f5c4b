//! Chunks from a mimalloc heap whose arena is memory bound to one NUMA node.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use libmimalloc_sys as mi;
use stratacache_platform::{Binding, PlacementError, bind_to_node};

use super::source::{ChunkSource, SourceKind};

/// mimalloc wants an arena's start and size aligned to its segment alignment (32 MiB on
/// 64-bit targets), and no arena smaller than `mi_arena_min_size()`.
const SEGMENT_ALIGN: usize = 32 << 20;

/// A mimalloc heap allocating only from an exclusive arena on one node.
pub(crate) struct NodeHeap {
    heap: NonNull<mi::mi_heap_t>,
    node: u32,
    capacity: usize,
    allocated: usize,
}

// SAFETY: mimalloc v3 heaps accept allocations and frees from any thread; the source is used
// by one thread at a time (under the arena's carver lock).
unsafe impl Send for NodeHeap {}

/// Why a node-bound mimalloc source could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeArenaError {
    /// Fewer bytes than mimalloc's smallest arena.
    TooSmall {
        /// The bytes asked for.
        bytes: usize,
        /// mimalloc's minimum (`mi_arena_min_size()`, 32 MiB).
        minimum: usize,
    },
    /// The memory could not be reserved.
    OutOfMemory {
        /// The bytes asked for.
        bytes: usize,
    },
    /// The memory could not be bound to the node (an unknown or offline node, a kernel
    /// without NUMA support).
    Bind(PlacementError),
    /// mimalloc refused the memory as an arena, or to make a heap in it.
    Refused,
}

impl fmt::Display for NodeArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { bytes, minimum } => write!(
                f,
                "a mimalloc arena of {bytes} bytes is below mimalloc's minimum of {minimum}"
            ),
            Self::OutOfMemory { bytes } => write!(f, "could not reserve {bytes} bytes"),
            Self::Bind(err) => write!(f, "could not bind the arena to its node: {err}"),
            Self::Refused => f.write_str("mimalloc refused the arena or its heap"),
        }
    }
}

impl core::error::Error for NodeArenaError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Bind(err) => Some(err),
            _ => None,
        }
    }
}

impl ChunkSource {
    /// Chunks from a mimalloc heap in an exclusive mimalloc arena of `bytes` (rounded up to
    /// 32 MiB) bound to NUMA node `node` (`mbind`, preferred), so everything the arena carves
    /// lives on that node. Feature `mimalloc`.
    ///
    /// mimalloc has no way to retire an arena, so the reserved memory stays mapped for the
    /// life of the process: make one source per node and keep it.
    ///
    /// # Errors
    /// [`NodeArenaError`]: too small, no memory, a node the kernel cannot bind to, or
    /// mimalloc refusing.
    pub fn mimalloc_node(node: u32, bytes: usize) -> Result<Self, NodeArenaError> {
        // SAFETY: a plain query.
        let minimum = unsafe { mi::mi_arena_min_size() }.max(SEGMENT_ALIGN);
        if bytes < minimum {
            return Err(NodeArenaError::TooSmall { bytes, minimum });
        }
        let capacity = bytes
            .checked_next_multiple_of(SEGMENT_ALIGN)
            .ok_or(NodeArenaError::OutOfMemory { bytes })?;
        let layout = Layout::from_size_align(capacity, SEGMENT_ALIGN)
            .map_err(|_| NodeArenaError::OutOfMemory { bytes })?;
        // SAFETY: a non-zero size. The memory is handed to mimalloc for good below (mimalloc
        // cannot give an arena back), so it is never freed.
        let start = NonNull::new(unsafe { std::alloc::alloc(layout) })
            .ok_or(NodeArenaError::OutOfMemory { bytes })?;
        // SAFETY: the allocation above is `capacity` bytes, ours; uninitialised bytes are
        // fine as `MaybeUninit`.
        let memory: &[MaybeUninit<u8>] =
            unsafe { core::slice::from_raw_parts(start.as_ptr().cast(), capacity) };
        if let Err(err) = bind_to_node(memory, node, Binding::Preferred) {
            // SAFETY: allocated above with this layout, not handed to mimalloc.
            unsafe { std::alloc::dealloc(start.as_ptr(), layout) };
            return Err(NodeArenaError::Bind(err));
        }
        let mut arena: mi::mi_arena_id_t = core::ptr::null_mut();
        // SAFETY: the area is ours, aligned to mimalloc's segment alignment and a multiple of
        // it; it is committed (allocated memory), not known to be zero.
        let managed = unsafe {
            mi::mi_manage_os_memory_ex(
                start.as_ptr().cast::<c_void>(),
                capacity,
                true,
                false,
                false,
                node as i32,
                true,
                &mut arena,
            )
        };
        if !managed {
            // SAFETY: mimalloc refused it, so it is still only ours.
            unsafe { std::alloc::dealloc(start.as_ptr(), layout) };
            return Err(NodeArenaError::Refused);
        }
        // SAFETY: `arena` was just created by mimalloc.
        let heap = NonNull::new(unsafe { mi::mi_heap_new_in_arena(arena) })
            .ok_or(NodeArenaError::Refused)?;
        Ok(Self {
            kind: SourceKind::Mimalloc(NodeHeap {
                heap,
                node,
                capacity,
                allocated: 0,
            }),
        })
    }
}

impl NodeHeap {
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn node(&self) -> u32 {
        self.node
    }

    pub(crate) fn available(&self) -> usize {
        self.capacity - self.allocated
    }

    pub(crate) fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: the heap is live (deleted only on drop); any size and power-of-two
        // alignment is a valid request.
        let chunk = unsafe {
            mi::mi_heap_malloc_aligned(self.heap.as_ptr(), layout.size(), layout.align())
        };
        let chunk = NonNull::new(chunk.cast::<u8>())?;
        self.allocated += layout.size();
        Some(chunk)
    }

    /// # Safety
    /// `chunk` came from [`allocate`](Self::allocate) and is not used any more.
    pub(crate) unsafe fn release(&mut self, chunk: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees the chunk is this heap's and unused.
        unsafe { mi::mi_free(chunk.as_ptr().cast()) };
        self.allocated -= layout.size();
    }
}

impl Drop for NodeHeap {
    fn drop(&mut self) {
        // SAFETY: the heap is live, and every chunk from it was released by the arena's drop
        // before its source drops. Deleting a heap hands its pages back to the arena.
        unsafe { mi::mi_heap_delete(self.heap.as_ptr()) };
    }
}

impl fmt::Debug for NodeHeap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSource::MimallocNode")
            .field("node", &self.node)
            .field("capacity", &self.capacity)
            .field("allocated", &self.allocated)
            .finish()
    }
}
