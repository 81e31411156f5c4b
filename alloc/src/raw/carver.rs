//! Carving spans and large blocks out of chunks, and the free lists of large classes.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::source::ChunkSource;

/// The bytes of an ordinary chunk; a block too large to share one gets a chunk of its own.
#[cfg(not(any(loom, miri)))]
pub(crate) const CHUNK: usize = 4 << 20;
/// The bytes of an ordinary chunk (small under Miri, which tracks every byte).
#[cfg(all(miri, not(loom)))]
pub(crate) const CHUNK: usize = 256 << 10;
/// The bytes of an ordinary chunk (small under loom).
#[cfg(loom)]
pub(crate) const CHUNK: usize = 64 << 10;

/// Each chunk ends with this record, which links the chunks for the arena's drop.
struct ChunkRecord {
    next: Option<NonNull<ChunkRecord>>,
    base: NonNull<u8>,
    layout: Layout,
}

/// Room for the record at a chunk's end.
const RECORD: usize = 64;
const _: () = assert!(core::mem::size_of::<ChunkRecord>() <= RECORD);

/// Cuts blocks from the current chunk, and asks the source for another when it runs out.
/// Spans are cut from the chunk's front and large blocks from its back, so neither pads the
/// other's alignment. Used under the arena's carver lock.
pub(crate) struct Carver {
    pub(crate) source: ChunkSource,
    /// The current chunk's free part, `[front, back)`: `front` stays span-aligned, `back`
    /// 4 KiB-aligned.
    front: usize,
    back: usize,
    /// A pointer into the current chunk, whose provenance every block cut from it takes.
    chunk: Option<NonNull<u8>>,
    chunks: Option<NonNull<ChunkRecord>>,
    /// Bytes taken from the source.
    pub(crate) reserved: usize,
    /// The most bytes that may be taken from the source.
    limit: usize,
    /// The arena's span size: the alignment of chunks and spans.
    span: usize,
}

// SAFETY: the carver owns the chunks its pointers point into (nothing else frees them), so it
// may move to another thread; it is only used under a lock.
unsafe impl Send for Carver {}

impl Carver {
    pub(crate) fn new(source: ChunkSource, limit: usize, span: usize) -> Self {
        Self {
            span,
            source,
            front: 0,
            back: 0,
            chunk: None,
            chunks: None,
            reserved: 0,
            limit,
        }
    }

    /// `size` bytes at `align`: a span (`align` the span size) from the front of the current chunk,
    /// anything else (a multiple of 4 KiB, aligned to at most that) from its back. `None` when
    /// the budget or the source is exhausted.
    pub(crate) fn carve(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let span = self.span;
        debug_assert!(align.is_power_of_two() && align <= span.max(LARGE_ALIGN));
        if let Some(block) = self.cut(size, align) {
            return Some(block);
        }
        let need = size.checked_add(RECORD)?.checked_next_multiple_of(span)?;
        let dedicated = need > CHUNK / 2;
        let room = (self.limit - self.reserved).min(self.source.available(span));
        let bytes = if dedicated {
            need
        } else {
            CHUNK.min(room / span * span)
        };
        if bytes < need || bytes > room {
            return None;
        }
        let layout = Layout::from_size_align(bytes, span).ok()?;
        let chunk = self.source.allocate(layout)?;
        self.reserved += bytes;
        // SAFETY: bytes >= RECORD: the record's place lies inside the chunk, aligned for it
        // (the chunk is span-aligned and RECORD a multiple of the record's alignment).
        let record = unsafe { chunk.add(bytes - RECORD) }.cast::<ChunkRecord>();
        // SAFETY: the chunk is fresh memory, ours alone; the record's place is inside it.
        unsafe {
            ptr::write(
                record.as_ptr(),
                ChunkRecord {
                    next: self.chunks,
                    base: chunk,
                    layout,
                },
            );
        }
        self.chunks = Some(record);
        if dedicated {
            // The block is the chunk's start (span-aligned), the record its end.
            return Some(chunk);
        }
        // The old chunk's middle is left unused (counted as reserved, not in use).
        let base = chunk.as_ptr() as usize;
        self.chunk = Some(chunk);
        self.front = base;
        self.back = (base + bytes - RECORD) / LARGE_ALIGN * LARGE_ALIGN;
        self.cut(size, align)
    }

    /// `size` bytes at `align` from the current chunk, if they fit.
    fn cut(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let chunk = self.chunk?;
        let at = if align == self.span {
            debug_assert_eq!(self.front % self.span, 0);
            let end = self.front.checked_add(size)?;
            if end > self.back {
                return None;
            }
            core::mem::replace(&mut self.front, end)
        } else {
            debug_assert!(align <= LARGE_ALIGN && size.is_multiple_of(LARGE_ALIGN));
            let at = self.back.checked_sub(size)? / align * align;
            if at < self.front {
                return None;
            }
            self.back = at;
            at
        };
        let offset = at - chunk.as_ptr() as usize;
        // SAFETY: `[at, at + size)` lies inside the current chunk's free part, which `chunk`
        // points into (same allocation, so the same provenance).
        Some(unsafe { chunk.add(offset) })
    }

    /// Gives every chunk back to the source.
    ///
    /// # Safety
    /// Nothing carved from the chunks is used any more.
    pub(crate) unsafe fn release_all(&mut self) {
        let mut next = self.chunks.take();
        while let Some(record) = next {
            // SAFETY: every record was written at its chunk's end by `carve` and is read
            // before its chunk is released.
            let ChunkRecord {
                next: after,
                base,
                layout,
            } = unsafe { ptr::read(record.as_ptr()) };
            // SAFETY: the chunk came from this source with this layout; the caller guarantees
            // nothing uses it.
            unsafe { self.source.release(base, layout) };
            next = after;
        }
        self.chunk = None;
        self.front = 0;
        self.back = 0;
    }
}

/// The alignment large blocks are cut at.
const LARGE_ALIGN: usize = crate::class::LARGE_ALIGN_MAX;

/// The free blocks of one large class, linked through their first word. Used under the
/// class's lock.
pub(crate) struct LargeFree {
    head: Option<NonNull<LargeFree>>,
    /// Blocks of this class carved so far.
    pub(crate) carved: usize,
    /// Of those, free now.
    pub(crate) free: usize,
}

// SAFETY: the list owns the free blocks it links; it is only used under a lock.
unsafe impl Send for LargeFree {}

impl LargeFree {
    pub(crate) const fn new() -> Self {
        Self {
            head: None,
            carved: 0,
            free: 0,
        }
    }

    /// A free block, if there is one.
    pub(crate) fn pop(&mut self) -> Option<NonNull<u8>> {
        let block = self.head?;
        // SAFETY: a listed block is free and starts with the link written by `push`.
        self.head = unsafe { ptr::read(block.as_ptr().cast::<Option<NonNull<LargeFree>>>()) };
        self.free -= 1;
        Some(block.cast())
    }

    /// Lists `block` as free.
    ///
    /// # Safety
    /// `block` is a block of this class (at least 16 KiB, 4 KiB-aligned) that nothing uses any
    /// more.
    pub(crate) unsafe fn push(&mut self, block: NonNull<u8>) {
        // SAFETY: the caller gives up the block, which has room for the link.
        unsafe {
            ptr::write(
                block.as_ptr().cast::<Option<NonNull<LargeFree>>>(),
                self.head,
            )
        };
        self.head = Some(block.cast());
        self.free += 1;
    }
}
