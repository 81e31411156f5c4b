//! The `cache` bench's read-heavy workload (zipf 0.99 over 1M keys, capacity 200k, 98 %
//! read-through get / 1 % insert / 1 % remove) on one thread, for one subject at a time, so that a
//! profiler (cachegrind's cache simulation, callgrind) sees one cache only. Prints ns per
//! operation and, for stratacache, what the operations did.
//!
//! `cargo run --release -p stratacache-benches --example read_heavy_costs -- stratacache|stratacache_frames|quick_cache [OPS]`
//! (`stratacache_frames`: the same operations in frames of the `cache` bench's 256.)

use std::time::Instant;

use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};
use stratacache_benches::mixed::{KEYS, Op, key_of, replay_frames, replay_handle, replay_with};

const CAPACITY: u64 = KEYS / 5;

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "stratacache".into());
    let n: usize = args
        .next()
        .map_or(2_000_000, |s| s.parse().expect("operations"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let zipf = Zipf::new(KEYS as f64, 0.99).expect("valid zipf parameters");
    let ops: Vec<Op> = (0..n)
        .map(|_| {
            let key = key_of(zipf.sample(&mut rng) as u64 - 1);
            match rng.random_range(0..100) {
                0..98 => Op::GetOrInsert(key),
                98 => Op::Insert(key),
                _ => Op::Remove(key),
            }
        })
        .collect();
    let (warm, timed) = ops.split_at(ops.len() / 2);
    match subject.as_str() {
        "stratacache" | "stratacache_frames" => {
            // A fixed hash seed, so that the cache's decisions (and its hits) repeat from run to
            // run: the default seed is drawn per process and moved the instruction count by ±3 %
            // (which keys the miniature caches sample, and so where the window goes). The count
            // still moves by about ±1.5 % between runs: compare changes larger than that.
            let cache: stratacache::Cache<u64, u64, _> = stratacache::Cache::builder()
                .capacity(CAPACITY)
                .hasher(stratacache::hash::FixedState::with_seed(1))
                .build()
                .expect("valid");
            let h = cache.handle();
            let framed = subject == "stratacache_frames";
            let replay = |ops: &[Op]| -> u64 {
                if framed {
                    replay_frames(&h, ops)
                } else {
                    replay_handle(&h, ops)
                }
            };
            replay(warm);
            let before = cache.stats();
            let start = Instant::now();
            let hits = replay(timed);
            let ns = start.elapsed().as_nanos() as f64 / timed.len() as f64;
            let after = cache.stats();
            let per = |a: u64, b: u64| (a - b) as f64 / timed.len() as f64;
            println!(
                "{subject}: {ns:.1} ns/op, hits {hits}; per op: L1 hits {:.3}, L2 hits {:.3}, \
                 misses {:.3}, promotions {:.3}, inserts {:.3}, evictions {:.3}; L1 {} entries",
                per(after.l1_hits, before.l1_hits),
                per(after.l2_hits, before.l2_hits),
                per(after.misses, before.misses),
                per(after.promotions, before.promotions),
                per(after.inserts, before.inserts),
                per(after.evictions(), before.evictions()),
                cache.l1_capacity()
            );
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
            let replay = |ops: &[Op]| {
                replay_with(
                    ops,
                    |k| cache.get(&k).is_some(),
                    |k, v| cache.insert(k, v),
                    |k| {
                        cache.remove(&k);
                    },
                )
            };
            replay(warm);
            let start = Instant::now();
            let hits = replay(timed);
            let ns = start.elapsed().as_nanos() as f64 / timed.len() as f64;
            println!("quick_cache: {ns:.1} ns/op, hits {hits}");
        }
        other => panic!("unknown subject {other}"),
    }
}
