//! Spans: 16 to 64 KiB (an arena's choice, by its budget) of one small size class, a header
//! and then blocks, with a bitmap of the free ones.
//!
//! The protocol (modelled in `loom-tests/tests/slab.rs`):
//! - a span's `free` count never exceeds its set bits: freeing sets the bit, then raises the
//!   count; taking lowers the count, then clears a bit. So a thread that lowered the count is
//!   owed a set bit and finds one by scanning; no thread ever reads a block's memory, so there
//!   is no ABA and no race with the block's owner;
//! - a span whose count rises from zero is pushed on its class's partial list, once (the
//!   `listed` flag). In an arena with a budget, so is a new span as soon as it is made, and a
//!   popped one again while it still has room: lanes then share spans before they carve new
//!   ones, and a small budget is not spread over a span per lane. Without a budget each lane
//!   keeps its spans to itself, which scales better. The list is popped by one thread at a
//!   time (the class's pop lock), so the Treiber pop cannot suffer ABA, and pushes need no
//!   lock.

use core::ptr::{self, NonNull};

use crate::class::SMALL_ALIGN_MAX;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// The bytes of a span, and its alignment, in an arena without a budget (or a large one): a
/// block's span is its address rounded down to the arena's span size. Every small size class
/// in use holds at least one span, so an arena with a small budget takes smaller spans (down
/// to `MIN_SPAN`, 16 KiB).
#[cfg(not(loom))]
pub const SPAN: usize = 64 * 1024;
/// The bytes of a span, and its alignment (small under loom, so a model exhausts spans).
#[cfg(loom)]
pub const SPAN: usize = 8 * 1024;

/// The smallest span: room for one block of the largest small class after the header.
#[cfg(not(loom))]
pub const MIN_SPAN: usize = 16 * 1024;
/// The smallest span (as large as the only one under loom).
#[cfg(loom)]
pub const MIN_SPAN: usize = SPAN;

/// Where a span's first block starts: after the header, on a 1 KiB boundary.
const HEADER: usize = SMALL_ALIGN_MAX;
const WORD_BITS: usize = usize::BITS as usize;
/// The most blocks a span holds (of the 16-byte class, in the largest span).
const MAX_BLOCKS: usize = (SPAN - HEADER) / 16;
const WORDS: usize = MAX_BLOCKS.div_ceil(WORD_BITS);

/// How many blocks of `block_size` one span of `span` bytes holds.
pub(crate) const fn blocks_per_span(block_size: usize, span: usize) -> usize {
    (span - HEADER) / block_size
}

/// A span's header, at its start.
pub(crate) struct Span {
    block_size: usize,
    blocks: u32,
    words: u32,
    /// Free blocks; never more than the set bits.
    free: AtomicU32,
    /// The word to start the next scan from (a hint).
    cursor: AtomicU32,
    /// Whether the span is on its class's partial list.
    listed: AtomicBool,
    next_partial: AtomicPtr<Span>,
    /// The next span of the class, in the list of all of them (set before it is published,
    /// never changed after).
    next_all: AtomicPtr<Span>,
    /// One bit per block, set when the block is free.
    bits: [AtomicUsize; WORDS],
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Span>() <= HEADER);

impl Span {
    /// Writes an empty span of `span` bytes and `block_size` blocks at `at`, every block free.
    ///
    /// # Safety
    /// `at` is valid for writes of `span` bytes, aligned to `span` (a power of two from
    /// [`MIN_SPAN`] to [`SPAN`]), owned by the caller until the span is published, and
    /// `block_size` is a small class's size.
    pub(crate) unsafe fn init(at: NonNull<u8>, block_size: usize, span: usize) -> NonNull<Span> {
        debug_assert_eq!(at.as_ptr() as usize % span, 0);
        debug_assert!((MIN_SPAN..=SPAN).contains(&span) && span.is_power_of_two());
        let blocks = blocks_per_span(block_size, span);
        debug_assert!(blocks > 0, "a span holds a block of every small class");
        let words = blocks.div_ceil(WORD_BITS);
        let bits = core::array::from_fn(|word| {
            let first = word * WORD_BITS;
            let set = blocks.saturating_sub(first).min(WORD_BITS);
            AtomicUsize::new(if set == WORD_BITS {
                usize::MAX
            } else {
                (1usize << set) - 1
            })
        });
        let span = at.cast::<Span>();
        // SAFETY: the caller gives us `span` writable bytes aligned to `span`, which holds a
        // Span (asserted above: the header fits in HEADER bytes, less than any span).
        unsafe {
            ptr::write(
                span.as_ptr(),
                Span {
                    block_size,
                    blocks: blocks as u32,
                    words: words as u32,
                    free: AtomicU32::new(blocks as u32),
                    cursor: AtomicU32::new(0),
                    listed: AtomicBool::new(false),
                    next_partial: AtomicPtr::new(ptr::null_mut()),
                    next_all: AtomicPtr::new(ptr::null_mut()),
                    bits,
                },
            );
        }
        span
    }

    /// The span a block lies in, in an arena of spans of `span` bytes.
    pub(crate) fn of(block: NonNull<u8>, span: usize) -> NonNull<Span> {
        block
            .map_addr(|addr| {
                // SAFETY: a block lies past its span's header, so rounding down stays non-zero.
                unsafe { core::num::NonZeroUsize::new_unchecked(addr.get() & !(span - 1)) }
            })
            .cast()
    }

    pub(crate) fn blocks(&self) -> usize {
        self.blocks as usize
    }

    pub(crate) fn free_blocks(&self) -> usize {
        self.free.load(Ordering::Relaxed) as usize
    }

    /// Takes a free block, or `None` when the span has none.
    ///
    /// # Safety
    /// `span` points to a live span (one written by [`init`](Self::init) in memory the arena
    /// still owns).
    pub(crate) unsafe fn take(span: NonNull<Span>) -> Option<NonNull<u8>> {
        // SAFETY: the caller guarantees the span is live.
        let this = unsafe { span.as_ref() };
        // Claim a block by its count first. Acquire: pairs with the Release increment in
        // `give_back` (every change of `free` is a read-modify-write, so this syncs with all
        // earlier ones): the bits set before those increments are visible to the scan below.
        this.free
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()?;
        let words = this.words as usize;
        let mut word = this.cursor.load(Ordering::Relaxed) as usize % words;
        loop {
            let cell = &this.bits[word];
            let mut bits = cell.load(Ordering::Relaxed);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                let rest = bits & !(1 << bit);
                // Acquire: pairs with the Release `fetch_or` in `give_back`, so the previous
                // owner's writes to the block happen before the new owner's.
                match cell.compare_exchange_weak(bits, rest, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => {
                        if rest == 0 {
                            this.cursor
                                .store(((word + 1) % words) as u32, Ordering::Relaxed);
                        }
                        let index = word * WORD_BITS + bit;
                        debug_assert!(index < this.blocks as usize);
                        // SAFETY: the block lies inside the span (index < blocks), and the
                        // pointer keeps the span pointer's provenance (the whole chunk's).
                        let block =
                            unsafe { span.cast::<u8>().add(HEADER + index * this.block_size) };
                        return Some(block);
                    }
                    Err(now) => bits = now,
                }
            }
            // Another thread took the bits this scan saw; the block this thread is owed
            // is further on (or back where the scan began).
            word = (word + 1) % words;
            crate::sync::spin_hint();
        }
    }

    /// Returns `block` to its span (of `span` bytes). `true` when the span had no free block
    /// before, so the caller must put it back on its class's partial list.
    ///
    /// # Safety
    /// `block` was returned by [`take`](Self::take) on the span it lies in, which is live and
    /// of `span` bytes, and is not used after this call.
    pub(crate) unsafe fn give_back(block: NonNull<u8>, span: usize) -> bool {
        let span = Self::of(block, span);
        // SAFETY: the caller guarantees the block's span is live.
        let this = unsafe { span.as_ref() };
        let offset = block.as_ptr() as usize - span.as_ptr() as usize - HEADER;
        debug_assert_eq!(offset % this.block_size, 0, "not a block of this span");
        let index = offset / this.block_size;
        let (word, bit) = (index / WORD_BITS, index % WORD_BITS);
        // Release: pairs with the Acquire exchange in `take`: our writes to the block happen
        // before its next owner's.
        let before = this.bits[word].fetch_or(1 << bit, Ordering::Release);
        debug_assert_eq!(before & (1 << bit), 0, "block freed twice");
        // Release: pairs with the Acquire claim in `take`, which must see the bit set above.
        this.free.fetch_add(1, Ordering::Release) == 0
    }
}

/// A push-only list of every span of a class, and the partial list of those that gained a
/// free block since they were last found full.
pub(crate) struct SpanLists {
    all: AtomicPtr<Span>,
    partial: AtomicPtr<Span>,
    /// Held to pop the partial list: one popper at a time makes the pop safe from ABA.
    pop: crate::sync::Mutex<()>,
}

impl SpanLists {
    pub(crate) fn new() -> Self {
        Self {
            all: AtomicPtr::new(ptr::null_mut()),
            partial: AtomicPtr::new(ptr::null_mut()),
            pop: crate::sync::Mutex::new(()),
        }
    }

    /// Publishes a new span: pushes it on the list of all spans.
    ///
    /// # Safety
    /// `span` is live, initialised, and not yet on the list.
    pub(crate) unsafe fn publish(&self, span: NonNull<Span>) {
        // SAFETY: the caller guarantees the span is live. Release (in `push`): pairs with the
        // Acquire loads in `for_each`, which read the header.
        unsafe { push(&self.all, span, |s| &s.next_all) };
    }

    /// Puts `span` on the partial list, unless it is there already.
    ///
    /// # Safety
    /// `span` is live and published.
    pub(crate) unsafe fn list_partial(&self, span: NonNull<Span>) {
        // SAFETY: the caller guarantees the span is live.
        let this = unsafe { span.as_ref() };
        // SeqCst fence: pairs with the one in `take_from_partial`. Either the popper, which
        // clears `listed` and then counts the free blocks, sees the block just given back, or
        // this thread sees `listed` cleared and lists the span again; never neither.
        crate::sync::fence_seq_cst();
        if this.listed.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: as above. Release (in `push`): pairs with the Acquire load in
        // `take_from_partial`.
        unsafe { push(&self.partial, span, |s| &s.next_partial) };
    }

    /// Pops spans off the partial list until one yields a block; with `share`, a span that
    /// still has room after it stays listed for other lanes.
    pub(crate) fn take_from_partial(&self, share: bool) -> Option<(NonNull<Span>, NonNull<u8>)> {
        loop {
            let span = {
                let _popper = self.pop.lock();
                // Acquire: pairs with the Release push in `list_partial`.
                let head = NonNull::new(self.partial.load(Ordering::Acquire))?;
                // SAFETY: listed spans are live: spans live as long as the arena.
                let next = unsafe { head.as_ref() }
                    .next_partial
                    .load(Ordering::Relaxed);
                // Only this thread pops (the lock), and a listed span cannot be pushed again
                // until it is unlisted below, so `next` is still the head's successor unless a
                // push intervened, which the exchange notices.
                if self
                    .partial
                    .compare_exchange(head.as_ptr(), next, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                head
            };
            // SAFETY: as above, the span is live.
            unsafe { span.as_ref() }
                .listed
                .store(false, Ordering::Relaxed);
            // SeqCst fence: pairs with the one in `list_partial` (see there).
            crate::sync::fence_seq_cst();
            // SAFETY: as above, the span is live.
            if let Some(block) = unsafe { Span::take(span) } {
                // SAFETY: as above, the span is live and published.
                if share && unsafe { span.as_ref() }.free_blocks() > 0 {
                    // Still room: keep it listed, so other lanes share it rather than carve
                    // spans of their own.
                    // SAFETY: as above.
                    unsafe { self.list_partial(span) };
                }
                return Some((span, block));
            }
            // Full again: the next block given back lists it again.
        }
    }

    /// Calls `f` with every span of the class.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Span)) {
        // Acquire: pairs with the Release push in `publish`.
        let mut span = self.all.load(Ordering::Acquire);
        while let Some(current) = NonNull::new(span) {
            // SAFETY: published spans live as long as the arena, which `self` borrows.
            let this = unsafe { current.as_ref() };
            f(this);
            span = this.next_all.load(Ordering::Acquire);
        }
    }
}

/// Pushes `span` on the Treiber list at `head`, linked through `link` (pushes need no lock and
/// suffer no ABA: only the pointer read before the exchange is relied on).
///
/// # Safety
/// `span` is live and on no list linked through `link`.
unsafe fn push(
    head: &AtomicPtr<Span>,
    span: NonNull<Span>,
    link: impl Fn(&Span) -> &AtomicPtr<Span>,
) {
    // SAFETY: the caller guarantees the span is live.
    let next = link(unsafe { span.as_ref() });
    let mut first = head.load(Ordering::Relaxed);
    loop {
        next.store(first, Ordering::Relaxed);
        // Release: whoever loads the new head with Acquire sees the span's header and link.
        match head.compare_exchange_weak(first, span.as_ptr(), Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => return,
            Err(now) => first = now,
        }
    }
}
