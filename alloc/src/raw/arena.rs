//! The arena: size-class slabs over chunks from a [`ChunkSource`].

use core::alloc::Layout;
use core::fmt;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};
use crossbeam_utils::CachePadded;

use super::carver::{Carver, LargeFree};
use super::source::ChunkSource;
use super::span::{MIN_SPAN, SPAN, Span, SpanLists};
use crate::class::{Class, LARGE_ALIGN_MAX, LARGE_CLASSES, SMALL_CLASSES, SMALL_SIZES, large_size};
use crate::stats::{ArenaStats, ClassStats};
use crate::sync::{AtomicPtr, AtomicUsize, Mutex, Ordering};

/// How many lanes an arena has: each lane keeps its own current span per size class, so
/// threads or shards on different lanes allocate from different spans (in an arena with a
/// budget they share a span while it has room, so a small budget is not spread over a span
/// per lane).
#[cfg(not(loom))]
pub const LANES: usize = 16;
/// How many lanes an arena has (two under loom).
#[cfg(loom)]
pub const LANES: usize = 2;

/// A lane's current span per small class.
type LaneHints = CachePadded<[AtomicPtr<Span>; SMALL_CLASSES]>;

/// Size-class slabs carved from large chunks, for a cache's nodes, slots and tables.
///
/// - **Small requests** (up to 8 KiB, aligned up to 1 KiB) take a block of their size class
///   from a 64 KiB span, claiming a bit of the span's free bitmap with one compare-and-swap:
///   lock-free, no global lock, and each [lane](Self::handle) has its own current span per
///   class. A freed block goes back to its span's bitmap from any thread.
/// - **Large requests** (powers of two from 16 KiB, aligned up to 4 KiB) are rare — a table
///   or a slot array growing — and reuse freed blocks of their class through a short
///   per-class lock.
/// - Spans and large blocks are carved from chunks (4 MiB, or one of its own for a block
///   that large) taken from the [`ChunkSource`], never more than the budget in all. Chunks go
///   back to the source only when the arena drops, so the arena never shrinks: freed blocks
///   are reused by their class, and [`stats`](Self::stats) reports what is reserved but not
///   in use.
///
/// It implements [`allocator_api2::alloc::Allocator`] (as do `&Arena` and [`ArenaHandle`]),
/// so `hashbrown` tables and `allocator_api2` vectors allocate from it.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use stratacache_alloc::{Arena, ChunkSource};
///
/// let arena = Arena::builder().source(ChunkSource::global()).budget(8 << 20).build()?;
/// let mut slots: Vec<u64, &Arena> = Vec::new_in(&arena);
/// slots.extend(0..1000);
/// let stats = arena.stats();
/// assert!(stats.in_use >= 8 * 1000 && stats.reserved <= 8 << 20);
/// # Ok::<(), stratacache_alloc::ArenaError>(())
/// ```
pub struct Arena {
    small: [SpanLists; SMALL_CLASSES],
    large: [Mutex<LargeFree>; LARGE_CLASSES],
    lanes: [LaneHints; LANES],
    carver: Mutex<Carver>,
    /// Bytes taken from the source (a copy of the carver's count, read without its lock).
    reserved: AtomicUsize,
    limit: Option<usize>,
    /// The bytes of a span (see [`ArenaBuilder::span`]).
    span: usize,
}

/// An [`Arena`] shared by owner, on one lane: what a long-lived collection (a cache shard's
/// table) holds as its allocator.
#[derive(Clone)]
pub struct ArenaHandle {
    arena: alloc::sync::Arc<Arena>,
    lane: usize,
}

/// Why an [`Arena`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArenaError {
    /// A budget of zero bytes: the arena could hold nothing.
    ZeroBudget,
    /// The budget or the region cannot hold even one chunk's first span.
    TooSmall {
        /// The bytes the budget or region allows.
        bytes: usize,
        /// The fewest bytes an arena can work with.
        minimum: usize,
    },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroBudget => f.write_str("an arena budget of zero bytes can hold nothing"),
            Self::TooSmall { bytes, minimum } => write!(
                f,
                "{bytes} bytes cannot hold one span and its chunk record; an arena needs at \
                 least {minimum}"
            ),
        }
    }
}

impl core::error::Error for ArenaError {}

/// Builds an [`Arena`]: a chunk source (default: the global allocator) and a byte budget
/// (default: none beyond the source's own size).
#[derive(Debug)]
pub struct ArenaBuilder {
    source: ChunkSource,
    budget: Option<usize>,
    span: Option<usize>,
}

impl ArenaBuilder {
    /// Take chunks from `source`.
    pub fn source(mut self, source: ChunkSource) -> Self {
        self.source = source;
        self
    }

    /// Take at most `bytes` from the source in all. Past it, allocations fail and a cache
    /// evicts, then refuses.
    pub fn budget(mut self, bytes: usize) -> Self {
        self.budget = Some(bytes);
        self
    }

    /// The bytes of a span (rounded to a power of two, between 16 and 64 KiB). Each small size
    /// class in use takes at least one span, so a small budget wants small spans: by default
    /// a span is a thirty-second of the budget within those bounds (64 KiB without one), so
    /// even a budget of a few hundred KiB serves every size class a cache uses.
    pub fn span(mut self, bytes: usize) -> Self {
        self.span = Some(bytes);
        self
    }

    /// Builds the arena. It takes no memory until the first allocation.
    ///
    /// # Errors
    /// [`ArenaError::ZeroBudget`], or [`ArenaError::TooSmall`] when the budget or the region
    /// cannot hold a span (64 KiB) with its chunk's alignment.
    pub fn build(self) -> Result<Arena, ArenaError> {
        let limit = match (self.budget, self.source.capacity()) {
            (Some(0), _) => return Err(ArenaError::ZeroBudget),
            (Some(budget), Some(capacity)) => Some(budget.min(capacity)),
            (budget, capacity) => budget.or(capacity),
        };
        let span = self
            .span
            .or(limit.map(|limit| limit / 32))
            .unwrap_or(SPAN)
            .clamp(MIN_SPAN, SPAN);
        // A power of two (the rounding-down that finds a block's span needs one).
        let span = if span.is_power_of_two() {
            span
        } else {
            span.next_power_of_two() / 2
        };
        let minimum = 2 * span;
        if let Some(bytes) = limit.filter(|&bytes| bytes < minimum) {
            return Err(ArenaError::TooSmall { bytes, minimum });
        }
        Ok(Arena {
            small: core::array::from_fn(|_| SpanLists::new()),
            large: core::array::from_fn(|_| Mutex::new(LargeFree::new())),
            lanes: core::array::from_fn(|_| {
                CachePadded::new(core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())))
            }),
            carver: Mutex::new(Carver::new(self.source, limit.unwrap_or(usize::MAX), span)),
            reserved: AtomicUsize::new(0),
            limit,
            span,
        })
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An arena over the global allocator, without a budget.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("no budget: nothing to refuse")
    }

    /// Builds an arena with a source and a budget.
    pub fn builder() -> ArenaBuilder {
        ArenaBuilder {
            source: ChunkSource::global(),
            budget: None,
            span: None,
        }
    }

    /// An owning allocator handle on `lane` (taken modulo [`LANES`]).
    pub fn handle(arena: &alloc::sync::Arc<Self>, lane: usize) -> ArenaHandle {
        ArenaHandle {
            arena: arena.clone(),
            lane: lane % LANES,
        }
    }

    /// The most bytes the arena may take from its source, if bounded.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The bytes of one of its spans (see [`ArenaBuilder::span`]).
    pub fn span_bytes(&self) -> usize {
        self.span
    }

    /// Allocates a block for `layout` on lane 0.
    ///
    /// # Errors
    /// When the budget or the source is exhausted, or no class serves the layout (an alignment
    /// above 4 KiB).
    pub fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_in(0, layout)
    }

    /// Allocates a block for `layout` on `lane` (modulo [`LANES`]). The block may be larger
    /// than asked: the slice's length is its class's size.
    ///
    /// # Errors
    /// As [`allocate`](Self::allocate).
    pub fn allocate_in(&self, lane: usize, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            let dangling = NonNull::new(ptr::without_provenance_mut::<u8>(layout.align()))
                .expect("an alignment is never zero");
            return Ok(NonNull::slice_from_raw_parts(dangling, 0));
        }
        let class = Class::of(layout.size(), layout.align()).ok_or(AllocError)?;
        let block = match class {
            Class::Small(index) => self.allocate_small(lane % LANES, index),
            Class::Large(index) => self.allocate_large(index),
        }
        .ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(block, class.block_size()))
    }

    /// Carves room for `count` blocks of `layout` now, for its size class alone: later
    /// allocations of that class find it even after other classes have spent the budget. (An
    /// embedder reserves what must never be refused; the cache reserves L1's copies this way.)
    ///
    /// # Errors
    /// When the budget or the source cannot hold it all (what was carved stays reserved), or
    /// no class serves the layout.
    pub fn reserve(&self, layout: Layout, count: usize) -> Result<(), AllocError> {
        if layout.size() == 0 || count == 0 {
            return Ok(());
        }
        match Class::of(layout.size(), layout.align()).ok_or(AllocError)? {
            Class::Small(index) => {
                let per_span = super::span::blocks_per_span(SMALL_SIZES[index], self.span);
                for _ in 0..count.div_ceil(per_span) {
                    let at = self.carve(self.span, self.span).ok_or(AllocError)?;
                    let lists = &self.small[index];
                    // SAFETY: a fresh span-aligned span of the arena's span size, ours until
                    // published; then it is live, published and has free blocks.
                    unsafe {
                        let span = Span::init(at, SMALL_SIZES[index], self.span);
                        lists.publish(span);
                        lists.list_partial(span);
                    }
                }
            }
            Class::Large(index) => {
                for _ in 0..count {
                    let block = self
                        .carve(large_size(index), LARGE_ALIGN_MAX)
                        .ok_or(AllocError)?;
                    let mut class = self.large[index].lock();
                    class.carved += 1;
                    // SAFETY: a fresh block of this class, given to its free list.
                    unsafe { class.push(block) };
                }
            }
        }
        Ok(())
    }

    /// Returns a block to the arena.
    ///
    /// # Safety
    /// `block` was allocated by this arena with `layout` (or a layout of the same size class,
    /// as [`Allocator::grow`] and [`Allocator::shrink`] allow) and is not used after this call.
    pub unsafe fn deallocate(&self, block: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        match Class::of(layout.size(), layout.align()) {
            Some(Class::Small(index)) => {
                // SAFETY: the caller guarantees the block came from this arena's class
                // `index`, whose spans live as long as the arena.
                if unsafe { Span::give_back(block, self.span) } {
                    // SAFETY: as above, its span is live and published.
                    unsafe { self.small[index].list_partial(Span::of(block, self.span)) };
                }
            }
            // SAFETY: the caller guarantees the block is one of this class's and gives it up.
            Some(Class::Large(index)) => unsafe { self.large[index].lock().push(block) },
            None => unreachable!("no block of this arena has a layout without a class"),
        }
    }

    fn allocate_small(&self, lane: usize, index: usize) -> Option<NonNull<u8>> {
        let hint = &self.lanes[lane][index];
        // Acquire: pairs with the Release swaps below: the span's header is visible.
        if let Some(span) = NonNull::new(hint.load(Ordering::Acquire)) {
            // SAFETY: hinted spans are published spans, which live as long as the arena.
            if let Some(block) = unsafe { Span::take(span) } {
                return Some(block);
            }
        }
        let lists = &self.small[index];
        // With a budget, lanes share spans that have room (see `span`'s protocol).
        let share = self.limit.is_some();
        let (span, block) = match lists.take_from_partial(share) {
            Some(found) => found,
            None => {
                let at = self.carve(self.span, self.span)?;
                // SAFETY: a fresh span-aligned span of the arena's span size, ours until
                // published.
                let span = unsafe { Span::init(at, SMALL_SIZES[index], self.span) };
                // SAFETY: the span is live and has free blocks; no other thread sees it yet.
                let block = unsafe { Span::take(span) }.expect("a new span has free blocks");
                // SAFETY: the span is live, initialised and on no list.
                unsafe { lists.publish(span) };
                if share {
                    // Other lanes take from it before they carve spans of their own.
                    // SAFETY: as above, and now published.
                    unsafe { lists.list_partial(span) };
                }
                (span, block)
            }
        };
        // AcqRel: the Release half pairs with the Acquire load above; the Acquire half lets
        // this thread read the header of the span it replaces.
        let replaced = hint.swap(span.as_ptr(), Ordering::AcqRel);
        if let Some(old) = NonNull::new(replaced).filter(|&old| old != span) {
            // Another thread on this lane may have replaced it while it still had blocks:
            // list it, so they are found again.
            // SAFETY: hinted spans are live and published.
            if unsafe { old.as_ref() }.free_blocks() > 0 {
                // SAFETY: as above.
                unsafe { lists.list_partial(old) };
            }
        }
        Some(block)
    }

    fn allocate_large(&self, index: usize) -> Option<NonNull<u8>> {
        let mut class = self.large[index].lock();
        if let Some(block) = class.pop() {
            return Some(block);
        }
        class.carved += 1;
        drop(class);
        let block = self.carve(large_size(index), LARGE_ALIGN_MAX);
        if block.is_none() {
            self.large[index].lock().carved -= 1;
        }
        block
    }

    fn carve(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let mut carver = self.carver.lock();
        let block = carver.carve(size, align);
        self.reserved.store(carver.reserved, Ordering::Relaxed);
        block
    }

    /// Totals: bytes reserved from the source, in use, and the budget.
    pub fn stats(&self) -> ArenaStats {
        let mut in_use = 0;
        let mut carved = 0;
        for class in self.class_stats() {
            in_use += class.in_use * class.block_size;
            carved += class.blocks * class.block_size;
        }
        ArenaStats {
            reserved: self.reserved.load(Ordering::Relaxed),
            carved,
            in_use,
            limit: self.limit,
        }
    }

    /// Per size class: block size, blocks carved, blocks in use (classes never used are left
    /// out).
    pub fn class_stats(&self) -> impl Iterator<Item = ClassStats> + '_ {
        let small = self.small.iter().enumerate().map(|(index, lists)| {
            let (mut blocks, mut free) = (0, 0);
            lists.for_each(|span| {
                blocks += span.blocks();
                free += span.free_blocks();
            });
            ClassStats {
                block_size: SMALL_SIZES[index],
                blocks,
                in_use: blocks - free.min(blocks),
            }
        });
        let large = self.large.iter().enumerate().map(|(index, class)| {
            let class = class.lock();
            ClassStats {
                block_size: large_size(index),
                blocks: class.carved,
                in_use: class.carved - class.free,
            }
        });
        small.chain(large).filter(|class| class.blocks > 0)
    }

    /// Grows or shrinks in place when the new layout is served by the block's class, else
    /// moves the block.
    ///
    /// # Safety
    /// As [`Allocator::grow`]: `block` is this arena's, allocated with `old`.
    unsafe fn reallocate(
        &self,
        lane: usize,
        block: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() != 0
            && old.align() >= new.align()
            && let (Some(was), Some(now)) = (
                Class::of(old.size(), old.align()),
                Class::of(new.size(), old.align()),
            )
            && was == now
        {
            return Ok(NonNull::slice_from_raw_parts(block, was.block_size()));
        }
        let moved = self.allocate_in(lane, new)?;
        // SAFETY: both blocks are valid for the smaller of the two sizes and distinct (the old
        // one is still allocated).
        unsafe {
            ptr::copy_nonoverlapping(
                block.as_ptr(),
                moved.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
            self.deallocate(block, old);
        }
        Ok(moved)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the arena is dropping, so nothing borrows it and no block of it is in use
        // (every collection allocating from it holds a borrow or a handle).
        unsafe { self.carver.get_mut().release_all() };
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ArenaHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaHandle")
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

impl ArenaHandle {
    /// The arena this handle allocates from.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The lane it allocates on.
    pub fn lane(&self) -> usize {
        self.lane
    }
}

// SAFETY: blocks stay valid until deallocated or the arena drops, which cannot happen while a
// borrow exists; distinct live allocations never overlap (each block is one bitmap bit or one
// large block, owned by exactly one caller); a block may be freed through any borrow.
unsafe impl Allocator for Arena {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_in(0, layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded: the caller's contract is `deallocate`'s.
        unsafe { Arena::deallocate(self, ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded: the caller's contract is `reallocate`'s.
        unsafe { self.reallocate(0, ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded: the caller's contract is `reallocate`'s.
        unsafe { self.reallocate(0, ptr, old, new) }
    }
}

// SAFETY: as for `Arena`: the handle keeps the arena alive, and clones share it, so a block
// allocated through one clone may be freed through another.
unsafe impl Allocator for ArenaHandle {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.arena.allocate_in(self.lane, layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded: the caller's contract is `deallocate`'s.
        unsafe { self.arena.deallocate(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded: the caller's contract is `reallocate`'s.
        unsafe { self.arena.reallocate(self.lane, ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded: the caller's contract is `reallocate`'s.
        unsafe { self.arena.reallocate(self.lane, ptr, old, new) }
    }
}
