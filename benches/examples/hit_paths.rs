//! Each get-hit path on its own, for an instruction counter: `valgrind --tool=callgrind` (or
//! cachegrind) on two runs with different ROUNDS, the difference divided by the extra gets, is
//! the path's cost in instructions, free of this machine's timing noise.
//!
//! Paths: `l1` (L1 alone, guard held per batch), `cache_l1` (the tiered Cache, a frame per
//! batch, every key promoted), `cache_l2` (the same with an L1 of 7 entries), `plain_l1` and
//! `plain_l2` (the same two through plain `Cache::get` calls, no frame), `quick_cache`,
//! `hashbrown`; with the benches' `metrics` feature also `cache_l1_named` and `cache_l2_named`
//! (the same caches with a metrics name, so one lookup in 1,024 is timed). 16 384 `u64 → u64` keys, all resident.
//!
//! `cargo run --release -p stratacache-benches --example hit_paths -- PATH ROUNDS`

use std::hint::black_box;

const KEYS: u64 = 16_384;
const BATCH: usize = 1_024;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "cache_l1".into());
    let rounds: usize = args.next().map_or(10, |r| r.parse().expect("rounds"));
    let keys: Vec<u64> = (0..KEYS)
        .map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut found = 0u64;
    match path.as_str() {
        "l1" => {
            let table: stratacache::L1<u64, u64> =
                stratacache::L1::with_capacity(KEYS as usize * 7).expect("capacity");
            let handle = table.handle();
            for &k in &keys {
                handle.insert(k, k);
            }
            for _ in 0..rounds {
                for batch in keys.chunks(BATCH) {
                    let guard = handle.pin();
                    for k in batch {
                        found += u64::from(black_box(guard.get(k)).is_some());
                    }
                }
            }
        }
        "cache_l1" | "cache_l2" | "cache_l1_named" | "cache_l2_named" | "plain_l1" | "plain_l2" => {
            let named = path.ends_with("_named");
            let plain = path.starts_with("plain_");
            let path = path.trim_end_matches("_named").replace("plain_", "cache_");
            let path = path.as_str();
            let l1 = if path == "cache_l1" {
                KEYS as usize * 4
            } else {
                7
            };
            // A fixed hash seed: the default one is drawn per process, which moved the count
            // by ±10 instructions a hit between runs (the keys' shards and L1 sets change).
            let builder = stratacache::Cache::builder()
                .capacity(KEYS * 4)
                .l1_entries(l1)
                .promote_after(if path == "cache_l1" { 1 } else { 255 })
                .hasher(stratacache::hash::FixedState::with_seed(1));
            #[cfg(feature = "metrics")]
            let builder = if named {
                builder.metrics_name("hit_paths")
            } else {
                builder
            };
            #[cfg(not(feature = "metrics"))]
            assert!(
                !named,
                "the named paths need the benches' `metrics` feature"
            );
            let cache: stratacache::Cache<u64, u64, _> = builder.build().expect("valid");
            let handle = cache.handle();
            for &k in &keys {
                handle.insert(k, k).expect("room");
                handle.get(&k);
            }
            for _ in 0..rounds {
                if plain {
                    // Plain calls: each pins through the thread's own handle.
                    for k in &keys {
                        found += u64::from(black_box(cache.get(k)).is_some());
                    }
                    continue;
                }
                for batch in keys.chunks(BATCH) {
                    let frame = handle.frame();
                    for k in batch {
                        found += u64::from(black_box(frame.get(k)).is_some());
                    }
                }
            }
            let stats = cache.stats();
            eprintln!("L1 hits {}, L2 hits {}", stats.l1_hits, stats.l2_hits);
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(KEYS as usize * 2);
            for &k in &keys {
                cache.insert(k, k);
            }
            for _ in 0..rounds {
                for k in &keys {
                    found += u64::from(black_box(cache.get(k)).is_some());
                }
            }
        }
        "hashbrown" => {
            let map: hashbrown::HashMap<u64, u64> = keys.iter().map(|&k| (k, k)).collect();
            for _ in 0..rounds {
                for k in &keys {
                    found += u64::from(black_box(map.get(k)).is_some());
                }
            }
        }
        other => panic!("unknown path {other}"),
    }
    println!("{path}: {found} hits");
}
