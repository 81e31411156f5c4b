//! `Cache::health`: each concern reported when its threshold is crossed, and only then.

use stratacache::{Cache, Concern, HealthThresholds};

#[test]
fn a_hit_ratio_below_the_minimum_since_the_last_check_is_a_concern() {
    let thresholds = HealthThresholds {
        min_hit_ratio: 0.5,
        min_lookups: 100,
        ..HealthThresholds::default()
    };
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(1_000)
        .health_thresholds(thresholds)
        .build()
        .unwrap();
    for key in 0..50 {
        cache.get(&key);
    }
    // Too few lookups to judge.
    assert!(cache.health().is_healthy());
    for key in 0..200 {
        cache.get(&key);
    }
    let health = cache.health();
    match health.concerns.as_slice() {
        [Concern::LowHitRatio { ratio, lookups, .. }] => {
            assert_eq!(*lookups, 200, "only the lookups since the last check");
            assert!(*ratio < 0.01);
        }
        other => panic!("{other:?}"),
    }
    assert!(health.to_string().contains("below 50.0 %"), "{health}");
    // Then a window of hits: healthy again.
    for key in 0..100 {
        cache.insert(key, key).unwrap();
    }
    for _ in 0..5 {
        for key in 0..100 {
            cache.get(&key);
        }
    }
    assert!(cache.health().is_healthy(), "{}", cache.health());
}

#[test]
fn a_memory_budget_nearly_spent_is_a_concern() {
    let thresholds = HealthThresholds {
        memory_fraction: 0.5,
        ..HealthThresholds::default()
    };
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(u64::MAX)
        .memory_budget(256 * 1024)
        .health_thresholds(thresholds)
        .build()
        .unwrap();
    assert!(cache.health().is_healthy(), "{}", cache.health());
    for key in 0..100_000 {
        let _ = cache.insert(key, key);
    }
    let health = cache.health();
    assert!(
        health
            .concerns
            .iter()
            .any(|c| matches!(c, Concern::MemoryNearlySpent { in_use, limit } if in_use <= limit)),
        "{health}"
    );
}

#[cfg(feature = "persistent")]
#[test]
fn a_disk_budget_nearly_spent_is_a_concern() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = stratacache::l3::Store::builder(dir.path())
        .segment_bytes(64 * 1024)
        .disk_budget(512 * 1024)
        .open()
        .unwrap();
    let thresholds = HealthThresholds {
        disk_fraction: 0.75,
        ..HealthThresholds::default()
    };
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .capacity(10)
        .health_thresholds(thresholds)
        .build_persistent(store)
        .unwrap();
    assert!(cache.health().is_healthy());
    for key in 0..2_000u64 {
        cache.insert(key, vec![7; 1_000]).unwrap();
    }
    cache.write_back().unwrap();
    let health = cache.health();
    assert!(
        health.concerns.iter().any(|c| matches!(
            c,
            Concern::DiskNearlySpent {
                budget: 524_288,
                ..
            }
        )),
        "{health}"
    );
}
