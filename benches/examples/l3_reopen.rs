//! The time to reopen 1 GiB of the disk tier and warm a cache with it: one million records of
//! 1,000-byte values (random bytes: stored uncompressed), written, the store closed, then
//! reopened (the index rebuilt from every segment, every record checksummed) and a cache of
//! room for all of them warmed from it, Critical records first.
//!
//! `cargo run --release -p stratacache-benches --example l3_reopen -- [DIR] [RECORDS]`
//! (default: a fresh folder under the system's temporary directory, 1,000,000 records). Where
//! it may (root on Linux), it drops the page cache before reopening, so the reads come from
//! the device; it says which it measured.

use std::time::Instant;

use stratacache::l3::{Store, SyncPolicy};
use stratacache::{Cache, InsertOptions, Priority};

const VALUE: usize = 1_000;

fn value(key: u64) -> Vec<u8> {
    let mut state = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..VALUE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("stratacache-l3-reopen-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let records: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("RECORDS"));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        Store::builder(&dir)
            .sync(SyncPolicy::Never)
            .compress_from(None)
            .open()
            .expect("opens")
    };
    {
        // Written through a cache, one record in a hundred Critical (written through at once),
        // the rest written back at the end, as a clean shutdown does.
        let (store, _) = open();
        let cache: Cache<u64, Vec<u8>> = Cache::builder()
            .capacity(records + 1)
            .write_through(Priority::Critical)
            .build_persistent(store)
            .expect("builds");
        let started = Instant::now();
        for key in 0..records {
            let priority = if key % 100 == 0 {
                Priority::Critical
            } else {
                Priority::High
            };
            let options = InsertOptions::new().priority(priority);
            cache.insert_with(key, value(key), options).expect("insert");
        }
        cache.write_back().expect("write back");
        let written = started.elapsed();
        let stats = cache.persistent_stats().expect("a disk tier");
        println!(
            "wrote {records} records ({:.2} GiB on disk) in {:.2} s",
            stats.disk_bytes as f64 / f64::from(1u32 << 30),
            written.as_secs_f64()
        );
    }
    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    println!(
        "{}",
        if cold {
            "page cache dropped: the reads come from the device"
        } else {
            "page cache kept (not root): the reads come from memory"
        }
    );
    let started = Instant::now();
    let (store, report) = open();
    let reopened = started.elapsed();
    println!(
        "reopened: {} entries from {} segments in {:.0} ms ({} damaged, torn tail {})",
        report.entries,
        report.segments,
        reopened.as_secs_f64() * 1e3,
        report.corrupt_records,
        report.torn_tail
    );
    let started = Instant::now();
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .capacity(records + 1)
        .build_persistent(store)
        .expect("builds");
    println!(
        "a cache built over it (the index keyed by the cache's hash of each key) in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let critical = cache.warm((records / 100) as usize);
    let first = started.elapsed();
    let rest = cache.warm(records as usize);
    let warmed = started.elapsed();
    println!(
        "warmed: the {critical} Critical records in {:.0} ms, all {} in {:.0} ms ({:.2} GiB/s)",
        first.as_secs_f64() * 1e3,
        critical + rest,
        warmed.as_secs_f64() * 1e3,
        (records * VALUE as u64) as f64 / f64::from(1u32 << 30) / warmed.as_secs_f64()
    );
    assert_eq!(cache.get(&7), Some(value(7)));
    drop(cache);
    let _ = std::fs::remove_dir_all(&dir);
}
