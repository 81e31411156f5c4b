//! Mixed-workload throughput of the tiered cache, side by side with the peers in one run:
//! quick_cache, moka, mini-moka, scc's `HashCache` and foyer's in-memory cache; dashmap and
//! papaya as references that never evict; a plain `hashbrown` map on one thread as the floor.
//!
//! Workloads (issue "benchmark suite"), `u64 → u64`, keys drawn zipf(0.99) and zipf(0.8) over
//! 1M keys:
//! - `read_heavy`: 98 % `get`, 1 % `insert`, 1 % `remove`, on a cache of capacity 1M filled with
//!   every key first (a miss stays a miss);
//! - `churn`: get-or-insert (a `get` that misses inserts the key) on a cache of capacity 100k,
//!   10 % of the keys, so it keeps evicting;
//! - `write_heavy`: 50 % `get`, 50 % `insert`, capacity 1M, filled first.
//!
//! Each thread replays its own pre-generated trace, so generating keys costs nothing in the
//! timed loop. Every cache is warmed with the first half of the traces before it is timed, and
//! the hit ratio of a warm window is printed, since throughput depends on it.
//!
//! Subjects: `stratacache` (plain methods, thread-local pin per operation),
//! `stratacache_handles` (an explicit handle per thread), `stratacache_frames` (a handle and
//! one `CacheFrame` per 256 operations, as a game loop would), the peers, and `hashbrown`
//! (one thread only: the floor).
//!
//! Threads: `STRATACACHE_BENCH_THREADS` (comma-separated; `all` = every CPU), default `1,2,all`.
//! The global allocator is the system's, or mimalloc with `--features mimalloc`.
//!
//! `cargo bench -p stratacache-benches --bench cache` (add `-- --quick` for a short run, and a
//! filter such as `-- churn` for one workload).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

const KEYS: u64 = 1_000_000;
/// Each thread's trace: half warms the cache, the other half is replayed window by window.
const TRACE_PER_THREAD: usize = 1_000_000;
/// Operations per thread in one timed iteration: the next window of its trace.
const OPS_PER_THREAD: usize = 100_000;

/// One operation of a trace.
#[derive(Clone, Copy)]
enum Op {
    Get(u64),
    /// A `get` that inserts the key when it misses.
    GetOrInsert(u64),
    Insert(u64),
    Remove(u64),
}

/// A workload: its operation mix and the capacity it runs at.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    /// Shares of get (or get-or-insert), insert and remove, in percent.
    mix: (u32, u32, u32),
    get_inserts: bool,
    capacity: u64,
    /// Whether every key is inserted before the warm-up.
    prefill: bool,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "read_heavy",
        mix: (98, 1, 1),
        get_inserts: false,
        capacity: KEYS,
        prefill: true,
    },
    Workload {
        name: "churn",
        mix: (100, 0, 0),
        get_inserts: true,
        capacity: KEYS / 10,
        prefill: false,
    },
    Workload {
        name: "write_heavy",
        mix: (50, 50, 0),
        get_inserts: false,
        capacity: KEYS,
        prefill: true,
    },
];

/// Spreads ranks over the key space so that hot keys are not neighbours.
fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn trace(seed: u64, exponent: f64, workload: Workload) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, exponent).expect("valid zipf parameters");
    let (get, insert, _) = workload.mix;
    (0..TRACE_PER_THREAD)
        .map(|_| {
            let key = key_of(zipf.sample(&mut rng) as u64 - 1);
            let roll = rng.random_range(0..100);
            if roll < get {
                if workload.get_inserts {
                    Op::GetOrInsert(key)
                } else {
                    Op::Get(key)
                }
            } else if roll < get + insert {
                Op::Insert(key)
            } else {
                Op::Remove(key)
            }
        })
        .collect()
}

/// A cache under test: replays `ops` on the calling thread and returns its hits.
trait Subject: Sync {
    fn replay(&self, ops: &[Op]) -> u64;
}

/// Replays `ops` given how a subject gets, inserts and removes.
#[inline(always)]
fn replay_with(
    ops: &[Op],
    get: impl Fn(u64) -> bool,
    insert: impl Fn(u64, u64),
    remove: impl Fn(u64),
) -> u64 {
    let mut hits = 0;
    for &op in ops {
        match op {
            Op::Get(k) => hits += u64::from(get(k)),
            Op::GetOrInsert(k) => {
                if get(k) {
                    hits += 1;
                } else {
                    insert(k, k);
                }
            }
            Op::Insert(k) => insert(k, k + 1),
            Op::Remove(k) => remove(k),
        }
    }
    hits
}

/// Implements [`Subject`] for a peer from how it gets, inserts and removes.
macro_rules! subject {
    ($ty:ty, |$c:ident| get($gk:ident): $get:expr, insert($ik:ident, $iv:ident): $insert:expr, remove($rk:ident): $remove:expr) => {
        impl Subject for $ty {
            fn replay(&self, ops: &[Op]) -> u64 {
                let $c = self;
                replay_with(
                    ops,
                    |$gk| $get,
                    |$ik, $iv| {
                        $insert;
                    },
                    |$rk| {
                        $remove;
                    },
                )
            }
        }
    };
}

subject!(stratacache::Cache<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): { let _ = c.insert(k, v); }, remove(k): c.remove(&k));
subject!(quick_cache::sync::Cache<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): c.insert(k, v), remove(k): c.remove(&k));
subject!(moka::sync::Cache<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): c.insert(k, v), remove(k): c.invalidate(&k));
subject!(mini_moka::sync::Cache<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): c.insert(k, v), remove(k): c.invalidate(&k));
subject!(scc::HashCache<u64, u64>, |c| get(k): c.read_sync(&k, |_, v| *v).is_some(),
    insert(k, v): {
        // `put_sync` refuses a present key: replace through the entry instead.
        match c.entry_sync(k) {
            scc::hash_cache::Entry::Occupied(mut o) => { o.put(v); }
            scc::hash_cache::Entry::Vacant(e) => { let _ = e.put_entry(v); }
        }
    }, remove(k): c.remove_sync(&k));
subject!(foyer::Cache<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): c.insert(k, v), remove(k): c.remove(&k));
subject!(dashmap::DashMap<u64, u64>, |c| get(k): c.get(&k).is_some(),
    insert(k, v): c.insert(k, v), remove(k): c.remove(&k));

/// papaya, pinned once per operation (as a caller without a frame would).
struct Papaya(papaya::HashMap<u64, u64>);

subject!(Papaya, |c| get(k): c.0.pin().get(&k).is_some(),
    insert(k, v): c.0.pin().insert(k, v), remove(k): c.0.pin().remove(&k));

/// The floor: a plain `hashbrown` map, replayed by one thread (the lock is taken once per
/// replay, not per operation).
struct Floor(std::sync::Mutex<hashbrown::HashMap<u64, u64>>);

impl Subject for Floor {
    fn replay(&self, ops: &[Op]) -> u64 {
        let map = &mut *self.0.lock().expect("not poisoned");
        let map = std::cell::RefCell::new(map);
        replay_with(
            ops,
            |k| map.borrow().contains_key(&k),
            |k, v| {
                map.borrow_mut().insert(k, v);
            },
            |k| {
                map.borrow_mut().remove(&k);
            },
        )
    }
}

/// Stratacache through explicit per-thread handles (the no-`std` front, and the frame-loop
/// way): one handle per replaying thread.
struct StratacacheHandles(stratacache::Cache<u64, u64>);

impl Subject for StratacacheHandles {
    fn replay(&self, ops: &[Op]) -> u64 {
        let c = self.0.handle();
        replay_with(
            ops,
            |k| c.get(&k).is_some(),
            |k, v| drop(c.insert(k, v)),
            |k| {
                c.remove(&k);
            },
        )
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
        ops.chunks(FRAME_OPS)
            .map(|chunk| {
                let c = handle.frame();
                replay_with(
                    chunk,
                    |k| c.get(&k).is_some(),
                    |k, v| drop(c.insert(k, v)),
                    |k| {
                        c.remove(&k);
                    },
                )
            })
            .sum()
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
    let mut counts: Vec<usize> = std::env::var("STRATACACHE_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2,all".into())
        .split(',')
        .map(|t| {
            if t.trim() == "all" {
                all
            } else {
                t.trim().parse().expect("thread count")
            }
        })
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

fn subjects(capacity: u64) -> Vec<(&'static str, Box<dyn Subject>)> {
    use stratacache_benches::peers;
    let cap = capacity as usize;
    vec![
        ("stratacache", Box::new(peers::stratacache(capacity))),
        (
            "stratacache_handles",
            Box::new(StratacacheHandles(peers::stratacache(capacity))),
        ),
        (
            "stratacache_frames",
            Box::new(StratacacheFrames(peers::stratacache(capacity))),
        ),
        ("quick_cache", Box::new(peers::quick_cache(capacity))),
        ("moka", Box::new(peers::moka(capacity))),
        ("mini_moka", Box::new(peers::mini_moka(capacity))),
        ("scc_hashcache", Box::new(peers::scc(capacity))),
        ("foyer", Box::new(peers::foyer(capacity))),
        (
            "dashmap",
            Box::new(dashmap::DashMap::<u64, u64>::with_capacity(cap)),
        ),
        (
            "papaya",
            Box::new(Papaya(papaya::HashMap::with_capacity(cap))),
        ),
        (
            "hashbrown",
            Box::new(Floor(std::sync::Mutex::new(
                hashbrown::HashMap::with_capacity(cap),
            ))),
        ),
    ]
}

fn mixed(c: &mut Criterion) {
    for workload in WORKLOADS {
        for exponent in [0.99, 0.8] {
            // One set of caches per workload, filled once and measured at every thread count.
            let subjects = subjects(workload.capacity);
            if workload.prefill {
                let fill: Vec<Op> = (0..KEYS).map(|r| Op::Insert(key_of(r))).collect();
                for (_, subject) in &subjects {
                    subject.replay(&fill);
                }
            }
            for threads in thread_counts() {
                let traces: Vec<Vec<Op>> = (0..threads as u64)
                    .map(|t| trace(0xC0FFEE + t, exponent, workload))
                    .collect();
                let group_name = format!("{}_zipf{exponent}/threads{threads}", workload.name);
                let mut group = c.benchmark_group(&group_name);
                group.throughput(Throughput::Elements((threads * OPS_PER_THREAD) as u64));
                for (name, subject) in &subjects {
                    if *name == "hashbrown" && threads > 1 {
                        continue; // the floor is single-threaded
                    }
                    // Warm-up: the first half of every trace reaches a steady state; its
                    // second half is what the measurement replays, window by window.
                    let half = TRACE_PER_THREAD / 2;
                    run(subject.as_ref(), &traces, 0..half);
                    let (_, hits) = run(subject.as_ref(), &traces, half..half + OPS_PER_THREAD);
                    let reads = traces
                        .iter()
                        .map(|t| {
                            t[half..half + OPS_PER_THREAD]
                                .iter()
                                .filter(|op| matches!(op, Op::Get(_) | Op::GetOrInsert(_)))
                                .count()
                        })
                        .sum::<usize>();
                    eprintln!(
                        "{group_name:>28} {name:>20}: steady-state hit ratio {:.2} %",
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
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = mixed
}
criterion_main!(benches);
