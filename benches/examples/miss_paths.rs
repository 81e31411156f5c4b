//! The miss path on its own, for an instruction counter: a lookup that misses and the
//! insertion that follows it, into a full `Cache` of CAP entries (every insertion evicts).
//! `valgrind --tool=callgrind` on two runs with different N, the difference divided by the
//! extra misses, is the path's cost in instructions, free of this machine's timing noise (as
//! `hit_paths` does for the hits).
//!
//! `cargo run --release -p stratacache-benches --example miss_paths -- CAP N [SUBJECT]`, the
//! subject `stratacache` (the default) or `quick_cache` (its `sync::Cache`, the same keys).

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let capacity: u64 = args.next().map_or(1_000, |c| c.parse().expect("capacity"));
    let misses: u64 = args.next().map_or(100_000, |n| n.parse().expect("misses"));
    match args.next().as_deref().unwrap_or("stratacache") {
        "stratacache" => stratacache_misses(capacity, misses),
        "quick_cache" => quick_cache_misses(capacity, misses),
        other => panic!("unknown subject {other}: stratacache or quick_cache"),
    }
}

fn spread(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Each subject in a function of its own, so that one's code does not move the other's count.
#[inline(never)]
fn stratacache_misses(capacity: u64, misses: u64) {
    let cache: stratacache::Cache<u64, u64, _> = stratacache::Cache::builder()
        .capacity(capacity)
        .hasher(stratacache::hash::FixedState::with_seed(1))
        .build()
        .expect("a positive capacity");
    // Full, and past the first evictions.
    for i in 0..capacity * 2 {
        let _ = cache.insert(spread(i), i);
    }
    for i in 0..misses {
        let key = spread(capacity * 2 + i);
        black_box(cache.get(&key));
        let _ = cache.insert(key, i);
    }
}

#[inline(never)]
fn quick_cache_misses(capacity: u64, misses: u64) {
    let cache = quick_cache::sync::Cache::<u64, u64>::new(capacity as usize);
    for i in 0..capacity * 2 {
        cache.insert(spread(i), i);
    }
    for i in 0..misses {
        let key = spread(capacity * 2 + i);
        black_box(cache.get(&key));
        cache.insert(key, i);
    }
}
