//! The `cache` bench's workloads as criterion times them: the same windows of each trace
//! replayed over and over, so the cache settles into the state those windows leave (hit ratios
//! near 96 % on the read-heavy mix, where the first pass reads 78 %). Prints what a run spent
//! per operation and, for stratacache, what its tiers did (L1 and L2 hits, misses, promotions):
//! the figures that explain a criterion ratio the `ratios` example (first passes) does not
//! show. Run it under callgrind for instructions per operation (two round counts, the
//! difference divided by the extra operations).
//!
//! `cargo run --release -p stratacache-benches --example replayed_windows -- SUBJECT ROUNDS [WORKLOAD]`
//! with SUBJECT `stratacache`, `frames` or `quick_cache`, WORKLOAD `read_heavy` (default),
//! `churn` or `write_heavy` (zipf 0.99), `THREADS` in the environment (default 1) and `L1`
//! (L1's entries; default an eighth of the capacity, as the cache's own default).

use std::sync::Arc;
use std::time::Instant;

use stratacache_benches::mixed::{
    OPS_PER_THREAD, Op, Subject, TRACE_PER_THREAD, WORKLOADS, replay_frames, replay_with, run,
    trace, warm,
};
use stratacache_benches::peers;

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

/// stratacache through plain calls or frames, its statistics kept readable.
struct Strata(Arc<Cache>, bool);

type Cache = stratacache::Cache<u64, u64, stratacache::hash::FixedState>;

impl Subject for Strata {
    fn replay(&self, ops: &[Op]) -> u64 {
        if self.1 {
            replay_frames(&self.0.handle(), ops)
        } else {
            replay_with(
                ops,
                |k| self.0.get(&k).is_some(),
                |k, v| drop(self.0.insert(k, v)),
                |k| {
                    self.0.remove(&k);
                },
            )
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let subject = args.first().map_or("stratacache", String::as_str);
    let rounds: usize = args.get(1).map_or(100, |r| r.parse().expect("rounds"));
    let name = args.get(2).map_or("read_heavy", String::as_str);
    let workload = WORKLOADS
        .into_iter()
        .find(|w| w.name == name)
        .expect("read_heavy, churn or write_heavy");
    let threads: u64 = std::env::var("THREADS").map_or(1, |t| t.parse().expect("threads"));
    // The default cache with a fixed hash seed: a drawn one moves the counts by up to 5 %
    // between runs (which shards and L1 sets the keys land in).
    let cache = Arc::new(
        stratacache::Cache::builder()
            .capacity(workload.capacity)
            .hasher(stratacache::hash::FixedState::with_seed(1))
            .l1_entries(
                std::env::var("L1").map_or(workload.capacity as usize / 8, |entries| {
                    entries.parse().expect("L1: a number of entries")
                }),
            )
            .build()
            .expect("a positive capacity"),
    );
    let s: Box<dyn Subject> = match subject {
        "stratacache" => Box::new(Strata(Arc::clone(&cache), false)),
        "frames" => Box::new(Strata(Arc::clone(&cache), true)),
        "quick_cache" => Box::new(peers::quick_cache(workload.capacity)),
        other => panic!("unknown subject {other}"),
    };
    let traces: Vec<Vec<Op>> = (0..threads)
        .map(|t| trace(0xC0FFEE + t, 0.99, workload))
        .collect();
    s.replay(&workload.fill());
    warm(s.as_ref(), &traces);
    let half = TRACE_PER_THREAD / 2;
    let before = cache.stats();
    let start = Instant::now();
    let mut hits = 0;
    for round in 0..rounds {
        let first = half + (round * OPS_PER_THREAD) % (TRACE_PER_THREAD - half);
        hits += run(s.as_ref(), &traces, first..first + OPS_PER_THREAD).1;
    }
    let ops = (rounds * OPS_PER_THREAD) as f64 * threads as f64;
    let elapsed = start.elapsed();
    println!(
        "{subject} {name} zipf0.99 t{threads}: {:.1} ns/op (all threads), hits {:.2} %",
        elapsed.as_nanos() as f64 / ops,
        100.0 * hits as f64 / ops
    );
    if subject != "quick_cache" {
        let after = cache.stats();
        let per = |b: u64, a: u64| (a - b) as f64 / ops;
        println!(
            "  per operation: L1 hits {:.3}, L2 hits {:.3}, misses {:.3}, promotions {:.4}",
            per(before.l1_hits, after.l1_hits),
            per(before.l2_hits, after.l2_hits),
            per(before.misses, after.misses),
            per(before.promotions, after.promotions)
        );
    }
}
