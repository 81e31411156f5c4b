//! Hit ratios of the real `stratacache::Cache` (default settings, driven through `get` and
//! `insert`) beside quick_cache and moka on two of the shared traces: ARC's OLTP (count-based)
//! and libCacheSim's cloudPhysicsIO (size-aware: capacity in bytes, weight = object size).
//! A quick check used to tune the default policy until the simulator (issue 4) exists.
//!
//! Traces: the folder `STRATACACHE_TRACES` names (see `benches/TRACES.md`; OLTP: Megiddo & Modha, FAST'03; cloudPhysicsIO: libCacheSim).
//! `cargo run --release -p stratacache-benches --example trace_hit_ratio -- [TRACES_DIR]`

use std::io::Read;
use std::path::{Path, PathBuf};

fn oltp(dir: &Path) -> Vec<u64> {
    let file = std::fs::File::open(dir.join("arc/OLTP.lis.zst")).expect("OLTP trace");
    let mut text = String::new();
    zstd::Decoder::new(file)
        .expect("zstd stream")
        .read_to_string(&mut text)
        .expect("OLTP text");
    let mut keys = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(start), Some(count)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (start, count): (u64, u64) = (start.parse().unwrap(), count.parse().unwrap());
        keys.extend(start..start + count);
    }
    keys
}

fn cloud_physics(dir: &Path) -> Vec<(u64, u32)> {
    let bytes = std::fs::read(dir.join("libcachesim/cloudPhysicsIO.oracleGeneral.bin"))
        .expect("cloudPhysicsIO trace");
    bytes
        .chunks_exact(24)
        .map(|r| {
            let id = u64::from_le_bytes(r[4..12].try_into().unwrap());
            let size = u32::from_le_bytes(r[12..16].try_into().unwrap());
            (id, size)
        })
        .collect()
}

fn ratio(hits: usize, n: usize) -> f64 {
    100.0 * hits as f64 / n as f64
}

fn main() {
    let Some(dir) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("STRATACACHE_TRACES").ok())
        .map(PathBuf::from)
    else {
        eprintln!(
            "trace_hit_ratio: give the traces folder as the argument or in STRATACACHE_TRACES \
             (see benches/TRACES.md)"
        );
        std::process::exit(2);
    };
    let keys = oltp(&dir);
    println!("OLTP ({} requests): hit % by entries", keys.len());
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12}",
        "size", "strata", "strata 1sh", "quick_cache", "moka"
    );
    for size in [1_000u64, 2_000, 5_000, 10_000, 15_000] {
        let run_strata = |shards: Option<usize>| {
            let mut b = stratacache::Cache::builder().capacity(size);
            if let Some(s) = shards {
                b = b.shards(s);
            }
            let c: stratacache::Cache<u64, ()> = b.build().unwrap();
            keys.iter()
                .filter(|&&k| c.get(&k).is_some() || c.insert(k, ()).is_err())
                .count()
        };
        let q = quick_cache::sync::Cache::<u64, ()>::new(size as usize);
        let qh = keys
            .iter()
            .filter(|&&k| {
                q.get(&k).is_some() || {
                    q.insert(k, ());
                    false
                }
            })
            .count();
        let m = moka::sync::Cache::<u64, ()>::new(size);
        let mh = keys
            .iter()
            .filter(|&&k| {
                m.get(&k).is_some() || {
                    m.insert(k, ());
                    false
                }
            })
            .count();
        println!(
            "{size:>8} {:>12.2} {:>12.2} {:>12.2} {:>12.2}",
            ratio(run_strata(None), keys.len()),
            ratio(run_strata(Some(1)), keys.len()),
            ratio(qh, keys.len()),
            ratio(mh, keys.len())
        );
    }
    let reqs = cloud_physics(&dir);
    println!(
        "cloudPhysicsIO ({} requests): hit % by bytes (MiB)",
        reqs.len()
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12}",
        "MiB", "strata", "strata 1sh", "quick_cache"
    );
    for mib in [128u64, 256, 512, 1024] {
        let cap = mib << 20;
        let run_strata = |shards: Option<usize>| {
            let mut b = stratacache::Cache::builder()
                .capacity(cap)
                .weigher(|_: &u64, size: &u32| u64::from(*size));
            if let Some(s) = shards {
                b = b.shards(s);
            }
            let c = b.build().unwrap();
            reqs.iter()
                .filter(|&&(k, size)| c.get(&k).is_some() || c.insert(k, size).is_err())
                .count()
        };
        let q = quick_cache::sync::Cache::<u64, u32, _>::with_weighter(
            (cap / 4096) as usize,
            cap,
            SizeWeighter,
        );
        let qh = reqs
            .iter()
            .filter(|&&(k, size)| {
                q.get(&k).is_some() || {
                    q.insert(k, size);
                    false
                }
            })
            .count();
        println!(
            "{mib:>8} {:>12.2} {:>12.2} {:>12.2}",
            ratio(run_strata(None), reqs.len()),
            ratio(run_strata(Some(1)), reqs.len()),
            ratio(qh, reqs.len())
        );
    }
}

/// quick_cache weighs an entry by its object size.
#[derive(Clone)]
struct SizeWeighter;

impl quick_cache::Weighter<u64, u32> for SizeWeighter {
    fn weight(&self, _: &u64, size: &u32) -> u64 {
        u64::from(*size)
    }
}
