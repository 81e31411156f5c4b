//! Mixed-workload throughput of the tiered cache, side by side with the peers in one run:
//! quick_cache, moka, mini-moka, scc's `HashCache` and foyer's in-memory cache; dashmap and
//! papaya as references that never evict; a plain `hashbrown` map on one thread as the floor.
//!
//! Workloads, `u64 → u64`, keys drawn zipf(0.99) and zipf(0.8):
//! - `read_heavy`: over 1M keys, capacity 200k; 98 % read-through `get` (a miss inserts the
//!   key), 1 % `insert`, 1 % `remove`;
//! - `churn`: read-through `get` only, over 10M keys at capacity 100k, so it keeps evicting;
//! - `write_heavy`: 50 % `get`, 50 % `insert` over 1M keys, capacity 1M, filled first.
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

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stratacache_benches::mixed::{
    Floor, OPS_PER_THREAD, Op, Papaya, StratacacheFrames, StratacacheHandles, Subject,
    TRACE_PER_THREAD, WORKLOADS, run, thread_counts, time_windows, trace, warm,
};

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

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
            let fill = workload.fill();
            if !fill.is_empty() {
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
                    warm(subject.as_ref(), &traces);
                    let half = TRACE_PER_THREAD / 2;
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
                    group.bench_function(BenchmarkId::from_parameter(name), |b| {
                        time_windows(b, subject.as_ref(), &traces)
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
