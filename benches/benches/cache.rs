//! Mixed-workload throughput of the tiered cache, side by side with the peers in one run:
//! quick_cache, moka, mini-moka, scc's `HashCache` and foyer's in-memory cache.
//!
//! Workload (issue "in-memory cache"): `u64 → u64`, keys drawn zipf(0.99) over 1M keys,
//! capacity 100k entries; 95 % reads and 5 % writes; a read that misses inserts the key
//! (get-or-insert). Each thread replays its own pre-generated trace, so generating keys costs
//! nothing in the timed loop. Every cache is warmed with one replay before it is timed, and
//! the hit ratio of that warm-up is printed, since throughput depends on it.
//!
//! Subjects: `stratacache` (plain methods, thread-local pin per operation),
//! `stratacache_handles` (an explicit handle per thread), `stratacache_frames` (a handle and
//! one `CacheFrame` per 256 operations, as a game loop would), and the peers.
//!
//! Threads: `STRATACACHE_BENCH_THREADS` (comma-separated; `all` = every CPU), default `1,2`.
//!
//! `cargo bench -p stratacache-benches --bench cache` (add `-- --quick` for a short run).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
/// Each thread's trace: long enough (about 4× the capacity in distinct keys) that the caches
/// keep evicting.
const TRACE_PER_THREAD: usize = 4_000_000;
/// Operations per thread in one timed iteration: the next window of its trace.
const OPS_PER_THREAD: usize = 250_000;
const WRITE_SHARE: f64 = 0.05;

#[derive(Clone, Copy)]
struct Op {
    key: u64,
    write: bool,
}

fn trace(seed: u64, exponent: f64) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, exponent).expect("valid zipf parameters");
    (0..TRACE_PER_THREAD)
        .map(|_| {
            let rank = zipf.sample(&mut rng) as u64;
            // Spread ranks over the key space so hot keys are not neighbours.
            Op {
                key: rank.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                write: rng.random_bool(WRITE_SHARE),
            }
        })
        .collect()
}

/// A cache under test: replays `ops` on the calling thread and returns its hits.
trait Subject: Sync {
    fn replay(&self, ops: &[Op]) -> u64;
}

/// Implements [`Subject`] for a peer from how it gets and inserts.
macro_rules! subject {
    ($ty:ty, |$c:ident, $k:ident| get: $get:expr, insert($ik:ident, $iv:ident): $insert:expr) => {
        impl Subject for $ty {
            fn replay(&self, ops: &[Op]) -> u64 {
                let $c = self;
                let mut hits = 0;
                for op in ops {
                    let $k = op.key;
                    if op.write {
                        let ($ik, $iv) = (op.key, op.key + 1);
                        $insert;
                    } else if ($get).is_some() {
                        hits += 1;
                    } else {
                        let ($ik, $iv) = (op.key, op.key);
                        $insert;
                    }
                }
                hits
            }
        }
    };
}

subject!(stratacache::Cache<u64, u64>, |c, k| get: c.get(&k), insert(ik, iv): { let _ = c.insert(ik, iv); });
subject!(quick_cache::sync::Cache<u64, u64>, |c, k| get: c.get(&k), insert(ik, iv): c.insert(ik, iv));
subject!(moka::sync::Cache<u64, u64>, |c, k| get: c.get(&k), insert(ik, iv): c.insert(ik, iv));
subject!(mini_moka::sync::Cache<u64, u64>, |c, k| get: c.get(&k), insert(ik, iv): c.insert(ik, iv));
subject!(scc::HashCache<u64, u64>, |c, k| get: c.read_sync(&k, |_, v| *v), insert(ik, iv): {
    // `put_sync` refuses a present key: replace through the entry instead.
    match c.entry_sync(ik) {
        scc::hash_cache::Entry::Occupied(mut o) => { o.put(iv); }
        scc::hash_cache::Entry::Vacant(v) => { let _ = v.put_entry(iv); }
    }
});
subject!(foyer::Cache<u64, u64>, |c, k| get: c.get(&k), insert(ik, iv): { c.insert(ik, iv); });

/// Stratacache through explicit per-thread handles (the no-`std` front, and the frame-loop
/// way): one handle per replaying thread.
struct StratacacheHandles(stratacache::Cache<u64, u64>);

impl Subject for StratacacheHandles {
    fn replay(&self, ops: &[Op]) -> u64 {
        let c = self.0.handle();
        let mut hits = 0;
        for op in ops {
            if op.write {
                let _ = c.insert(op.key, op.key + 1);
            } else if c.get(&op.key).is_some() {
                hits += 1;
            } else {
                let _ = c.insert(op.key, op.key);
            }
        }
        hits
    }
}

/// Stratacache through handles and frames: every [`FRAME_OPS`] operations run under one
/// `CacheFrame` (one L1 pin), the way a game loop's frame does.
struct StratacacheFrames(stratacache::Cache<u64, u64>);

/// Operations per frame in the frames subject.
const FRAME_OPS: usize = 256;

impl Subject for StratacacheFrames {
    fn replay(&self, ops: &[Op]) -> u64 {
        let handle = self.0.handle();
        let mut hits = 0;
        for chunk in ops.chunks(FRAME_OPS) {
            let c = handle.frame();
            for op in chunk {
                if op.write {
                    let _ = c.insert(op.key, op.key + 1);
                } else if c.get(&op.key).is_some() {
                    hits += 1;
                } else {
                    let _ = c.insert(op.key, op.key);
                }
            }
        }
        hits
    }
}

/// Replays `window` (an index range into every trace) on one thread per trace.
fn run(
    subject: &dyn Subject,
    traces: &[Vec<Op>],
    window: core::ops::Range<usize>,
) -> (Duration, u64) {
    let start = Instant::now();
    let hits = std::thread::scope(|s| {
        let workers: Vec<_> = traces
            .iter()
            .map(|t| {
                let ops = &t[window.clone()];
                s.spawn(move || subject.replay(ops))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    (start.elapsed(), hits)
}

fn thread_counts() -> Vec<usize> {
    let all = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::env::var("STRATACACHE_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|t| {
            if t.trim() == "all" {
                all
            } else {
                t.trim().parse().expect("thread count")
            }
        })
        .collect()
}

fn subjects() -> Vec<(&'static str, Box<dyn Subject>)> {
    let cap = CAPACITY as usize;
    let strata = || {
        stratacache::Cache::builder()
            .capacity(CAPACITY)
            .build()
            .unwrap()
    };
    vec![
        ("stratacache", Box::new(strata()) as Box<dyn Subject>),
        (
            "stratacache_handles",
            Box::new(StratacacheHandles(strata())),
        ),
        ("stratacache_frames", Box::new(StratacacheFrames(strata()))),
        (
            "quick_cache",
            Box::new(quick_cache::sync::Cache::<u64, u64>::new(cap)),
        ),
        (
            "moka",
            Box::new(moka::sync::Cache::<u64, u64>::new(CAPACITY)),
        ),
        (
            "mini_moka",
            Box::new(mini_moka::sync::Cache::<u64, u64>::new(CAPACITY)),
        ),
        (
            "scc_hashcache",
            Box::new(scc::HashCache::<u64, u64>::with_capacity(cap, cap)),
        ),
        (
            "foyer",
            Box::new(
                foyer::CacheBuilder::new(cap).build::<foyer::CacheProperties>()
                    as foyer::Cache<u64, u64>,
            ),
        ),
    ]
}

fn mixed(c: &mut Criterion) {
    for exponent in [0.99] {
        for threads in thread_counts() {
            let traces: Vec<Vec<Op>> = (0..threads as u64)
                .map(|t| trace(0xC0FFEE + t, exponent))
                .collect();
            let mut group = c.benchmark_group(format!(
                "cache_mixed_zipf{exponent}_read95/threads{threads}"
            ));
            group.throughput(Throughput::Elements((threads * OPS_PER_THREAD) as u64));
            for (name, subject) in subjects() {
                // Warm-up: the first half of every trace fills the cache and reaches a steady
                // state; its second half is what the measurement replays, window by window.
                let half = TRACE_PER_THREAD / 2;
                run(subject.as_ref(), &traces, 0..half);
                let (_, hits) = run(subject.as_ref(), &traces, half..half + OPS_PER_THREAD);
                let reads = traces
                    .iter()
                    .map(|t| {
                        t[half..half + OPS_PER_THREAD]
                            .iter()
                            .filter(|op| !op.write)
                            .count()
                    })
                    .sum::<usize>();
                eprintln!(
                    "{name:>20} threads={threads}: steady-state hit ratio {:.2} %",
                    100.0 * hits as f64 / reads as f64
                );
                let mut next = half;
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                if next + OPS_PER_THREAD > TRACE_PER_THREAD {
                                    next = half;
                                }
                                let window = next..next + OPS_PER_THREAD;
                                next += OPS_PER_THREAD;
                                run(subject.as_ref(), &traces, window).0
                            })
                            .sum()
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = mixed
}
criterion_main!(benches);
