//! The cache with its persistent tier: what leaves memory comes back from disk, a write in
//! memory hides what the disk holds of its key, a reopened cache serves what the last one
//! wrote, and under threads no lookup returns a value older than a completed write.
#![cfg(feature = "persistent")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stratacache::l3::{Compression, Store, SyncPolicy};
use stratacache::{Cache, InsertOptions, Priority};

fn store(dir: &std::path::Path) -> Store {
    Store::builder(dir)
        .segment_bytes(64 * 1024)
        .sync(SyncPolicy::Never)
        .open()
        .expect("opens")
        .0
}

fn cache(dir: &std::path::Path, capacity: u64) -> Cache<u64, String> {
    Cache::builder()
        .capacity(capacity)
        .build_persistent(store(dir))
        .expect("builds")
}

#[test]
fn values_evicted_from_memory_come_back_from_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path(), 64);
    for key in 0..2_000u64 {
        cache.insert(key, format!("value {key}")).unwrap();
    }
    assert!(cache.stats().evicted_capacity > 1_000);
    for key in 0..2_000u64 {
        assert_eq!(cache.get(&key), Some(format!("value {key}")), "key {key}");
    }
    let stats = cache.stats();
    assert!(stats.l3_hits > 1_000, "{stats:?}");
    // Every lookup above hit some tier.
    assert_eq!(stats.misses, 0, "{stats:?}");
    assert!((stats.hit_ratio() - 1.0).abs() < 1e-9);
    assert!(stats.l3_hit_ratio() > 0.99);
    assert!(cache.persistent_stats().unwrap().entries > 1_000);
    // A key never stored is a miss in every tier.
    assert_eq!(cache.get(&9_999_999), None);
}

/// Pushes everything else out of a cache of capacity 64.
fn churn(cache: &Cache<u64, String>, from: u64) {
    for key in from..from + 500 {
        cache.insert(key, String::from("filler")).unwrap();
    }
}

#[test]
fn a_write_in_memory_hides_the_older_value_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path(), 64);
    cache.insert(1, String::from("old")).unwrap();
    churn(&cache, 1_000);
    // The old value is on disk only now; a new one goes into memory.
    cache.insert(1, String::from("new")).unwrap();
    assert_eq!(cache.get(&1).as_deref(), Some("new"));
    // Removed in memory: the disk's old value must not come back.
    assert_eq!(cache.remove(&1).as_deref(), Some("new"));
    assert_eq!(cache.get(&1), None);
    churn(&cache, 2_000);
    assert_eq!(cache.get(&1), None);
    // Removing a key that is on disk only hides it too.
    cache.insert(2, String::from("two")).unwrap();
    churn(&cache, 3_000);
    cache.remove(&2);
    assert_eq!(cache.get(&2), None);
}

#[test]
fn a_reopened_cache_serves_what_the_last_one_wrote_to_disk_and_nothing_it_superseded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = cache(dir.path(), 64);
        for key in 0..1_000u64 {
            cache.insert(key, format!("value {key}")).unwrap();
        }
        // Key 5's disk value is superseded by one that stays in memory, then the cache goes.
        cache
            .insert(5, String::from("newer, in memory only"))
            .unwrap();
    }
    // What the last cache held in memory alone is gone; what it evicted to disk is here.
    let cache = cache(dir.path(), 64);
    let mut found = 0;
    for key in 0..1_000u64 {
        if let Some(value) = cache.get(&key) {
            assert_eq!(value, format!("value {key}"));
            found += 1;
        }
    }
    assert!(found >= 1_000 - 64 - 1, "{found}");
    assert_eq!(
        cache.get(&5),
        None,
        "the superseded value must not come back"
    );
}

#[test]
fn clearing_the_cache_empties_its_disk_tier_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path(), 64);
    for key in 0..500u64 {
        cache.insert(key, format!("value {key}")).unwrap();
    }
    cache.clear();
    for key in 0..500u64 {
        assert_eq!(cache.get(&key), None, "key {key}");
    }
    assert_eq!(cache.persistent_stats().unwrap().entries, 0);
}

#[test]
fn a_time_to_live_holds_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u64, String> = Cache::builder()
        .capacity(64)
        .time_to_live(std::time::Duration::from_millis(300))
        .build_persistent(store(dir.path()))
        .unwrap();
    cache.insert(1, String::from("short-lived")).unwrap();
    churn(&cache, 1_000);
    assert_eq!(
        cache.get(&1).as_deref(),
        Some("short-lived"),
        "read back in time"
    );
    churn(&cache, 2_000);
    // The disk keeps the time the entry had left, on the wall clock (which a restart keeps).
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(cache.get(&1), None);
}

/// Writers own disjoint keys and write increasing versions (inserts and removals); after an
/// operation of version `n` on a key completes, a lookup may return only `None` or a value of
/// at least `n` (a removal at `n` allows only later values).
#[test]
fn under_threads_no_lookup_returns_a_value_older_than_a_completed_write() {
    no_lookup_older_than_a_completed_write(false);
}

#[test]
fn with_writes_through_no_lookup_returns_a_value_older_than_a_completed_write() {
    no_lookup_older_than_a_completed_write(true);
}

/// Two writers and two readers on 64 keys through a cache of 32 entries; with `through`,
/// every third write is written through.
fn no_lookup_older_than_a_completed_write(through: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(32)
        .build_persistent(store(dir.path()))
        .unwrap();
    const KEYS: u64 = 64;
    let floors: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (cache, floors) = (cache.clone(), Arc::clone(&floors));
            std::thread::spawn(move || {
                for version in 1..=1_500u64 {
                    let key = w + 2 * (version % (KEYS / 2));
                    if version % 7 == 0 {
                        cache.remove(&key);
                    } else {
                        let options =
                            InsertOptions::new().write_through(through && version % 3 == 0);
                        cache.insert_with(key, version, options).unwrap();
                    }
                    floors[key as usize].store(version, Ordering::Release);
                }
            })
        })
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (cache, floors, done) = (cache.clone(), Arc::clone(&floors), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0.. {
                    if i >= 6_000 && done.load(Ordering::Acquire) {
                        break;
                    }
                    let key = (i * 13 + r) % KEYS;
                    let floor = floors[key as usize].load(Ordering::Acquire);
                    if let Some(value) = cache.get(&key) {
                        assert!(
                            value >= floor,
                            "key {key}: read {value} after version {floor}"
                        );
                    }
                }
            })
        })
        .collect();
    for thread in writers {
        thread.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for thread in readers {
        thread.join().unwrap();
    }
    assert!(cache.stats().l3_hits > 0, "{:?}", cache.stats());
}

#[test]
fn after_a_write_back_a_reopened_cache_has_everything_the_last_one_held() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = cache(dir.path(), 64);
        for key in 0..1_000u64 {
            cache.insert(key, format!("value {key}")).unwrap();
        }
        cache.insert(5, String::from("newest")).unwrap();
        // Everything in memory (64 entries at most) goes to disk too.
        let written = cache.write_back().unwrap();
        assert!((1..=64).contains(&written), "{written}");
    }
    let cache = cache(dir.path(), 64);
    for key in 0..1_000u64 {
        let expected = if key == 5 {
            String::from("newest")
        } else {
            format!("value {key}")
        };
        assert_eq!(cache.get(&key), Some(expected), "key {key}");
    }
}

#[test]
fn warming_after_a_write_back_brings_back_what_memory_held() {
    let dir = tempfile::tempdir().unwrap();
    let held: Vec<u64> = {
        let cache = cache(dir.path(), 64);
        for key in 0..1_000u64 {
            cache.insert(key, format!("value {key}")).unwrap();
        }
        let held: Vec<u64> = cache.iter().map(|(key, _)| key).collect();
        cache.write_back().unwrap();
        held
    };
    assert!(!held.is_empty());
    let cache = cache(dir.path(), 64);
    let warmed = cache.warm(held.len());
    assert_eq!(warmed, held.len());
    for &key in &held {
        assert_eq!(cache.get(&key), Some(format!("value {key}")));
    }
    let stats = cache.stats();
    assert_eq!(stats.l3_hits, 0, "all from memory: {stats:?}");
    // Warming never overwrites a write made in memory meanwhile.
    cache
        .insert(held[0], String::from("written after the restart"))
        .unwrap();
    cache.warm(1_000);
    assert_eq!(
        cache.get(&held[0]).as_deref(),
        Some("written after the restart")
    );
}

#[test]
fn records_a_codec_cannot_read_are_misses_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Written as strings of various lengths...
        let cache = cache(dir.path(), 8);
        for key in 0..100u64 {
            cache.insert(key, "x".repeat(key as usize % 13)).unwrap();
        }
        cache.write_back().unwrap();
    }
    // ...read as integers: only the values of exactly eight bytes decode.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(8)
        .build_persistent(store(dir.path()))
        .unwrap();
    for key in 0..100u64 {
        let value = cache.get(&key);
        if key % 13 == 8 {
            assert_eq!(value, Some(u64::from_le_bytes(*b"xxxxxxxx")), "key {key}");
        } else {
            assert_eq!(value, None, "key {key}");
        }
    }
}

#[test]
fn entries_written_through_are_on_disk_before_memory_evicts_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::builder(dir.path())
            .sync(SyncPolicy::Always)
            .open()
            .unwrap()
            .0;
        let cache: Cache<u64, String> = Cache::builder()
            .capacity(1_000)
            .write_through(Priority::Critical)
            .build_persistent(store)
            .unwrap();
        for key in 0..100u64 {
            let priority = if key % 10 == 0 {
                Priority::Critical
            } else {
                Priority::High
            };
            let options = InsertOptions::new().priority(priority);
            cache
                .insert_with(key, format!("value {key}"), options)
                .unwrap();
        }
        // One High entry asks for it itself; one Critical entry declines.
        let through = InsertOptions::new().write_through(true);
        cache
            .insert_with(101, String::from("asked"), through)
            .unwrap();
        let not = InsertOptions::new()
            .priority(Priority::Critical)
            .write_through(false);
        cache
            .insert_with(102, String::from("declined"), not)
            .unwrap();
        // Nothing was evicted: only the written-through entries are on disk.
        assert_eq!(cache.persistent_stats().unwrap().entries, 11);
        // A written-through record compressed as its options ask.
        let before = cache.persistent_stats().unwrap().bytes_written;
        let packed = InsertOptions::new()
            .write_through(true)
            .compression(Compression::Zstd);
        cache
            .insert_with(103, "tile ".repeat(2_000), packed)
            .unwrap();
        let written = cache.persistent_stats().unwrap().bytes_written - before;
        assert!(written < 1_000, "{written} bytes for 10,000 of text");
        cache.remove(&103);
        // A value stored again without write-through hides its older record.
        cache.insert(20, String::from("memory only")).unwrap();
        assert_eq!(cache.persistent_stats().unwrap().entries, 10);
        // Dropped without a write-back: memory is lost, the disk keeps what went through.
    }
    let cache = cache(dir.path(), 1_000);
    for key in 0..103u64 {
        let expected = match key {
            101 => Some(String::from("asked")),
            20 => None,
            key if key % 10 == 0 && key < 100 => Some(format!("value {key}")),
            _ => None,
        };
        assert_eq!(cache.get(&key), expected, "key {key}");
    }
}

#[test]
fn warming_takes_critical_entries_first_and_keeps_them_critical() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache: Cache<u64, String> = Cache::builder()
            .capacity(64)
            .write_through(Priority::Critical)
            .build_persistent(store(dir.path()))
            .unwrap();
        // Ten Critical entries first (the oldest records), then many newer High ones.
        for key in 0..10u64 {
            let options = InsertOptions::new().priority(Priority::Critical);
            cache
                .insert_with(key, format!("critical {key}"), options)
                .unwrap();
        }
        for key in 100..1_000u64 {
            cache.insert(key, format!("value {key}")).unwrap();
        }
        cache.write_back().unwrap();
    }
    let cache = cache(dir.path(), 64);
    assert_eq!(cache.warm_in_background(10).unwrap().join().unwrap(), 10);
    for key in 0..10u64 {
        assert_eq!(cache.get(&key), Some(format!("critical {key}")));
    }
    let stats = cache.stats();
    assert_eq!(stats.l3_hits, 0, "all ten warmed into memory: {stats:?}");
    // Warmed as Critical: churn does not push them out.
    churn(&cache, 5_000);
    for key in 0..10u64 {
        assert_eq!(cache.get(&key), Some(format!("critical {key}")));
    }
    assert_eq!(cache.stats().l3_hits, 0);
}

#[cfg(feature = "serde")]
mod serde_types {
    use super::*;
    use serde::{Deserialize, Serialize};
    use stratacache::l3::Serde;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
    struct Tile {
        x: i32,
        y: i32,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct Terrain {
        kind: String,
        height: f32,
        props: Vec<u16>,
    }

    fn terrain(tile: &Tile) -> Terrain {
        Terrain {
            kind: format!("kind {}", (tile.x + tile.y).rem_euclid(5)),
            height: tile.x as f32 * 0.5,
            props: vec![tile.x as u16, tile.y as u16],
        }
    }

    #[test]
    fn serde_keys_and_values_leave_memory_for_disk_and_come_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let tiles: Vec<Tile> = (-20..20)
            .flat_map(|x| (-5..5).map(move |y| Tile { x, y }))
            .collect();
        {
            let cache: Cache<Serde<Tile>, Serde<Terrain>> = Cache::builder()
                .capacity(32)
                .build_persistent(store(dir.path()))
                .unwrap();
            for tile in &tiles {
                let value = Serde::new(terrain(tile)).unwrap();
                cache
                    .insert(Serde::new(tile.clone()).unwrap(), value)
                    .unwrap();
            }
            // Looked up by the plain key type: most answers come from disk.
            for tile in &tiles {
                assert_eq!(cache.get(tile).as_deref(), Some(&terrain(tile)), "{tile:?}");
            }
            assert!(cache.stats().l3_hits > 300, "{:?}", cache.stats());
            cache.write_back().unwrap();
        }
        let cache: Cache<Serde<Tile>, Serde<Terrain>> = Cache::builder()
            .capacity(32)
            .build_persistent(store(dir.path()))
            .unwrap();
        for tile in &tiles {
            assert_eq!(cache.get(tile).as_deref(), Some(&terrain(tile)), "{tile:?}");
        }
        // Read as another type, the records are misses, never panics.
        let other: Cache<Serde<Tile>, Serde<Vec<String>>> = {
            drop(cache);
            Cache::builder()
                .capacity(32)
                .build_persistent(store(dir.path()))
                .unwrap()
        };
        let read = tiles
            .iter()
            .filter(|tile| other.get(*tile).is_some())
            .count();
        assert!(
            read < tiles.len() / 10,
            "{read} of {} decoded as the wrong type",
            tiles.len()
        );
    }
}
