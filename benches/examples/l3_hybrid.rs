//! The cache with its disk tier beside foyer's hybrid cache, on one workload larger than
//! memory, the same disk, in one run: 10,000 entries of memory over 100,000 keys of 256-byte
//! values (zipf 0.9), read through (a miss inserts). Hit ratio (any tier), get latency
//! percentiles, and insertions per second.
//!
//! `cargo run --release -p stratacache-benches --example l3_hybrid -- [DIR] [OPS]` (default: a
//! fresh folder under the system's temporary directory, 1,000,000 operations). Both caches
//! write on eviction; both read a disk hit back into memory. foyer runs its block engine
//! (16 MiB blocks) over a 1 GiB file (room for every key: it stores each entry in 4 KiB-aligned space) with its default psync I/O engine; stratacache its
//! store with `SyncPolicy::Never` (neither syncs). The disk is the page cache here: a cold
//! device is slower for both.

use std::time::{Duration, Instant};

use foyer::{BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use stratacache::Cache;
use stratacache::l3::{Store, SyncPolicy};

const MEMORY: u64 = 10_000;
const KEYS: u64 = 100_000;
const VALUE: usize = 256;

/// One subject's figures.
struct Run {
    hits: u64,
    inserts: u64,
    gets: Histogram<u64>,
    elapsed: Duration,
}

impl Run {
    fn new() -> Self {
        Self {
            hits: 0,
            inserts: 0,
            gets: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
            elapsed: Duration::ZERO,
        }
    }

    fn print(&self, name: &str, ops: u64, disk: &str) {
        println!(
            "| {name} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {disk} |",
            100.0 * self.hits as f64 / ops as f64,
            ops as f64 / self.elapsed.as_secs_f64() / 1e6,
            self.inserts as f64 / self.elapsed.as_secs_f64() / 1e3,
            self.gets.value_at_quantile(0.5) as f64 / 1e3,
            self.gets.value_at_quantile(0.99) as f64 / 1e3,
            self.gets.value_at_quantile(0.999) as f64 / 1e3,
        );
    }
}

fn keys(ops: u64) -> Vec<u64> {
    let zipf = Zipf::new(KEYS as f64, 0.9).expect("zipf");
    let mut rng = SmallRng::seed_from_u64(2);
    (0..ops).map(|_| zipf.sample(&mut rng) as u64).collect()
}

fn value(key: u64) -> Vec<u8> {
    let mut value = vec![(key % 251) as u8; VALUE];
    value[..8].copy_from_slice(&key.to_le_bytes());
    value
}

fn ours(dir: &std::path::Path, keys: &[u64]) -> (Run, String) {
    let (store, _) = Store::builder(dir)
        .sync(SyncPolicy::Never)
        .open()
        .expect("opens");
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .capacity(MEMORY)
        .build_persistent(store)
        .expect("builds");
    let mut run = Run::new();
    let started = Instant::now();
    for &key in keys {
        let at = Instant::now();
        let found = cache.get(&key);
        run.gets.saturating_record(at.elapsed().as_nanos() as u64);
        match found {
            Some(found) => {
                debug_assert_eq!(found[..8], key.to_le_bytes());
                run.hits += 1;
            }
            None => {
                cache.insert(key, value(key)).expect("insert");
                run.inserts += 1;
            }
        }
    }
    run.elapsed = started.elapsed();
    let stats = cache.persistent_stats().expect("a disk tier");
    let disk = format!(
        "{} MiB, {} dropped",
        stats.disk_bytes >> 20,
        stats.dropped_writes
    );
    (run, disk)
}

async fn foyers(dir: &std::path::Path, keys: &[u64]) -> (Run, String) {
    let device = FsDeviceBuilder::new(dir)
        .with_capacity(1 << 30)
        .build()
        .expect("a device");
    let hybrid: HybridCache<u64, Vec<u8>> = HybridCacheBuilder::new()
        .memory(MEMORY as usize)
        .storage()
        .with_engine_config(BlockEngineConfig::new(device))
        .build()
        .await
        .expect("builds");
    let mut run = Run::new();
    let started = Instant::now();
    for &key in keys {
        let at = Instant::now();
        let found = hybrid.get(&key).await.expect("get");
        run.gets.saturating_record(at.elapsed().as_nanos() as u64);
        match found {
            Some(found) => {
                debug_assert_eq!(found.value()[..8], key.to_le_bytes());
                run.hits += 1;
            }
            None => {
                hybrid.insert(key, value(key));
                run.inserts += 1;
            }
        }
    }
    run.elapsed = started.elapsed();
    let stats = hybrid.statistics();
    let disk = format!("{} MiB written", stats.disk_write_bytes() >> 20);
    hybrid.close().await.expect("closes");
    (run, disk)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("stratacache-l3-hybrid-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let ops: u64 = args
        .next()
        .map_or(1_000_000, |ops| ops.parse().expect("OPS"));
    let _ = std::fs::remove_dir_all(&dir);
    let keys = keys(ops);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{ops} read-through operations, {MEMORY} entries of memory over {KEYS} keys of {VALUE}-byte values (zipf 0.9)"
    );
    println!();
    println!(
        "| cache | hit ratio % | M ops/s | inserts k/s | get p50 µs | get p99 µs | get p99.9 µs | disk |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    // Two rounds, alternating, each on a fresh directory.
    for round in 0..2 {
        let (run, disk) =
            runtime.block_on(async { ours(&dir.join(format!("ours-{round}")), &keys) });
        run.print("stratacache + L3", ops, &disk);
        let (run, disk) = runtime.block_on(foyers(&dir.join(format!("foyer-{round}")), &keys));
        run.print("foyer hybrid", ops, &disk);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
