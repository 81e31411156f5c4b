//! The write paths on their own, for an instruction counter, as `miss_paths` does for a miss:
//! writing a present key again (`replace`), and removing a present key then inserting it back
//! (`remove`), on a cache of 100,000 holding 50,000 keys, each key written in turn.
//! `valgrind --tool=callgrind` on two runs with different N, the difference divided by the
//! extra operations, is the path's cost.
//!
//! `cargo run --release -p stratacache-benches --example write_paths -- PATH N`, PATH one of
//! `replace`, `remove`, `quick_cache_replace`, `quick_cache_remove`.

use std::hint::black_box;

const CAPACITY: u64 = 100_000;
const KEYS: u64 = CAPACITY / 2;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "replace".into());
    let n: u64 = args
        .next()
        .map_or(100_000, |n| n.parse().expect("operations"));
    match path.as_str() {
        "replace" | "remove" => stratacache_writes(path == "remove", n),
        "quick_cache_replace" | "quick_cache_remove" => {
            quick_cache_writes(path == "quick_cache_remove", n);
        }
        other => panic!("unknown path {other}"),
    }
}

fn spread(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Each subject in a function of its own, so that one's code does not move the other's count.
#[inline(never)]
fn stratacache_writes(remove: bool, n: u64) {
    let cache: stratacache::Cache<u64, u64, _> = stratacache::Cache::builder()
        .capacity(CAPACITY)
        .hasher(stratacache::hash::FixedState::with_seed(1))
        .build()
        .expect("a positive capacity");
    for i in 0..KEYS {
        let _ = cache.insert(spread(i), i);
    }
    for i in 0..n {
        let key = spread(i % KEYS);
        if remove {
            black_box(cache.remove(&key));
        }
        let _ = cache.insert(key, i);
    }
}

#[inline(never)]
fn quick_cache_writes(remove: bool, n: u64) {
    let cache = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
    for i in 0..KEYS {
        cache.insert(spread(i), i);
    }
    for i in 0..n {
        let key = spread(i % KEYS);
        if remove {
            black_box(cache.remove(&key));
        }
        cache.insert(key, i);
    }
}
