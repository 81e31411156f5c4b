//! Prefetching through the plain cache: a sequential walk loaded ahead (the spawner running
//! each job at once, so the figures are exact), the same on real threads (every value right,
//! no key loaded twice at once), and a loader that fails.
#![cfg(feature = "std")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stratacache::Cache;
use stratacache::prefetch::{Job, Prefetch};

#[test]
fn a_sequential_walk_is_loaded_ahead_of_its_requests() {
    let walk = Cache::<u64, String>::builder()
        .capacity(10_000)
        .build()
        .unwrap()
        .prefetching(
            Prefetch::new().sequential(|&k| Some(k + 1), 8),
            |&k: &u64| Ok::<_, ()>(format!("chunk {k}")),
            |job: Job| job(),
        );
    for key in 0..1_000u64 {
        assert_eq!(walk.get(&key).unwrap(), format!("chunk {key}"));
    }
    assert!(
        walk.cache().stats().hits() >= 997,
        "{:?}",
        walk.cache().stats()
    );
    let stats = walk.stats();
    assert!(stats.used >= 997 && stats.wasted == 0, "{stats:?}");
}

#[test]
fn prefetches_on_other_threads_load_each_key_once_at_a_time_and_right() {
    let loads: Arc<Vec<AtomicUsize>> = Arc::new((0..2_100).map(|_| AtomicUsize::new(0)).collect());
    let counted = Arc::clone(&loads);
    let walk = Cache::<u64, String>::builder()
        .capacity(10_000)
        .build()
        .unwrap()
        .prefetching(
            Prefetch::new()
                .sequential(|&k| Some(k + 1), 16)
                .in_flight(8),
            move |&k: &u64| {
                counted[k as usize].fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(50));
                Ok::<_, ()>(format!("chunk {k}"))
            },
            |job: Job| drop(std::thread::spawn(job)),
        );
    for key in 0..2_000u64 {
        assert_eq!(walk.get(&key).unwrap(), format!("chunk {key}"));
    }
    // Let the last prefetches land.
    std::thread::sleep(std::time::Duration::from_millis(100));
    for (key, loads) in loads.iter().enumerate().take(2_000) {
        assert_eq!(loads.load(Ordering::Relaxed), 1, "key {key} loaded twice");
    }
    let stats = walk.stats();
    assert!(stats.used > 1_000, "{stats:?}");
}

#[test]
fn a_failing_prefetch_is_counted_and_stores_nothing() {
    let walk = Cache::<u64, String>::builder()
        .capacity(1_000)
        .build()
        .unwrap()
        .prefetching(
            Prefetch::new().sequential(|&k| Some(k + 1), 4),
            |&k: &u64| {
                if k % 2 == 1 {
                    Err(format!("no chunk {k}"))
                } else {
                    Ok(format!("chunk {k}"))
                }
            },
            |job: Job| job(),
        );
    assert!(walk.get(&0).is_ok());
    assert!(walk.get(&1).is_err());
    assert!(walk.get(&2).is_ok());
    assert!(walk.stats().failed >= 2, "{:?}", walk.stats());
    assert!(!walk.cache().contains_key(&3));
    assert_eq!(*walk.get(&3).unwrap_err(), "no chunk 3");
}
