//! Memory per entry: bytes held by each cache after inserting 1M distinct `u64 → u64`
//! entries into a cache of capacity 1M, measured with a counting global allocator. Overhead is
//! what a resident entry costs beyond its 16 bytes of key and value.
//!
//! `cargo bench -p stratacache-benches --bench memory`

use std::alloc::{GlobalAlloc, Layout};

use stratacache_benches::BaseAllocator as Base;

use mini_moka::sync::ConcurrentCacheExt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes live in the heap, and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the base allocator (the system's, or mimalloc); the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, which meets `alloc`'s contract.
        let p = unsafe { Base.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, as the caller guarantees.
        unsafe { Base.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller meets `realloc`'s contract.
        let p = unsafe { Base.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: u64 = 1_000_000;

/// Builds a cache, fills it, and reports (resident entries, bytes held, peak bytes).
fn measure<C>(
    build: impl FnOnce() -> C,
    fill: impl Fn(&C, u64),
    resident: impl Fn(&C) -> usize,
) -> (usize, usize, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let cache = build();
    for k in 0..ENTRIES {
        fill(&cache, k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    let held = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let n = resident(&cache);
    drop(cache);
    (n, held, peak)
}

fn main() {
    let cap = ENTRIES as usize;
    let mut rows: Vec<(&str, (usize, usize, usize))> = Vec::new();
    rows.push((
        "hashbrown::HashMap (floor)",
        measure(
            || std::cell::RefCell::new(hashbrown::HashMap::<u64, u64>::with_capacity(cap)),
            |c, k| {
                c.borrow_mut().insert(k, k);
            },
            |c| c.borrow().len(),
        ),
    ));
    rows.push((
        "stratacache Cache",
        measure(
            || {
                stratacache::Cache::<u64, u64>::builder()
                    .capacity(ENTRIES)
                    .build()
                    .unwrap()
            },
            |c, k| {
                let _ = c.insert(k, k);
            },
            |c| c.len(),
        ),
    ));
    rows.push((
        "stratacache Cache, preallocated",
        measure(
            || {
                stratacache::Cache::<u64, u64>::builder()
                    .capacity(ENTRIES)
                    .preallocate(true)
                    .build()
                    .unwrap()
            },
            |c, k| {
                let _ = c.insert(k, k);
            },
            |c| c.len(),
        ),
    ));
    rows.push((
        "stratacache Cache, L1 off",
        measure(
            || {
                stratacache::Cache::<u64, u64>::builder()
                    .capacity(ENTRIES)
                    .l1_entries(0)
                    .build()
                    .unwrap()
            },
            |c, k| {
                let _ = c.insert(k, k);
            },
            |c| c.len(),
        ),
    ));
    rows.push((
        "quick_cache 0.7",
        measure(
            || quick_cache::sync::Cache::<u64, u64>::new(cap),
            |c, k| c.insert(k, k),
            |c| c.len(),
        ),
    ));
    rows.push((
        "moka 0.12 (sync)",
        measure(
            || moka::sync::Cache::<u64, u64>::new(ENTRIES),
            |c, k| c.insert(k, k),
            |c| {
                c.run_pending_tasks();
                c.entry_count() as usize
            },
        ),
    ));
    rows.push((
        "mini-moka 0.10",
        measure(
            || mini_moka::sync::Cache::<u64, u64>::new(ENTRIES),
            |c, k| c.insert(k, k),
            |c| {
                c.sync();
                c.entry_count() as usize
            },
        ),
    ));
    rows.push((
        "scc HashCache 3",
        measure(
            || scc::HashCache::<u64, u64>::with_capacity(cap, cap),
            |c, k| {
                let _ = c.put_sync(k, k);
            },
            |c| c.len(),
        ),
    ));
    rows.push((
        "foyer 0.22 (in-memory)",
        measure(
            || {
                foyer::CacheBuilder::new(cap).build::<foyer::CacheProperties>()
                    as foyer::Cache<u64, u64>
            },
            |c, k| {
                c.insert(k, k);
            },
            |c| c.usage(),
        ),
    ));
    rows.push((
        "dashmap 6 (no eviction)",
        measure(
            || dashmap::DashMap::<u64, u64>::with_capacity(cap),
            |c, k| {
                c.insert(k, k);
            },
            |c| c.len(),
        ),
    ));
    rows.push((
        "papaya 0.2 (no eviction)",
        measure(
            || papaya::HashMap::<u64, u64>::with_capacity(cap),
            |c, k| {
                c.pin().insert(k, k);
            },
            |c| c.len(),
        ),
    ));

    println!(
        "memory for {ENTRIES} inserted u64 -> u64 entries (capacity {ENTRIES}), {} allocator",
        stratacache_benches::ALLOCATOR_NAME
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>16}",
        "cache", "resident", "held MiB", "peak MiB", "overhead B/entry"
    );
    for (name, (n, held, peak)) in rows {
        let overhead = held as f64 / n.max(1) as f64 - 16.0;
        println!(
            "{name:<28} {n:>10} {:>12.1} {:>12.1} {overhead:>16.1}",
            held as f64 / 1048576.0,
            peak as f64 / 1048576.0
        );
    }
}
