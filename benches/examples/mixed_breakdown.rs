//! Where the mixed workload's operations go: replays the `cache` bench's workload (zipf 0.99
//! over 1M keys, capacity 100k, 95 % reads with insert-on-miss, 5 % writes) on one thread
//! through a `CacheHandle`, and prints ns per operation beside what each operation did on
//! average (L1 hits, L2 hits, misses, promotions, insertions, evictions), from the cache's own
//! statistics. Used to tune the L1 size and the promotion threshold.
//!
//! `cargo run --release -p stratacache-benches --example mixed_breakdown -- [L1_ENTRIES] [PROMOTE_AFTER]`

use std::time::Instant;

use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};

fn main() {
    let mut args = std::env::args().skip(1);
    let l1: Option<usize> = args.next().map(|s| s.parse().expect("L1 entries"));
    let promote: Option<u8> = args.next().map(|s| s.parse().expect("promote_after"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let zipf = Zipf::new(1e6, 0.99).expect("valid zipf parameters");
    let ops: Vec<(u64, bool)> = (0..4_000_000)
        .map(|_| {
            let key = (zipf.sample(&mut rng) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (key, rng.random_bool(0.05))
        })
        .collect();
    let mut builder = stratacache::Cache::builder().capacity(100_000);
    if let Some(l1) = l1 {
        builder = builder.l1_entries(l1);
    }
    if let Some(promote) = promote {
        builder = builder.promote_after(promote);
    }
    let cache: stratacache::Cache<u64, u64> = builder.build().expect("valid configuration");
    let handle = cache.handle();
    let replay = |ops: &[(u64, bool)]| {
        for &(key, write) in ops {
            if write {
                let _ = handle.insert(key, key + 1);
            } else if handle.get(&key).is_none() {
                let _ = handle.insert(key, key);
            }
        }
    };
    let (warm, timed) = ops.split_at(ops.len() / 2);
    replay(warm);
    let before = cache.stats();
    let start = Instant::now();
    replay(timed);
    let elapsed = start.elapsed();
    let after = cache.stats();
    let n = timed.len() as f64;
    let per_op = |a: u64, b: u64| (a - b) as f64 / n;
    println!(
        "l1 capacity {} promote_after {}: {:.1} ns/op; per op: l1 hits {:.3}, l2 hits {:.3}, \
         misses {:.3}, promotions {:.3}, inserts {:.3}, evictions {:.3}; \
         memory {:.1} bytes per entry",
        cache.l1_capacity(),
        promote.map_or("default".to_string(), |p| p.to_string()),
        elapsed.as_nanos() as f64 / n,
        per_op(after.l1_hits, before.l1_hits),
        per_op(after.l2_hits, before.l2_hits),
        per_op(after.misses, before.misses),
        per_op(after.promotions, before.promotions),
        per_op(after.inserts, before.inserts),
        per_op(after.evictions(), before.evictions()),
        after.memory_bytes as f64 / after.entries as f64,
    );
}
