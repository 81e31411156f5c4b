//! Time to live through the public API, on a manual clock: per-entry and default deadlines,
//! expired entries never returned, reclaimed first by eviction and by `evict_expired`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratacache::{Cache, InsertOptions, ManualClock, Priority, RemovalCause};

fn cache_on(clock: &Arc<ManualClock>, capacity: u64) -> Cache<u32, String> {
    Cache::builder()
        .capacity(capacity)
        .shards(1)
        .clock(Arc::clone(clock))
        .build()
        .unwrap()
}

#[test]
fn entries_expire_at_their_deadline_and_not_before() {
    let clock = Arc::new(ManualClock::new());
    let cache = cache_on(&clock, 100);
    let short = InsertOptions::new().time_to_live(Duration::from_millis(10));
    let long = InsertOptions::new().time_to_live(Duration::from_millis(30));
    cache.insert_with(1, "short".into(), short).unwrap();
    cache.insert_with(2, "long".into(), long).unwrap();
    cache.insert(3, "forever".into()).unwrap();
    for _ in 0..3 {
        assert_eq!(cache.get(&1).as_deref(), Some("short")); // promote it into L1 too
    }
    clock.advance(Duration::from_millis(9));
    assert!(cache.contains_key(&1));
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.get(&1), None, "expired at exactly its deadline");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.get(&2).as_deref(), Some("long"));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(cache.peek(&2), None);
    assert_eq!(cache.get(&3).as_deref(), Some("forever"));
    // Re-inserting an expired key gives it a fresh life.
    cache.insert_with(1, "again".into(), short).unwrap();
    assert_eq!(cache.get(&1).as_deref(), Some("again"));
}

#[test]
fn the_default_time_to_live_applies_unless_overridden() {
    let clock = Arc::new(ManualClock::new());
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(10)
        .clock(Arc::clone(&clock))
        .time_to_live(Duration::from_secs(5))
        .build()
        .unwrap();
    cache.insert(1, 1).unwrap();
    cache
        .insert_with(2, 2, InsertOptions::new().never_expire())
        .unwrap();
    cache
        .insert_with(
            3,
            3,
            InsertOptions::new().time_to_live(Duration::from_secs(60)),
        )
        .unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        (cache.get(&1), cache.get(&2), cache.get(&3)),
        (None, Some(2), Some(3))
    );
    clock.advance(Duration::from_secs(55));
    assert_eq!((cache.get(&2), cache.get(&3)), (Some(2), None));
}

#[test]
fn eviction_takes_expired_entries_before_live_ones() {
    let clock = Arc::new(ManualClock::new());
    let gone = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&gone);
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(4)
        .shards(1)
        .clock(Arc::clone(&clock))
        .eviction_listener(move |k: &u32, _: &u32, cause| log.lock().unwrap().push((*k, cause)))
        .build()
        .unwrap();
    cache.insert(1, 1).unwrap();
    cache.insert(3, 3).unwrap();
    cache.insert(4, 4).unwrap();
    for key in [1, 3, 4] {
        cache.get(&key); // used: they earn their places
    }
    // The entry with a deadline is where the hand looks first (the window's oldest, once
    // the next entry arrives), and used too: alive, it would be judged against the others.
    cache
        .insert_with(
            2,
            2,
            InsertOptions::new().time_to_live(Duration::from_secs(1)),
        )
        .unwrap();
    cache.get(&2);
    clock.advance(Duration::from_secs(1));
    cache.insert(5, 5).unwrap();
    assert_eq!(*gone.lock().unwrap(), [(2, RemovalCause::Expired)]);
    let mut left: Vec<u32> = (1..=5).filter(|k| cache.contains_key(k)).collect();
    left.sort_unstable();
    assert_eq!(left, [1, 3, 4, 5]);
    let stats = cache.stats();
    assert_eq!((stats.expired, stats.evicted_capacity), (1, 0));
}

#[test]
fn evict_expired_sweeps_every_shard_and_reports_each_entry() {
    let clock = Arc::new(ManualClock::new());
    let gone = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&gone);
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(1_000)
        .shards(8)
        .clock(Arc::clone(&clock))
        .eviction_listener(move |k: &u32, v: &u32, cause| {
            assert_eq!(cause, RemovalCause::Expired);
            log.lock().unwrap().push((*k, *v));
        })
        .build()
        .unwrap();
    for key in 0..200 {
        let ttl = Duration::from_secs(u64::from(key % 4)); // 0 s: expires at once
        let options = InsertOptions::new()
            .time_to_live(ttl)
            .priority(if key % 8 == 0 {
                Priority::Critical
            } else {
                Priority::High
            });
        cache.insert_with(key, key * 2, options).unwrap();
    }
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.evict_expired(), 150, "ttl 0, 1 and 2 s have run out");
    assert_eq!(cache.len(), 50);
    assert_eq!(cache.evict_expired(), 0);
    let mut swept = gone.lock().unwrap().clone();
    swept.sort_unstable();
    let expected: Vec<(u32, u32)> = (0..200)
        .filter(|k| k % 4 != 3)
        .map(|k| (k, k * 2))
        .collect();
    assert_eq!(swept, expected);
    assert!(
        (0..200)
            .filter(|k| k % 4 == 3)
            .all(|k| cache.get(&k) == Some(k * 2))
    );
}

/// Lives as many seconds as its value says, and after a replacement half what was left plus
/// the new value's seconds (0: no deadline of its own).
struct BySeconds;

impl stratacache::Expiry<u32, String> for BySeconds {
    fn expire_after_create(&self, _: &u32, value: &String) -> Option<Duration> {
        let seconds: u64 = value.parse().unwrap();
        (seconds > 0).then(|| Duration::from_secs(seconds))
    }

    fn expire_after_update(
        &self,
        _: &u32,
        value: &String,
        left: Option<Duration>,
    ) -> Option<Duration> {
        let seconds: u64 = value.parse().unwrap();
        Some(left.map_or(Duration::ZERO, |left| left / 2) + Duration::from_secs(seconds))
    }
}

fn by_seconds(clock: &Arc<ManualClock>, ttl: Option<Duration>) -> Cache<u32, String> {
    let builder = Cache::builder()
        .capacity(100)
        .shards(1)
        .clock(Arc::clone(clock))
        .expiry(BySeconds);
    match ttl {
        Some(ttl) => builder.time_to_live(ttl),
        None => builder,
    }
    .build()
    .unwrap()
}

#[test]
fn an_expiry_chooses_each_entrys_time_from_the_entry() {
    let clock = Arc::new(ManualClock::new());
    let cache = by_seconds(&clock, None);
    cache.insert(1, "2".into()).unwrap();
    cache.insert(2, "5".into()).unwrap();
    cache.insert(3, "0".into()).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(&1), None, "two seconds");
    assert_eq!(cache.get(&2).as_deref(), Some("5"));
    // A replacement with 3 seconds left: half of them plus the new value's 1.
    clock.advance(Duration::from_secs(0));
    cache.insert(2, "1".into()).unwrap();
    clock.advance(Duration::from_millis(2_400));
    assert_eq!(cache.get(&2).as_deref(), Some("1"));
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        cache.get(&2),
        None,
        "1.5 + 1 = 2.5 seconds after the replacement"
    );
    // A key that expired is new again: created, not updated.
    cache.insert(2, "4".into()).unwrap();
    clock.advance(Duration::from_millis(3_900));
    assert_eq!(cache.get(&2).as_deref(), Some("4"));
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(
        cache.get(&3).as_deref(),
        Some("0"),
        "no deadline of its own"
    );
}

#[test]
fn an_expiry_yields_to_explicit_options_and_to_an_earlier_default() {
    let clock = Arc::new(ManualClock::new());
    let cache = by_seconds(&clock, Some(Duration::from_secs(3)));
    cache.insert(1, "10".into()).unwrap();
    cache.insert(2, "1".into()).unwrap();
    let forever = InsertOptions::new().never_expire();
    cache.insert_with(3, "1".into(), forever).unwrap();
    let brief = InsertOptions::new().time_to_live(Duration::from_secs(20));
    cache.insert_with(4, "1".into(), brief).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        cache.get(&2),
        None,
        "its own second, before the default's three"
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        cache.get(&1),
        None,
        "the default's three, before its own ten"
    );
    assert_eq!(
        cache.get(&3).as_deref(),
        Some("1"),
        "never expires: the expiry is not asked"
    );
    assert_eq!(
        cache.get(&4).as_deref(),
        Some("1"),
        "its own option: twenty seconds"
    );
}

/// Two seconds after a write; after a read, as many seconds as the value (0: until the next
/// write's two seconds). Counts the reads it is asked about.
struct ReadsSet(Arc<std::sync::atomic::AtomicUsize>);

impl stratacache::Expiry<u32, u64> for ReadsSet {
    fn expire_after_create(&self, _: &u32, _: &u64) -> Option<Duration> {
        Some(Duration::from_secs(2))
    }

    fn expire_after_read(
        &self,
        _: &u32,
        seconds: &u64,
        left: Option<Duration>,
    ) -> Option<Duration> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if *seconds == 0 {
            left
        } else {
            Some(Duration::from_secs(*seconds))
        }
    }
}

#[test]
fn an_expirys_read_hook_moves_the_entrys_own_deadline_either_way() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let clock = Arc::new(ManualClock::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u32, u64> = Cache::builder()
        .capacity(100)
        .promote_after(1)
        .clock(Arc::clone(&clock))
        .expiry(ReadsSet(Arc::clone(&asked)))
        .build()
        .unwrap();
    cache.insert(1, 10).unwrap(); // a read gives it 10 s: longer than its first 2
    cache.insert(2, 0).unwrap(); // a read keeps what is left
    cache.insert(3, 1).unwrap(); // a read gives it 1 s: shorter
    clock.advance(Duration::from_millis(500));
    for key in 1..=3 {
        assert!(cache.get(&key).is_some());
    }
    clock.advance(Duration::from_millis(1_000)); // 1.5 s
    assert_eq!(cache.peek(&3), None, "1 s after its read");
    assert!(cache.peek(&2).is_some());
    clock.advance(Duration::from_millis(500)); // 2 s
    assert_eq!(cache.peek(&2), None, "its first two seconds");
    assert_eq!(
        cache.peek(&1),
        Some(10),
        "10 s after its read, past the first 2"
    );
    // Read through L1 too (promoted on the first hit): the hook is still asked now and then.
    let before = asked.load(Ordering::Relaxed);
    for _ in 0..100 {
        clock.advance(Duration::from_millis(50));
        assert_eq!(cache.get(&1), Some(10));
    }
    let asked = asked.load(Ordering::Relaxed) - before;
    assert!(
        (2..=100).contains(&asked),
        "asked {asked} times in 100 reads"
    );
    assert!(cache.stats().l1_hits > 0);
}
