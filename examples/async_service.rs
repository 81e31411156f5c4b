//! A small async service: an asset lookup in front of a slow backing store (2 ms a load, a
//! database or an object store), on tokio. Many client tasks load game levels for a few
//! seconds: each picks a level (zipf 0.9 over 400) and asks for its 50 assets in order. First
//! straight from the store, then through an `AsyncCache` (`get_with`: one load per miss,
//! however many clients miss it together), then through the cache with sequential
//! prefetching (a level's next assets are loaded while the client asks for the current one).
//! The example prints the latency percentiles and the loads of each.
//!
//! `cargo run --release --features async --example async_service -- [--seconds 3] [--clients 64]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use stratacache::Cache;
use stratacache::future::{AsyncCache, Prefetch};

const LEVELS: u64 = 400;
const ASSETS: u64 = 50;
const LOAD: Duration = Duration::from_millis(2);

/// The slow store behind the service.
struct Backend {
    loads: AtomicU64,
}

impl Backend {
    async fn load(&self, id: u64) -> Arc<str> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(LOAD).await;
        let level = id / ASSETS;
        Arc::from(format!("level {level} asset {id}: mesh, textures, sounds").as_str())
    }
}

/// Runs `clients` tasks for `seconds`, each asking for ids through `lookup`: the latencies.
async fn serve<F, Fut>(clients: usize, seconds: f64, lookup: F) -> Histogram<u64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Arc<str>> + Send,
{
    let lookup = Arc::new(lookup);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let lookup = Arc::clone(&lookup);
            tokio::spawn(async move {
                let zipf = Zipf::new(LEVELS as f64, 0.9).expect("zipf");
                let mut rng = SmallRng::seed_from_u64(client as u64);
                let mut latencies =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram");
                while Instant::now() < until {
                    let level = zipf.sample(&mut rng) as u64 - 1;
                    for id in level * ASSETS..(level + 1) * ASSETS {
                        let started = Instant::now();
                        let asset = lookup(id).await;
                        latencies.saturating_record(started.elapsed().as_micros() as u64);
                        std::hint::black_box(asset);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram");
    for task in tasks {
        all.add(task.await.expect("a client")).expect("same bounds");
    }
    all
}

fn report(name: &str, latencies: &Histogram<u64>, loads: u64, seconds: f64) {
    println!(
        "| {name} | {:.0} | {} | {} | {} | {} | {loads} |",
        latencies.len() as f64 / seconds,
        latencies.value_at_quantile(0.5),
        latencies.value_at_quantile(0.99),
        latencies.value_at_quantile(0.999),
        latencies.max(),
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut clients) = (3.0f64, 64usize);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => seconds = value.parse().expect("--seconds N"),
            "--clients" => clients = value.parse().expect("--clients N"),
            other => panic!("unknown flag {other} (--seconds, --clients)"),
        }
    }
    println!(
        "{clients} clients for {seconds} s each way; levels of {ASSETS} assets, zipf 0.9 over {LEVELS} levels; {LOAD:?} a load"
    );
    println!();
    println!("| lookups through | requests/s | p50 µs | p99 µs | p99.9 µs | max µs | loads |");
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let backend = Arc::new(Backend {
        loads: AtomicU64::new(0),
    });
    let direct = {
        let backend = Arc::clone(&backend);
        serve(clients, seconds, move |id| {
            let backend = Arc::clone(&backend);
            async move { backend.load(id).await }
        })
        .await
    };
    report(
        "the backing store",
        &direct,
        backend.loads.swap(0, Ordering::Relaxed),
        seconds,
    );

    let cache: AsyncCache<u64, Arc<str>> = Cache::builder()
        .capacity(5_000)
        .build()
        .expect("a cache")
        .into();
    let cached = {
        let (backend, cache) = (Arc::clone(&backend), cache.clone());
        serve(clients, seconds, move |id| {
            let (backend, cache) = (Arc::clone(&backend), cache.clone());
            async move { cache.get_with(&id, backend.load(id)).await }
        })
        .await
    };
    report(
        "AsyncCache (5,000 entries)",
        &cached,
        backend.loads.load(Ordering::Relaxed),
        seconds,
    );
    let hit_ratio = 100.0 * cache.sync().stats().hit_ratio();

    // Sequential prefetching: the next 8 assets of a level load while the client asks for
    // the current one, on tokio's tasks.
    backend.loads.store(0, Ordering::Relaxed);
    let fresh: AsyncCache<u64, Arc<str>> = Cache::builder()
        .capacity(5_000)
        .build()
        .expect("a cache")
        .into();
    let loader = {
        let backend = Arc::clone(&backend);
        move |id: u64| {
            let backend = Arc::clone(&backend);
            async move { Ok::<_, std::convert::Infallible>(backend.load(id).await) }
        }
    };
    let ahead = fresh.clone().prefetching(
        Prefetch::new()
            .sequential(|&id| (id % ASSETS != ASSETS - 1).then_some(id + 1), 8)
            .in_flight(256),
        loader,
        |load| {
            tokio::spawn(load);
        },
    );
    let prefetched = {
        let ahead = ahead.clone();
        serve(clients, seconds, move |id| {
            let ahead = ahead.clone();
            async move { ahead.get(&id).await.expect("loads never fail here") }
        })
        .await
    };
    report(
        "AsyncCache + sequential prefetching",
        &prefetched,
        backend.loads.load(Ordering::Relaxed),
        seconds,
    );
    let stats = ahead.stats();
    println!();
    println!(
        "cache hit ratio {hit_ratio:.1} % without prefetching; prefetches issued {}, used {}, wasted {}, dropped {}",
        stats.issued, stats.used, stats.wasted, stats.dropped
    );
}
