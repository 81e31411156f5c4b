//! The mixed workloads of the throughput benches (`cache`, `placement`): their traces, the
//! subjects that replay them, and the multi-threaded replay loop.

use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// The key space of the read-heavy and write-heavy workloads.
pub const KEYS: u64 = 1_000_000;
/// Each thread's trace: half warms the cache, the other half is replayed window by window.
pub const TRACE_PER_THREAD: usize = 1_000_000;
/// Operations per thread in one timed iteration: the next window of its trace.
pub const OPS_PER_THREAD: usize = 100_000;

/// One operation of a trace.
#[derive(Clone, Copy)]
pub enum Op {
    /// A `get`.
    Get(u64),
    /// A `get` that inserts the key when it misses.
    GetOrInsert(u64),
    /// An `insert` (of the key plus one).
    Insert(u64),
    /// A `remove`.
    Remove(u64),
}

/// A workload: its operation mix and the capacity it runs at.
#[derive(Clone, Copy)]
pub struct Workload {
    /// Its name in the reports.
    pub name: &'static str,
    /// Shares of get (or get-or-insert), insert and remove, in percent.
    pub mix: (u32, u32, u32),
    /// Whether a `get` that misses inserts the key.
    pub get_inserts: bool,
    /// The cache's capacity.
    pub capacity: u64,
    /// The key space: keys are drawn zipf over this many ranks.
    pub keys: u64,
    /// Whether every key is inserted before the warm-up.
    pub prefill: bool,
}

impl Workload {
    /// The operations that fill the cache before the warm-up (none unless `prefill`).
    pub fn fill(&self) -> Vec<Op> {
        if self.prefill {
            (0..self.keys).map(|r| Op::Insert(key_of(r))).collect()
        } else {
            Vec::new()
        }
    }
}

/// read-heavy, churn and write-heavy (see the `cache` bench's docs).
pub const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "read_heavy",
        mix: (98, 1, 1),
        get_inserts: true,
        capacity: KEYS / 5,
        keys: KEYS,
        prefill: false,
    },
    Workload {
        name: "churn",
        mix: (100, 0, 0),
        get_inserts: true,
        capacity: KEYS / 10,
        keys: KEYS * 10,
        prefill: false,
    },
    Workload {
        name: "write_heavy",
        mix: (50, 50, 0),
        get_inserts: false,
        capacity: KEYS,
        keys: KEYS,
        prefill: true,
    },
];

/// Spreads ranks over the key space so that hot keys are not neighbours.
pub fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Thread `seed`'s trace of `workload` with keys drawn zipf(`exponent`).
pub fn trace(seed: u64, exponent: f64, workload: Workload) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(workload.keys as f64, exponent).expect("valid zipf parameters");
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
pub trait Subject: Sync {
    /// Replays `ops`; returns the hits.
    fn replay(&self, ops: &[Op]) -> u64;
}

/// Replays `ops` given how a subject gets, inserts and removes.
#[inline(always)]
pub fn replay_with(
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
pub struct Papaya(pub papaya::HashMap<u64, u64>);

subject!(Papaya, |c| get(k): c.0.pin().get(&k).is_some(),
    insert(k, v): c.0.pin().insert(k, v), remove(k): c.0.pin().remove(&k));

/// The floor: a plain `hashbrown` map, replayed by one thread (the lock is taken once per
/// replay, not per operation).
pub struct Floor(pub std::sync::Mutex<hashbrown::HashMap<u64, u64>>);

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
pub struct StratacacheHandles(pub stratacache::Cache<u64, u64>);

impl Subject for StratacacheHandles {
    fn replay(&self, ops: &[Op]) -> u64 {
        replay_handle(&self.0.handle(), ops)
    }
}

/// Stratacache through handles and frames: every [`FRAME_OPS`] operations run under one
/// `CacheFrame` (one L1 pin), the way a game loop's frame does.
pub struct StratacacheFrames(pub stratacache::Cache<u64, u64>);

/// Operations per frame in the frames subject.
pub const FRAME_OPS: usize = 256;

impl Subject for StratacacheFrames {
    fn replay(&self, ops: &[Op]) -> u64 {
        replay_frames(&self.0.handle(), ops)
    }
}

/// Replays `ops` through `handle`, each operation a plain call (one L1 pin each); the hits.
pub fn replay_handle<S: std::hash::BuildHasher>(
    handle: &stratacache::CacheHandle<'_, u64, u64, S>,
    ops: &[Op],
) -> u64 {
    replay_with(
        ops,
        |k| handle.get(&k).is_some(),
        |k, v| drop(handle.insert(k, v)),
        |k| {
            handle.remove(&k);
        },
    )
}

/// Replays `ops` through `handle` in frames of [`FRAME_OPS`] operations; the hits.
pub fn replay_frames<S: std::hash::BuildHasher>(
    handle: &stratacache::CacheHandle<'_, u64, u64, S>,
    ops: &[Op],
) -> u64 {
    ops.chunks(FRAME_OPS)
        .map(|chunk| {
            let frame = handle.frame();
            replay_with(
                chunk,
                |k| frame.get(&k).is_some(),
                |k, v| drop(frame.insert(k, v)),
                |k| {
                    frame.remove(&k);
                },
            )
        })
        .sum()
}

/// Replays `window` (an index range into every trace) on one thread per trace; returns the time
/// and the hits.
pub fn run(
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

/// The thread counts to measure: `STRATACACHE_BENCH_THREADS` (comma-separated, `all` = every
/// CPU), default `1,2,all`, sorted and deduplicated.
pub fn thread_counts() -> Vec<usize> {
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

/// Warms `subject` with the first half of every trace (to a steady state), for [`time_windows`].
pub fn warm(subject: &dyn Subject, traces: &[Vec<Op>]) {
    run(subject, traces, 0..TRACE_PER_THREAD / 2);
}

/// Times `subject` on windows of [`OPS_PER_THREAD`] operations from the second half of every
/// trace, one window per criterion iteration, in turn (wrapping around).
pub fn time_windows(b: &mut criterion::Bencher<'_>, subject: &dyn Subject, traces: &[Vec<Op>]) {
    let half = TRACE_PER_THREAD / 2;
    let mut next = half;
    b.iter_custom(|iters| {
        (0..iters)
            .map(|_| {
                if next + OPS_PER_THREAD > TRACE_PER_THREAD {
                    next = half;
                }
                let window = next..next + OPS_PER_THREAD;
                next += OPS_PER_THREAD;
                run(subject, traces, window).0
            })
            .sum()
    });
}
