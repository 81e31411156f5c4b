//! Iterating a cache: every live entry once, expired ones skipped, through each front, and a
//! walk racing writers that sees only entries that were written, each key at most once, and
//! every entry that stayed. `retain`: what its predicate rejects goes (the listener told),
//! and an entry replaced after the predicate saw it stays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stratacache::{Cache, InsertOptions};

#[test]
fn every_live_entry_is_yielded_once_through_each_front() {
    let cache: Cache<u64, String> = Cache::builder().capacity(10_000).build().unwrap();
    for key in 0..1_000 {
        cache.insert(key, key.to_string()).unwrap();
    }
    // Promoted copies in L1 are not yielded again.
    for _ in 0..8 {
        for key in 0..100 {
            assert!(cache.get(&key).is_some());
        }
    }
    let check = |mut entries: Vec<(u64, String)>| {
        entries.sort();
        assert_eq!(entries.len(), 1_000);
        for (at, (key, value)) in entries.into_iter().enumerate() {
            assert_eq!((key, value), (at as u64, at.to_string()));
        }
    };
    check(cache.iter().collect());
    let handle = cache.handle();
    check(handle.iter().collect());
    check(handle.frame().iter().collect());
}

#[test]
fn expired_and_removed_entries_are_not_yielded() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let short = InsertOptions::new().time_to_live(Duration::from_millis(1));
    cache.insert_with(1, 10, short).unwrap();
    cache.insert(2, 20).unwrap();
    cache.insert(3, 30).unwrap();
    cache.remove(&3);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(cache.iter().collect::<Vec<_>>(), vec![(2, 20)]);
}

#[test]
fn a_walk_racing_writers_sees_written_entries_each_key_once_and_all_that_stayed() {
    // Keys 0..1 000 stay from start to end; keys 1 000..3 000 are inserted, replaced and
    // removed by two writers meanwhile. A value is its key times 1 000 plus a version.
    let cache: Cache<u64, u64> = Cache::builder().capacity(100_000).build().unwrap();
    for key in 0..1_000 {
        cache.insert(key, key * 1_000).unwrap();
    }
    let stop = AtomicBool::new(false);
    /// Stops the writers however the walk ends (a failed assertion too, or the scope would
    /// wait for them forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let (cache, stop) = (&cache, &stop);
            scope.spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    for key in 1_000 + writer * 1_000..2_000 + writer * 1_000 {
                        if (key + round) % 3 == 0 {
                            cache.remove(&key);
                        } else {
                            cache.insert(key, key * 1_000 + round % 1_000).unwrap();
                        }
                    }
                    round += 1;
                }
            });
        }
        let _stop = Stop(&stop);
        for _ in 0..50 {
            let mut seen = std::collections::HashSet::new();
            let mut stayed = 0;
            for (key, value) in cache.iter() {
                assert!(seen.insert(key), "key {key} yielded twice");
                assert_eq!(value / 1_000, key, "a value written for another key");
                assert!(key < 3_000, "a key never written");
                if key < 1_000 {
                    assert_eq!(value, key * 1_000, "a value that stayed changed");
                    stayed += 1;
                }
            }
            assert_eq!(stayed, 1_000, "an entry live throughout was missed");
        }
    });
}

#[test]
fn retain_removes_what_its_predicate_rejects_and_tells_the_listener() {
    use std::sync::Mutex;
    let told = std::sync::Arc::new(Mutex::new(Vec::new()));
    let cache: Cache<u64, u64> = {
        let told = std::sync::Arc::clone(&told);
        Cache::builder()
            .capacity(1_000)
            .eviction_listener(move |key: &u64, _: &u64, cause| {
                told.lock().unwrap().push((*key, cause));
            })
            .build()
            .unwrap()
    };
    for key in 0..100 {
        cache.insert(key, key * 10).unwrap();
    }
    assert_eq!(
        cache.retain(|key, value| key % 2 == 0 && *value == key * 10),
        50
    );
    let mut left: Vec<u64> = cache.iter().map(|(key, _)| key).collect();
    left.sort_unstable();
    assert_eq!(left, (0..100).step_by(2).collect::<Vec<_>>());
    assert_eq!(cache.get(&3), None);
    let told = told.lock().unwrap();
    assert_eq!(told.len(), 50);
    assert!(
        told.iter()
            .all(|&(key, cause)| key % 2 == 1 && cause == stratacache::RemovalCause::Removed)
    );
    assert_eq!(cache.stats().removed, 50);
}

#[test]
fn retain_leaves_an_entry_replaced_after_its_predicate_saw_it() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    for key in 0..10 {
        cache.insert(key, 0).unwrap();
    }
    // The predicate rejects every entry, but first replaces key 3 (re-entrant: it runs with
    // no lock held): the new value was never judged and stays.
    let removed = cache.retain(|&key, _| {
        if key == 3 {
            cache.insert(3, 33).unwrap();
        }
        false
    });
    assert_eq!(removed, 9);
    assert_eq!(cache.iter().collect::<Vec<_>>(), vec![(3, 33)]);
}
