//! Where an arena's chunks come from: the global allocator, a caller's memory region, or
//! (feature `mimalloc`) a mimalloc heap in an arena bound to a NUMA node.

use core::alloc::Layout;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// The source of an [`Arena`](crate::Arena)'s chunks: large blocks it carves into spans and
/// large size classes, and gives back only when it drops.
///
/// ```
/// use core::mem::MaybeUninit;
/// use stratacache_alloc::ChunkSource;
///
/// let global = ChunkSource::global();
/// // A region must outlive everything carved from it: leak one, or use a `static`.
/// let region: &'static mut [MaybeUninit<u8>] =
///     Box::leak(vec![MaybeUninit::uninit(); 1 << 20].into_boxed_slice());
/// let region = ChunkSource::region(region);
/// assert_eq!(region.capacity(), Some(1 << 20));
/// # let _ = global;
/// ```
pub struct ChunkSource {
    pub(crate) kind: SourceKind,
}

pub(crate) enum SourceKind {
    Global,
    /// The global allocator, each chunk bound to this node before it is touched.
    #[cfg(all(feature = "std", target_os = "linux"))]
    GlobalOnNode(u32),
    Region(Region),
    #[cfg(feature = "mimalloc")]
    Mimalloc(super::mimalloc::NodeHeap),
}

/// A caller's memory region, carved front to back.
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    used: usize,
}

// SAFETY: the region is memory the source owns outright (the caller gave it up for as long as
// the source lives); moving the source to another thread moves that ownership with it.
unsafe impl Send for Region {}

impl ChunkSource {
    /// Chunks from the global allocator, returned to it when the arena drops.
    pub const fn global() -> Self {
        Self {
            kind: SourceKind::Global,
        }
    }

    /// Chunks from the global allocator, each bound to NUMA node `node` (`mbind`, preferred)
    /// before anything touches it, so the blocks carved from them live on that node. Feature
    /// `std`, Linux.
    ///
    /// # Errors
    /// When the kernel refuses to bind memory to `node` (tried on one page here): a node that
    /// is not online, or a kernel without NUMA support.
    #[cfg(all(feature = "std", target_os = "linux"))]
    pub fn global_on_node(node: u32) -> Result<Self, stratacache_platform::PlacementError> {
        let probe = alloc::vec![0u8; 2 * 4096];
        stratacache_platform::bind_to_node(&probe, node, stratacache_platform::Binding::Preferred)?;
        Ok(Self {
            kind: SourceKind::GlobalOnNode(node),
        })
    }

    /// The node this source binds its chunks to, if it binds them.
    pub fn node(&self) -> Option<u32> {
        match &self.kind {
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(node) => Some(*node),
            #[cfg(feature = "mimalloc")]
            SourceKind::Mimalloc(heap) => Some(heap.node()),
            _ => None,
        }
    }

    /// Chunks carved from `region`, so the arena needs no global allocator for its blocks and
    /// can never hold more than the region.
    pub fn region(region: &'static mut [MaybeUninit<u8>]) -> Self {
        let len = region.len();
        // A slice's pointer is never null.
        let base = NonNull::from(region).cast::<u8>();
        Self {
            kind: SourceKind::Region(Region { base, len, used: 0 }),
        }
    }

    /// Chunks carved from the `len` bytes at `base`, for memory the caller manages itself (a
    /// linker section, a mapping, a buffer it frees after the arena drops).
    ///
    /// # Safety
    /// The `len` bytes at `base` are valid for reads and writes, are used by nothing else, and
    /// stay so until the arena built from this source has dropped.
    pub unsafe fn from_raw_region(base: NonNull<u8>, len: usize) -> Self {
        Self {
            kind: SourceKind::Region(Region { base, len, used: 0 }),
        }
    }

    /// The most bytes this source can ever provide, when it is bounded (a region).
    pub fn capacity(&self) -> Option<usize> {
        match &self.kind {
            SourceKind::Global => None,
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(_) => None,
            SourceKind::Region(region) => Some(region.len),
            #[cfg(feature = "mimalloc")]
            SourceKind::Mimalloc(heap) => Some(heap.capacity()),
        }
    }

    /// Bytes the source can still provide at `align` (`usize::MAX` when unbounded).
    pub(crate) fn available(&self, align: usize) -> usize {
        match &self.kind {
            SourceKind::Global => usize::MAX,
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(_) => usize::MAX,
            SourceKind::Region(region) => {
                let start = region.base.as_ptr() as usize + region.used;
                let pad = start.next_multiple_of(align) - start;
                (region.len - region.used).saturating_sub(pad)
            }
            #[cfg(feature = "mimalloc")]
            SourceKind::Mimalloc(heap) => heap.available(),
        }
    }

    /// A chunk of `layout`, or `None` when the source is exhausted or refuses.
    pub(crate) fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        match &mut self.kind {
            // SAFETY: the layout has a non-zero size (the carver asks for whole chunks).
            SourceKind::Global => NonNull::new(unsafe { alloc::alloc::alloc(layout) }),
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(node) => {
                // SAFETY: as above.
                let chunk = NonNull::new(unsafe { alloc::alloc::alloc(layout) })?;
                // SAFETY: the chunk is `layout.size()` bytes, ours; viewed as uninitialised
                // bytes, which is what they are.
                let memory: &[core::mem::MaybeUninit<u8>] =
                    unsafe { core::slice::from_raw_parts(chunk.as_ptr().cast(), layout.size()) };
                // Best effort once the node was checked: a refusal leaves the chunk where the
                // kernel put it, which changes only where it lives.
                let _ = stratacache_platform::bind_to_node(
                    memory,
                    *node,
                    stratacache_platform::Binding::Preferred,
                );
                Some(chunk)
            }
            SourceKind::Region(region) => {
                let start = region.base.as_ptr() as usize + region.used;
                let offset = start.next_multiple_of(layout.align()) - start + region.used;
                let end = offset.checked_add(layout.size())?;
                if end > region.len {
                    return None;
                }
                region.used = end;
                // SAFETY: offset < end <= len: inside the region, whose pointer's provenance
                // the chunk keeps.
                Some(unsafe { region.base.add(offset) })
            }
            #[cfg(feature = "mimalloc")]
            SourceKind::Mimalloc(heap) => heap.allocate(layout),
        }
    }

    /// Gives a chunk back.
    ///
    /// # Safety
    /// `chunk` came from [`allocate`](Self::allocate) on this source with this `layout`, and
    /// nothing uses it any more.
    pub(crate) unsafe fn release(&mut self, chunk: NonNull<u8>, layout: Layout) {
        match &mut self.kind {
            // SAFETY: the caller guarantees the chunk came from the global allocator with
            // this layout.
            SourceKind::Global => unsafe { alloc::alloc::dealloc(chunk.as_ptr(), layout) },
            // SAFETY: as above.
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(_) => unsafe { alloc::alloc::dealloc(chunk.as_ptr(), layout) },
            // A region is handed back whole, when the source drops.
            SourceKind::Region(_) => {}
            #[cfg(feature = "mimalloc")]
            // SAFETY: the caller guarantees the chunk came from this heap.
            SourceKind::Mimalloc(heap) => unsafe { heap.release(chunk, layout) },
        }
    }
}

impl fmt::Debug for ChunkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SourceKind::Global => f.write_str("ChunkSource::Global"),
            #[cfg(all(feature = "std", target_os = "linux"))]
            SourceKind::GlobalOnNode(node) => write!(f, "ChunkSource::GlobalOnNode({node})"),
            SourceKind::Region(region) => f
                .debug_struct("ChunkSource::Region")
                .field("len", &region.len)
                .field("used", &region.used)
                .finish(),
            #[cfg(feature = "mimalloc")]
            SourceKind::Mimalloc(heap) => fmt::Debug::fmt(heap, f),
        }
    }
}
