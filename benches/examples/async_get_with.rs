//! `get_with` under tokio, side by side with moka's `future::Cache` and quick_cache's async
//! `get_or_insert_async`, in one run: tasks on a multi-thread runtime of 1, 2 and all the
//! machine's threads, each running read-through lookups whose loader is an `async` block
//! that returns at once (the cache's own cost, not a backend's).
//!
//! `cargo run --release -p stratacache-benches --example async_get_with` (interleaved rounds,
//! medians of three). Hot: 1,000 keys (zipf 0.99) in a cache of 100,000, all hits once loaded.
//! Cold: 10,000,000 keys (uniform) in a cache of 100,000, nearly every lookup a miss, a load
//! and an insertion with an eviction.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};
use stratacache::Cache;
use stratacache::future::AsyncCache;

const TASKS: usize = 64;
const OPS_PER_TASK: usize = 20_000;
const CAPACITY: u64 = 100_000;

#[derive(Clone, Copy)]
enum Keys {
    Hot,
    Cold,
}

fn keys(which: Keys, task: usize) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(task as u64);
    match which {
        Keys::Hot => {
            let zipf = Zipf::new(1_000.0, 0.99).expect("zipf");
            (0..OPS_PER_TASK)
                .map(|_| zipf.sample(&mut rng) as u64)
                .collect()
        }
        Keys::Cold => (0..OPS_PER_TASK)
            .map(|_| rng.random_range(0..10_000_000))
            .collect(),
    }
}

/// Runs `TASKS` tasks of `work` over their keys on `threads` worker threads: M ops/s.
fn run<C, F, Fut>(threads: usize, which: Keys, cache: C, work: F) -> f64
where
    C: Clone + Send + 'static,
    F: Fn(C, Vec<u64>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("a runtime");
    let work = Arc::new(work);
    let inputs: Vec<Vec<u64>> = (0..TASKS).map(|task| keys(which, task)).collect();
    runtime.block_on(async move {
        let started = Instant::now();
        let tasks: Vec<_> = inputs
            .into_iter()
            .map(|keys| tokio::spawn(work(cache.clone(), keys)))
            .collect();
        let mut sum = 0;
        for task in tasks {
            sum += task.await.expect("a task");
        }
        std::hint::black_box(sum);
        (TASKS * OPS_PER_TASK) as f64 / started.elapsed().as_secs_f64() / 1e6
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let all = std::thread::available_parallelism().map_or(2, usize::from);
    let mut counts = vec![1, 2, all];
    counts.dedup();
    println!(
        "| keys | threads | stratacache M ops/s | moka future M ops/s | quick_cache async M ops/s | ÷ moka | ÷ quick_cache |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for which in [Keys::Hot, Keys::Cold] {
        for &threads in &counts {
            let (mut ours, mut mokas, mut quicks) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                let cache: AsyncCache<u64, u64> = Cache::builder()
                    .capacity(CAPACITY)
                    .build()
                    .expect("builds")
                    .into();
                ours.push(run(threads, which, cache, |cache, keys| async move {
                    let mut sum = 0;
                    for key in keys {
                        sum += cache.get_with(&key, async move { key }).await;
                    }
                    sum
                }));
                let cache = moka::future::Cache::<u64, u64>::new(CAPACITY);
                mokas.push(run(threads, which, cache, |cache, keys| async move {
                    let mut sum = 0;
                    for key in keys {
                        sum += cache.get_with(key, async move { key }).await;
                    }
                    sum
                }));
                let cache = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize));
                quicks.push(run(threads, which, cache, |cache, keys| async move {
                    let mut sum = 0;
                    for key in keys {
                        let loaded = cache
                            .get_or_insert_async(&key, async move { Ok::<u64, ()>(key) })
                            .await;
                        sum += loaded.expect("infallible");
                    }
                    sum
                }));
            }
            let (ours, moka, quick) = (median(ours), median(mokas), median(quicks));
            println!(
                "| {} | {threads} | {ours:.2} | {moka:.2} | {quick:.2} | {:.2}× | {:.2}× |",
                match which {
                    Keys::Hot => "hot (1,000, zipf 0.99)",
                    Keys::Cold => "cold (10M, uniform)",
                },
                ours / moka,
                ours / quick
            );
        }
    }
}
