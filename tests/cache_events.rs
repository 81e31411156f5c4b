//! The eviction listener (every cause, called outside every lock), panics in user code
//! (listener, `Drop`) leaving the cache consistent and usable, priorities through the public
//! API, and the statistics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use stratacache::{Cache, InsertOptions, Priority, RemovalCause};

type Log = Arc<Mutex<Vec<(u32, u32, RemovalCause)>>>;

fn logged_cache(capacity: u64) -> (Cache<u32, u32>, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let cache = Cache::builder()
        .capacity(capacity)
        .shards(1)
        .eviction_listener(move |k: &u32, v: &u32, cause| {
            sink.lock().unwrap().push((*k, *v, cause))
        })
        .build()
        .unwrap();
    (cache, log)
}

#[test]
fn the_listener_hears_every_cause_with_the_departing_value() {
    let (cache, log) = logged_cache(2);
    cache.insert(1, 10).unwrap();
    cache.insert(1, 11).unwrap();
    assert_eq!(
        log.lock().unwrap().pop(),
        Some((1, 10, RemovalCause::Replaced))
    );
    assert_eq!(cache.remove(&1), Some(11));
    assert_eq!(
        log.lock().unwrap().pop(),
        Some((1, 11, RemovalCause::Removed))
    );
    assert_eq!(cache.remove(&1), None);
    cache.insert(2, 20).unwrap();
    cache.insert(3, 30).unwrap();
    // Over capacity: one older entry goes (the default policy keeps the incumbent 2 and
    // rejects the newcomer 3, neither used), never the entry just inserted.
    cache.insert(4, 40).unwrap();
    let (gone, value, cause) = log.lock().unwrap().pop().expect("one eviction");
    assert_eq!((value, cause), (gone * 10, RemovalCause::Capacity));
    assert!(gone == 2 || gone == 3, "evicted {gone}");
    cache.clear();
    let mut cleared = std::mem::take(&mut *log.lock().unwrap());
    cleared.sort_unstable_by_key(|&(k, _, _)| k);
    let kept = 5 - gone; // the other of 2 and 3
    let mut expected = [
        (kept, kept * 10, RemovalCause::Removed),
        (4, 40, RemovalCause::Removed),
    ];
    expected.sort_unstable_by_key(|&(k, _, _)| k);
    assert_eq!(cleared, expected);
    let stats = cache.stats();
    assert_eq!(
        (
            stats.replaced,
            stats.removed,
            stats.evicted_capacity,
            stats.entries
        ),
        (1, 3, 1, 0)
    );
}

#[test]
fn the_listener_runs_outside_every_lock_and_may_use_the_cache() {
    // The listener reads and writes the same cache (the same shard: one shard): with a lock
    // held this would deadlock.
    let this: Arc<OnceLock<Weak<Cache<u32, u32>>>> = Arc::default();
    let inner = Arc::clone(&this);
    let cache = Arc::new(
        Cache::builder()
            .capacity(2)
            .shards(1)
            .eviction_listener(move |k: &u32, v: &u32, cause| {
                let cache = inner.get().and_then(Weak::upgrade).expect("set below");
                assert_eq!(cache.get(k), None, "gone before the listener runs");
                if cause == RemovalCause::Capacity && *k < 100 {
                    cache.insert(k + 100, *v).unwrap(); // demote under another key
                }
            })
            .build()
            .unwrap(),
    );
    this.set(Arc::downgrade(&cache)).unwrap();
    for key in 0..10 {
        cache.insert(key, key).unwrap();
    }
    assert!(cache.weighted_size() <= 2);
    assert_eq!(cache.len(), 2);
}

#[test]
fn a_panicking_listener_leaves_the_cache_consistent_and_usable() {
    let armed = Arc::new(AtomicBool::new(true));
    let trigger = Arc::clone(&armed);
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(3)
        .shards(1)
        .eviction_listener(move |_: &u32, _: &u32, _| {
            if trigger.load(Ordering::SeqCst) {
                panic!("listener bug");
            }
        })
        .build()
        .unwrap();
    for key in 0..3 {
        cache.insert(key, key).unwrap();
    }
    let panicked = catch_unwind(AssertUnwindSafe(|| cache.insert(3, 3)));
    assert!(panicked.is_err());
    // The insertion took full effect before the listener ran.
    assert_eq!(cache.get(&3), Some(3));
    assert_eq!((cache.len(), cache.weighted_size()), (3, 3));
    assert!(catch_unwind(AssertUnwindSafe(|| cache.remove(&3))).is_err());
    assert_eq!(cache.get(&3), None, "removed before the listener ran");
    armed.store(false, Ordering::SeqCst);
    // No lock stayed held: every operation on the (single) shard still works.
    for key in 10..20 {
        cache.insert(key, key).unwrap();
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get(&19), Some(19));
    cache.clear();
    assert!(cache.is_empty());
}

/// A value whose `Drop` panics while armed.
#[derive(Clone)]
struct Explosive {
    armed: Arc<AtomicBool>,
    id: u32,
}

impl Drop for Explosive {
    fn drop(&mut self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("Drop bug in value {}", self.id);
        }
    }
}

#[test]
fn a_panicking_drop_leaves_the_cache_consistent_and_usable() {
    let cache: Cache<u32, Explosive> = Cache::builder().capacity(2).shards(1).build().unwrap();
    let value = |id, armed: bool| Explosive {
        armed: Arc::new(AtomicBool::new(armed)),
        id,
    };
    // A value leaves at a quiet point once no reader can hold it (here `collect`, which the
    // epoch may need a few times to reach it): its drop's panic reaches that caller, outside
    // every lock.
    let collect_until_panic =
        || (0..8).any(|_| catch_unwind(AssertUnwindSafe(|| cache.collect())).is_err());
    cache.insert(1, value(1, true)).unwrap();
    cache.insert(1, value(1, false)).unwrap();
    assert!(collect_until_panic(), "the replaced value's drop panicked");
    assert_eq!(cache.get(&1).map(|v| v.id), Some(1));
    assert_eq!(cache.len(), 1);
    // An eviction victim's drop panics: the insertion took effect.
    cache.insert(2, value(2, true)).unwrap();
    cache.get(&1); // used: entry 2 is the victim
    cache.insert(3, value(3, false)).unwrap();
    assert!(collect_until_panic(), "the victim's drop panicked");
    assert!(cache.contains_key(&3) && cache.contains_key(&1) && !cache.contains_key(&2));
    assert_eq!(cache.weighted_size(), 2);
    for key in 10..20 {
        cache.insert(key, value(key, false)).unwrap();
    }
    assert_eq!(cache.len(), 2, "no lock stayed held, the budget holds");
}

#[test]
fn critical_entries_outlive_a_flood_of_ordinary_ones() {
    let cache: Cache<u32, u32> = Cache::builder().capacity(64).shards(4).build().unwrap();
    let critical = InsertOptions::new().priority(Priority::Critical);
    for key in 0..16 {
        cache.insert_with(key, key, critical).unwrap();
    }
    for key in 1_000..20_000 {
        cache.insert(key, key).unwrap();
        cache.get(&key);
    }
    assert!(
        (0..16).all(|k| cache.peek(&k) == Some(k)),
        "every Critical entry stayed"
    );
    assert!(cache.weighted_size() <= 64);
    // A cache full of Critical entries: a Low one cannot displace them, it goes itself.
    let full: Cache<u32, u32> = Cache::builder().capacity(4).shards(2).build().unwrap();
    for key in 0..4 {
        full.insert_with(key, key, critical).unwrap();
    }
    full.insert_with(9, 9, InsertOptions::new().priority(Priority::Low))
        .unwrap();
    assert!((0..4).all(|k| full.contains_key(&k)) && !full.contains_key(&9));
    // Another Critical entry does displace one of them: the budget wins.
    full.insert_with(10, 10, critical).unwrap();
    assert_eq!(full.len(), 4);
    assert_eq!(full.weighted_size(), 4);
}

#[test]
fn stats_count_each_tier_and_each_event() {
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(100)
        .promote_after(2)
        .build()
        .unwrap();
    let empty = cache.stats();
    assert_eq!((empty.lookups(), empty.hit_ratio()), (0, 0.0));
    for key in 0..10 {
        cache.insert(key, key).unwrap();
    }
    for _ in 0..3 {
        cache.get(&0); // L2, L2 (promoted), then L1
    }
    cache.get(&1);
    cache.get(&99);
    cache.peek(&2); // not counted
    let stats = cache.stats();
    assert_eq!(
        (
            stats.l1_hits,
            stats.l2_hits,
            stats.misses,
            stats.promotions,
            stats.inserts
        ),
        (1, 3, 1, 1, 10)
    );
    assert_eq!(stats.hits(), 4);
    assert!((stats.hit_ratio() - 0.8).abs() < 1e-9);
    assert!((stats.l1_hit_ratio() - 0.2).abs() < 1e-9);
    assert_eq!((stats.entries, stats.weighted_size), (10, 10));
    assert!(
        stats.memory_bytes > 10 * 48,
        "at least the slots: {}",
        stats.memory_bytes
    );
    // Every thread's stripe is summed.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    cache.get(&5);
                }
            });
        }
    });
    assert_eq!(cache.stats().hits(), 4 + 400);
}
