//! Carving spans and large blocks out of chunks, and the free lists of large classes.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::source::ChunkSource;
use super::span::SPAN;

/// The bytes of an ordinary chunk; a block too large to share one gets a chunk of its own.
#[cfg(not(loom))]
pub(crate) const CHUNK: usize = 4 << 20;
/// The bytes of an ordinary chunk (small under loom).
#[cfg(loom)]
pub(crate) const CHUNK: usize = 64 << 10;

/// Each chunk starts with this record, which links the chunks for the arena's drop.
struct ChunkRecord {
    next: Option<NonNull<ChunkRecord>>,
    layout: Layout,
}

/// Room for the record at a chunk's start.
const RECORD: usize = 64;
const _: () = assert!(core::mem::size_of::<ChunkRecord>() <= RECORD);

/// Cuts blocks from the current chunk, and asks the source for another when it runs out.
/// Used under the arena's carver lock.
pub(crate) struct Carver {
    pub(crate) source: ChunkSource,
    /// The current chunk's free part.
    cursor: Option<NonNull<u8>>,
    remaining: usize,
    chunks: Option<NonNull<ChunkRecord>>,
    /// Bytes taken from the source.
    pub(crate) reserved: usize,
    /// The most bytes that may be taken from the source.
    limit: usize,
}

// SAFETY: the carver owns the chunks its pointers point into (nothing else frees them), so it
// may move to another thread; it is only used under a lock.
unsafe impl Send for Carver {}

impl Carver {
    pub(crate) fn new(source: ChunkSource, limit: usize) -> Self {
        Self {
            source,
            cursor: None,
            remaining: 0,
            chunks: None,
            reserved: 0,
            limit,
        }
    }

    /// `size` bytes at `align` (a power of two up to [`SPAN`]), or `None` when the budget or
    /// the source is exhausted.
    pub(crate) fn carve(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= SPAN);
        if let Some(block) = self.cut(size, align) {
            return Some(block);
        }
        let need = size.checked_add(align)?.checked_add(RECORD)?;
        let dedicated = need > CHUNK / 2;
        let room = (self.limit - self.reserved).min(self.source.available(SPAN));
        let bytes = if dedicated { need } else { CHUNK.min(room) };
        if bytes < need || bytes > room {
            return None;
        }
        let layout = Layout::from_size_align(bytes, SPAN).ok()?;
        let chunk = self.source.allocate(layout)?;
        self.reserved += bytes;
        let record = chunk.cast::<ChunkRecord>();
        // SAFETY: the chunk is `bytes >= RECORD` fresh bytes aligned to SPAN, ours alone.
        unsafe {
            ptr::write(
                record.as_ptr(),
                ChunkRecord {
                    next: self.chunks,
                    layout,
                },
            );
        }
        self.chunks = Some(record);
        // SAFETY: RECORD < bytes: still inside the chunk.
        let rest = unsafe { chunk.add(RECORD) };
        if dedicated {
            let block = align_up(rest, align);
            debug_assert!(block.as_ptr() as usize + size <= chunk.as_ptr() as usize + bytes);
            return Some(block);
        }
        // The old chunk's tail is left unused (counted as reserved, not in use).
        self.cursor = Some(rest);
        self.remaining = bytes - RECORD;
        self.cut(size, align)
    }

    /// `size` bytes at `align` from the current chunk, if they fit.
    fn cut(&mut self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let cursor = self.cursor?;
        let pad = (cursor.as_ptr() as usize).next_multiple_of(align) - cursor.as_ptr() as usize;
        let end = pad.checked_add(size)?;
        if end > self.remaining {
            return None;
        }
        // SAFETY: pad + size <= remaining: inside the current chunk.
        let block = unsafe { cursor.add(pad) };
        // SAFETY: as above.
        self.cursor = Some(unsafe { cursor.add(end) });
        self.remaining -= end;
        Some(block)
    }

    /// Gives every chunk back to the source.
    ///
    /// # Safety
    /// Nothing carved from the chunks is used any more.
    pub(crate) unsafe fn release_all(&mut self) {
        let mut next = self.chunks.take();
        while let Some(record) = next {
            // SAFETY: every record was written at its chunk's start by `carve` and is read
            // before its chunk is released.
            let ChunkRecord {
                next: after,
                layout,
            } = unsafe { ptr::read(record.as_ptr()) };
            // SAFETY: the chunk came from this source with this layout; the caller guarantees
            // nothing uses it.
            unsafe { self.source.release(record.cast(), layout) };
            next = after;
        }
        self.cursor = None;
        self.remaining = 0;
    }
}

fn align_up(ptr: NonNull<u8>, align: usize) -> NonNull<u8> {
    let pad = (ptr.as_ptr() as usize).next_multiple_of(align) - ptr.as_ptr() as usize;
    // SAFETY: callers leave room for the padding inside the chunk.
    unsafe { ptr.add(pad) }
}

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
