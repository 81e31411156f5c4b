//! The persistent tier's first figures: the store's writes and reads, its reopening, and a
//! cache whose working set is ten times its memory, with and without the disk tier.
//!
//! `cargo run --release -p stratacache-benches --example l3_paths -- [DIR]` (default: a fresh
//! folder under the system's temporary directory). The store's reads hit the page cache here;
//! a cold disk is slower.

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};
use stratacache::Cache;
use stratacache::l3::{Store, SyncPolicy};

const RECORDS: u64 = 200_000;
const VALUE: usize = 256;

fn main() {
    let dir = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("stratacache-l3-paths-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let value = vec![7u8; VALUE];

    // Writes through the queue and the writer thread, then one sync.
    let (store, _) = Store::builder(dir.join("store"))
        .sync(SyncPolicy::Never)
        .open()
        .expect("opens");
    let started = Instant::now();
    for key in 0..RECORDS {
        store.put(&key.to_le_bytes(), &value).expect("put");
    }
    store.sync().expect("sync");
    let put = started.elapsed();
    let mut rng = SmallRng::seed_from_u64(1);
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..RECORDS {
        let key = rng.random_range(0..RECORDS);
        found += usize::from(store.get(&key.to_le_bytes()).expect("get").is_some());
    }
    let get = started.elapsed();
    assert_eq!(found as u64, RECORDS);
    drop(store);
    let started = Instant::now();
    let (store, report) = Store::builder(dir.join("store")).open().expect("reopens");
    let reopen = started.elapsed();
    println!(
        "store, {RECORDS} records of {VALUE} bytes: put {:.0} k/s, get {:.0} k/s (page cache), reopen {:.0} ms ({} entries, {} MiB)",
        RECORDS as f64 / put.as_secs_f64() / 1e3,
        RECORDS as f64 / get.as_secs_f64() / 1e3,
        reopen.as_secs_f64() * 1e3,
        report.entries,
        store.stats().disk_bytes >> 20,
    );
    drop(store);

    // A cache of 10,000 entries over 100,000 keys (zipf 0.9), read through.
    let keys = 100_000u64;
    let zipf = Zipf::new(keys as f64, 0.9).expect("zipf");
    for persistent in [false, true] {
        let builder = Cache::<u64, Vec<u8>>::builder().capacity(10_000);
        let cache = if persistent {
            let (store, _) = Store::builder(dir.join("tier"))
                .sync(SyncPolicy::Never)
                .open()
                .expect("opens");
            builder.build_persistent(store).expect("builds")
        } else {
            builder.build().expect("builds")
        };
        let mut rng = SmallRng::seed_from_u64(2);
        let ops = 1_000_000u64;
        let mut hits = 0u64;
        let started = Instant::now();
        for _ in 0..ops {
            let key = zipf.sample(&mut rng) as u64;
            if cache.get(&key).is_some() {
                hits += 1;
            } else {
                cache.insert(key, value.clone()).expect("insert");
            }
        }
        let elapsed = started.elapsed();
        println!(
            "cache of 10,000 over {keys} keys (zipf 0.9), {}: hit ratio {:.2} %, {:.2} M ops/s{}",
            if persistent {
                "with the disk tier"
            } else {
                "memory only"
            },
            100.0 * hits as f64 / ops as f64,
            ops as f64 / elapsed.as_secs_f64() / 1e6,
            cache
                .persistent_stats()
                .map(|s| format!(
                    ", disk {} MiB, {} dropped writes",
                    s.disk_bytes >> 20,
                    s.dropped_writes
                ))
                .unwrap_or_default(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
