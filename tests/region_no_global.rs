//! A cache on a caller's region keeps its memory there: this test binary's global allocator
//! counts what a marked thread allocates and frees, and the cache running on the region may
//! only borrow small blocks from it and give them back.
//!
//! The one user of the global allocator is crossbeam-epoch, whose queue of deferred functions
//! takes a node of about 2 KiB per 64 of them (L2 defers the reuse of retired slots); it frees
//! them as the epoch advances. The cache is built with L1 off: L1's copies come from the global
//! allocator. Building (the shards' room, the policy's history, the statistics' stripes) and
//! registering the thread happen before the mark.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stratacache::Cache;
use stratacache::memory::{Arena, ChunkSource};

/// The system allocator, except that on a marked thread it refuses reallocations and, while
/// refusing, allocations (counting them), and otherwise counts what it hands out.
struct RefusingWhenMarked;

thread_local! {
    static MARKED: Cell<bool> = const { Cell::new(false) };
    /// Whether allocations on a marked thread are refused (else counted).
    static REFUSING: Cell<bool> = const { Cell::new(true) };
    /// Allocations refused on this thread.
    static REFUSED: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated and not freed on this thread while marked, and the largest block.
    static NET_BYTES: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn refused() -> usize {
    REFUSED.with(Cell::get)
}

fn count_refusal() {
    let _ = REFUSED.try_with(|r| r.set(r.get() + 1));
}

fn refusing() -> bool {
    REFUSING.try_with(Cell::get).unwrap_or(true)
}

fn count(bytes: isize) {
    let _ = NET_BYTES.try_with(|n| n.set(n.get() + bytes));
    let _ = LARGEST.try_with(|l| l.set(l.get().max(bytes.unsigned_abs())));
}

fn marked() -> bool {
    MARKED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is the system allocator's, or a refusal (a null pointer), which the
// `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for RefusingWhenMarked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if marked() {
            if refusing() {
                count_refusal();
                return std::ptr::null_mut();
            }
            count(layout.size() as isize);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if marked() {
            count(-(layout.size() as isize));
        }
        // SAFETY: every block came from `System` (a refusal hands out none).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if marked() {
            count_refusal();
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded: the block came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: RefusingWhenMarked = RefusingWhenMarked;

/// Runs `f` with the global allocator refusing this thread.
fn without_global_allocator<R>(f: impl FnOnce() -> R) -> R {
    MARKED.with(|m| m.set(true));
    let result = f();
    MARKED.with(|m| m.set(false));
    result
}

#[test]
fn a_region_backed_cache_keeps_its_memory_in_the_region() {
    let region: &'static mut [MaybeUninit<u8>] =
        Box::leak(vec![MaybeUninit::uninit(); 8 << 20].into_boxed_slice());
    let (start, end) = (
        region.as_ptr() as usize,
        region.as_ptr() as usize + region.len(),
    );
    let arena = Arc::new(
        Arena::builder()
            .source(ChunkSource::region(region))
            .build()
            .unwrap(),
    );
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(20_000)
        .l1_entries(0)
        .memory(arena.clone())
        .build()
        .unwrap();
    // Registers this thread with the cache (a thread-local handle) before the mark.
    cache.insert(0, 0).unwrap();
    assert_eq!(cache.remove(&0), Some(0));

    let (hits, evicted_before) = (AtomicUsize::new(0), cache.stats().evicted_capacity);
    REFUSING.with(|r| r.set(false));
    without_global_allocator(|| {
        for i in 0..200_000u64 {
            cache.insert(i % 50_000, i).unwrap();
            if cache.get(&(i % 977)).is_some() {
                hits.fetch_add(1, Ordering::Relaxed);
            }
            if i % 7 == 0 {
                cache.remove(&(i / 7 % 50_000));
            }
        }
    });
    REFUSING.with(|r| r.set(true));
    assert_eq!(refused(), 0, "the cache reallocated global memory");
    let (net, largest) = (NET_BYTES.with(Cell::get), LARGEST.with(Cell::get));
    assert!(
        largest <= 4 << 10 && net <= 64 << 10,
        "the cache kept {net} bytes of global memory (blocks up to {largest} bytes)"
    );
    let stats = cache.stats();
    assert!(
        stats.evicted_capacity > evicted_before,
        "it evicted, so it was full"
    );
    assert!(
        cache.len() <= 20_000 && cache.len() > 10_000,
        "{}",
        cache.len()
    );
    assert!(hits.load(Ordering::Relaxed) > 0);
    let arena_stats = stats.arena.unwrap();
    assert!(arena_stats.in_use > 20_000 * 16 && arena_stats.reserved <= end - start);
}

#[test]
fn the_refusing_allocator_does_refuse() {
    // The test above means something only if a marked thread's allocation is refused: this
    // one is (an `AllocError`, not an abort, through the fallible API).
    let failed = without_global_allocator(|| {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve(64).is_err()
    });
    assert!(failed && refused() == 1);
}
