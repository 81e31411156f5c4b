//! Single-thread get-hit latency of L1 over a resident working set, side by side with a plain
//! `hashbrown::HashMap` (the physical floor) and the concurrent peers: quick_cache, moka,
//! mini-moka, scc's `HashCache`, foyer, dashmap and papaya; and the tiered `Cache`'s get when
//! L1 answers and when L2 does.
//!
//! Every iteration looks up `BATCH` keys in a shuffled order (all present). L1 and papaya are
//! measured both the way a frame loop uses them (one pin per batch) and with a pin per get.
//!
//! `cargo bench -p stratacache-benches --bench l1` (add `-- --quick` for a short run).

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stratacache::L1;
use stratacache::hash::FixedState;
use stratacache_benches::{Rng, keys_and_lookup_order};

const WORKING_SET: usize = 16_384;
const BATCH: usize = 1024;

fn bench_value<V: Clone + Send + Sync + 'static>(
    c: &mut Criterion,
    name: &str,
    make: fn(u64) -> V,
) {
    let (candidates, _) = keys_and_lookup_order(WORKING_SET, 0x5EED);

    // L1 sized at about one key per set, with a fixed seed so every run measures the same
    // placement. The few keys whose set overflowed are left out of every structure's working
    // set, so all rows look up exactly the same, fully resident keys.
    let hasher = FixedState::with_seed(0x5EED);
    let table: L1<u64, V, FixedState> =
        L1::with_capacity_and_hasher(WORKING_SET * 7, hasher.clone()).unwrap();
    let handle = table.handle();
    for &k in &candidates {
        handle.insert(k, make(k));
    }
    let keys: Vec<u64> = {
        let guard = handle.pin();
        candidates
            .iter()
            .copied()
            .filter(|k| guard.get(k).is_some())
            .collect()
    };
    assert!(
        keys.len() * 1000 >= candidates.len() * 999,
        "L1 must hold the working set"
    );
    let mut order = keys.clone();
    Rng::new(0x0DE7).shuffle(&mut order);
    let batches: Vec<&[u64]> = order.chunks_exact(BATCH).collect();
    let mut group = c.benchmark_group(format!("l1_get_hit/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));

    // The floor: a single-thread hash map with the same hasher.
    let mut map = hashbrown::HashMap::with_capacity_and_hasher(keys.len(), hasher);
    for &k in &keys {
        map.insert(k, make(k));
    }
    let mut i = 0;
    group.bench_function(BenchmarkId::new("hashbrown", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(map.get(k));
            }
        })
    });

    group.bench_function(
        BenchmarkId::new("stratacache_l1_guard_per_batch", WORKING_SET),
        |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                let guard = handle.pin();
                for k in batches[i] {
                    black_box(guard.get(k));
                }
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("stratacache_l1_get_cloned", WORKING_SET),
        |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                for k in batches[i] {
                    black_box(table.get_cloned(k));
                }
            })
        },
    );

    // The tiered cache: a hit answered by L1 (every key promoted first), and one answered by
    // L2 (an L1 of 7 entries and promotion after 255 L2 hits, so nearly every get goes to a
    // shard). Both read through a frame held per batch, and clone the value.
    for (label, l1_entries, promote_after) in [
        ("stratacache_cache_l1_hit", Some(WORKING_SET * 4), 1),
        ("stratacache_cache_l2_hit", Some(7), 255),
    ] {
        let mut builder = stratacache::Cache::builder()
            .capacity(WORKING_SET as u64 * 4)
            .promote_after(promote_after);
        if let Some(entries) = l1_entries {
            builder = builder.l1_entries(entries);
        }
        let cache: stratacache::Cache<u64, V> = builder.build().unwrap();
        let cache_handle = cache.handle();
        for &k in &keys {
            cache_handle.insert(k, make(k)).unwrap();
            cache_handle.get(&k); // one L2 hit: promoted when `promote_after` is 1
        }
        let before = cache.stats();
        for &k in &keys {
            assert!(
                cache_handle.get(&k).is_some(),
                "the cache holds the working set"
            );
        }
        let after = cache.stats();
        let l1_share = (after.l1_hits - before.l1_hits) as f64 / keys.len() as f64;
        eprintln!(
            "{label}: {:.1} % of the checking gets answered by L1",
            100.0 * l1_share
        );
        group.bench_function(BenchmarkId::new(label, WORKING_SET), |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                let frame = cache_handle.frame();
                for k in batches[i] {
                    black_box(frame.get(k));
                }
            })
        });
    }

    let quick = quick_cache::sync::Cache::<u64, V>::new(WORKING_SET * 2);
    for &k in &keys {
        quick.insert(k, make(k));
    }
    assert!(
        keys.iter().all(|k| quick.get(k).is_some()),
        "quick_cache must hold the working set"
    );
    group.bench_function(BenchmarkId::new("quick_cache", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(quick.get(k));
            }
        })
    });

    // The other evicting peers, each with room for the whole working set.
    let capacity = WORKING_SET as u64 * 2;
    let moka = moka::sync::Cache::<u64, V>::new(capacity);
    let mini_moka = mini_moka::sync::Cache::<u64, V>::new(capacity);
    // scc evicts within a bucket, so it needs more room than the others to hold every key.
    let scc = scc::HashCache::<u64, V>::with_capacity(capacity as usize * 4, capacity as usize * 4);
    let foyer: foyer::Cache<u64, V> =
        foyer::CacheBuilder::new(capacity as usize).build::<foyer::CacheProperties>();
    for &k in &keys {
        moka.insert(k, make(k));
        mini_moka.insert(k, make(k));
        let _ = scc.put_sync(k, make(k));
        foyer.insert(k, make(k));
    }
    moka.run_pending_tasks();
    let held = |name: &str, held: usize| {
        assert!(
            held * 100 >= keys.len() * 99,
            "{name} must hold the working set"
        );
    };
    held(
        "moka",
        keys.iter().filter(|&k| moka.get(k).is_some()).count(),
    );
    held(
        "scc",
        keys.iter()
            .filter(|&k| scc.read_sync(k, |_, _| ()).is_some())
            .count(),
    );
    group.bench_function(BenchmarkId::new("moka", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(moka.get(k));
            }
        })
    });
    group.bench_function(BenchmarkId::new("mini_moka", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(mini_moka.get(k));
            }
        })
    });
    group.bench_function(BenchmarkId::new("scc_hashcache", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(scc.read_sync(k, |_, v| v.clone()));
            }
        })
    });
    group.bench_function(BenchmarkId::new("foyer", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(foyer.get(k).map(|e| e.value().clone()));
            }
        })
    });

    let dash = dashmap::DashMap::<u64, V>::with_capacity(keys.len());
    for &k in &keys {
        dash.insert(k, make(k));
    }
    group.bench_function(BenchmarkId::new("dashmap", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(dash.get(k).as_deref().map(|v| v as *const V));
            }
        })
    });

    let papaya = papaya::HashMap::<u64, V>::with_capacity(keys.len());
    {
        let pinned = papaya.pin();
        for &k in &keys {
            pinned.insert(k, make(k));
        }
    }
    group.bench_function(
        BenchmarkId::new("papaya_guard_per_batch", WORKING_SET),
        |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                let pinned = papaya.pin();
                for k in batches[i] {
                    black_box(pinned.get(k));
                }
            })
        },
    );
    group.bench_function(BenchmarkId::new("papaya_pin_per_get", WORKING_SET), |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            for k in batches[i] {
                black_box(papaya.pin().get(k).cloned());
            }
        })
    });
    group.finish();
}

fn l1_get_hit(c: &mut Criterion) {
    bench_value(c, "u64", |k| k);
    bench_value(c, "bytes64", |k| [k as u8; 64]);
}

criterion_group!(benches, l1_get_hit);
criterion_main!(benches);
