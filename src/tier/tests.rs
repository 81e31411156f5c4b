//! Unit tests of the tiered facade that look inside it.
use alloc::string::{String, ToString};
use core::hash::{BuildHasher, Hash};
use core::sync::atomic::AtomicUsize;

use super::*;
use crate::sync::Arc;

impl<K: Hash + Eq, V, S: BuildHasher, W, P: Policy> Cache<K, V, S, W, P> {
    /// Whether L1 holds a copy for `key` (and which value).
    fn l1_copy(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        let hash = self.shared.hash_builder.hash_one(key);
        self.shared
            .l1
            .pin()
            .get_hashed(l1_hash(hash), key, false)
            .map(|copy| copy.value.clone())
    }

    /// L2's value for `key`, without counting a use.
    fn l2_value(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        let hash = self.shared.hash_builder.hash_one(key);
        let l1 = self.shared.l1.pin();
        let epoch = raw::epoch(&l1);
        self.shared
            .l2
            .get(hash, key, &epoch)
            .map(|(found, _)| found.value().clone())
    }
}

#[test]
fn entries_are_promoted_to_l1_after_enough_l2_hits() {
    let cache: Cache<u64, String> = Cache::builder()
        .capacity(100)
        .promote_after(3)
        .build()
        .unwrap();
    cache.insert(1, "one".to_string()).unwrap();
    assert_eq!(cache.l1_copy(&1), None, "an insert goes to L2 only");
    for hit in 1..=3 {
        assert_eq!(cache.l1_copy(&1), None, "not promoted before hit {hit}");
        assert_eq!(cache.get(&1).as_deref(), Some("one"));
    }
    assert_eq!(
        cache.l1_copy(&1).as_deref(),
        Some("one"),
        "promoted on the third L2 hit"
    );
    assert_eq!(cache.peek(&2), None);
    cache.insert(2, "two".to_string()).unwrap();
    for _ in 0..5 {
        assert_eq!(cache.peek(&2).as_deref(), Some("two"));
    }
    assert_eq!(cache.l1_copy(&2), None, "peeks never promote");
}

#[test]
fn writes_and_removals_leave_no_stale_copy_in_l1() {
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .promote_after(1)
        .build()
        .unwrap();
    cache.insert(1, 10).unwrap();
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(cache.l1_copy(&1), Some(10));
    cache.insert(1, 11).unwrap();
    assert_eq!(cache.l1_copy(&1), None, "the write invalidated the copy");
    assert_eq!(cache.get(&1), Some(11));
    assert_eq!(cache.l1_copy(&1), Some(11));
    assert_eq!(cache.remove(&1), Some(11));
    assert_eq!(cache.l1_copy(&1), None);
    assert_eq!(cache.get(&1), None);
    cache.insert(2, 20).unwrap();
    cache.get(&2);
    cache.clear();
    assert_eq!(
        (cache.l1_copy(&2), cache.get(&2), cache.len()),
        (None, None, 0)
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn l1_only_holds_copies_of_entries_in_l2() {
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(50)
        .shards(4)
        .l1_entries(64)
        .promote_after(1)
        .build()
        .unwrap();
    for k in 0..2_000u64 {
        cache.insert(k % 300, k).unwrap();
        cache.get(&(k % 300)); // promote
        cache.get(&((k * 7) % 300));
    }
    assert!(cache.weighted_size() <= 50);
    for k in 0..300 {
        if let Some(copy) = cache.l1_copy(&k) {
            let in_l2 = cache.l2_value(&k);
            assert_eq!(
                in_l2,
                Some(copy),
                "L1 copy of {k} without the same entry in L2"
            );
        }
    }
}

#[test]
fn critical_entries_are_copied_into_l1_at_once_and_replaced_there() {
    use crate::{InsertOptions, Priority};
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let critical = InsertOptions::new().priority(Priority::Critical);
    cache.insert_with(1, 10, critical).unwrap();
    assert_eq!(cache.l1_copy(&1), Some(10), "no L2 hit needed");
    cache.insert_with(1, 11, critical).unwrap();
    assert_eq!(
        cache.l1_copy(&1),
        Some(11),
        "the copy was replaced, not left stale"
    );
    cache.insert(1, 12).unwrap();
    assert_eq!(cache.l1_copy(&1), None, "a High write invalidates it");
    assert_eq!(cache.get(&1), Some(12));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of replacements: the epoch needs many pins before copies are ready"
)]
fn writes_free_the_retired_l1_copies_that_are_ready_without_a_quiet_point() {
    use crate::{InsertOptions, Priority};
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let critical = InsertOptions::new().priority(Priority::Critical);
    // Each replacement of a Critical entry retires its old L1 copy; the epoch moves on as
    // the writes pin, and a write's end frees what has become ready.
    for version in 0..5_000 {
        cache.insert_with(version % 3, version, critical).unwrap();
    }
    let retired = cache.stats().retired;
    assert!(
        retired < 1_000,
        "{retired} retired copies and entries still held after 5,000 replacements"
    );
}

#[test]
fn an_expired_l1_copy_is_never_returned() {
    use core::time::Duration;

    use crate::{InsertOptions, ManualClock};
    let clock = alloc::sync::Arc::new(ManualClock::new());
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .promote_after(1)
        .clock(alloc::sync::Arc::clone(&clock))
        .build()
        .unwrap();
    let ttl = InsertOptions::new().time_to_live(Duration::from_nanos(100));
    cache.insert_with(1, 10, ttl).unwrap();
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(cache.l1_copy(&1), Some(10), "promoted, with its deadline");
    clock.advance(Duration::from_nanos(99));
    assert_eq!(cache.get(&1), Some(10));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.peek(&1), None);
    assert_eq!(cache.get(&1), None, "expired in both tiers");
    assert_eq!(cache.l1_copy(&1), None, "the lookup reclaimed it from both");
    assert_eq!(cache.len(), 0);
}

/// Idle deadlines under Miri too: set when a slot is filled (a reused one included), moved by
/// reads, read by the sweep; with a `Critical` entry, whose L1 copies live a 32nd of the time
/// to idle.
#[test]
fn idle_deadlines_follow_reads_through_slot_reuse() {
    use core::time::Duration;

    use crate::{InsertOptions, ManualClock, Priority};
    let clock = alloc::sync::Arc::new(ManualClock::new());
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(4)
        .shards(1)
        .promote_after(1)
        .clock(alloc::sync::Arc::clone(&clock))
        .time_to_idle(Duration::from_nanos(100))
        .build()
        .unwrap();
    let critical = InsertOptions::new().priority(Priority::Critical);
    cache.insert_with(0, 0, critical).unwrap();
    for round in 0..4u64 {
        for key in 1..=3 {
            cache.insert(key, key + round).unwrap();
            cache.collect(); // replaced slots come back, to be filled again
        }
        clock.advance(Duration::from_nanos(60));
        assert_eq!(cache.get(&0), Some(0), "read every 60 ns: kept");
    }
    clock.advance(Duration::from_nanos(60));
    assert_eq!(cache.get(&0), Some(0));
    assert_eq!(cache.get(&1), None, "120 ns since its write");
    assert_eq!(cache.evict_expired(), 2);
    assert_eq!(cache.len(), 1);
}

/// Refresh times under Miri too: set when a slot is filled, claimed by a loader's read, put
/// back after a failed reload, and fresh in the slot a reload fills.
#[test]
fn refresh_times_are_claimed_put_back_and_renewed() {
    use core::time::Duration;

    use crate::ManualClock;
    let clock = alloc::sync::Arc::new(ManualClock::new());
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(4)
        .shards(1)
        .clock(alloc::sync::Arc::clone(&clock))
        .refresh_after_write(Duration::from_nanos(100))
        .build()
        .unwrap();
    for key in 0..3 {
        cache.insert(key, key).unwrap();
    }
    clock.advance(Duration::from_nanos(100));
    assert_eq!(cache.try_get_with(&0, || Err::<u64, ()>(())), Ok(0), "kept");
    for round in 1..4u64 {
        for key in 0..3 {
            assert_eq!(cache.get_with(&key, || key + 10 * round), key + 10 * round);
            cache.collect(); // the reloaded entries' old slots come back, to be filled again
        }
        clock.advance(Duration::from_nanos(100));
    }
}

/// An `Expiry`'s deadlines under Miri too: chosen at the write, moved by the read hook.
#[test]
fn an_expirys_own_deadlines_are_set_and_moved() {
    use core::time::Duration;

    use crate::{Expiry, ManualClock};
    struct Twice;
    impl Expiry<u64, u64> for Twice {
        fn expire_after_create(&self, _: &u64, _: &u64) -> Option<Duration> {
            Some(Duration::from_nanos(100))
        }
        fn expire_after_read(&self, _: &u64, _: &u64, _: Option<Duration>) -> Option<Duration> {
            Some(Duration::from_nanos(200))
        }
    }
    let clock = alloc::sync::Arc::new(ManualClock::new());
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(4)
        .shards(1)
        .clock(alloc::sync::Arc::clone(&clock))
        .expiry(Twice)
        .build()
        .unwrap();
    cache.insert(1, 1).unwrap();
    cache.insert(2, 2).unwrap();
    clock.advance(Duration::from_nanos(50));
    assert_eq!(cache.get(&1), Some(1), "now 200 ns from here");
    clock.advance(Duration::from_nanos(100));
    assert_eq!((cache.peek(&1), cache.peek(&2)), (Some(1), None));
    assert_eq!(cache.evict_expired(), 1);
}

#[test]
fn without_a_clock_deadlines_are_refused_and_nothing_is_lost() {
    use core::time::Duration;

    use crate::{InsertError, InsertOptions};
    let mut cache: Cache<u64, String> = Cache::builder().capacity(10).build().unwrap();
    // As without `std` and without a `Clock` (the only handle: the state is ours to change).
    alloc::sync::Arc::get_mut(&mut cache.shared).unwrap().clock = None;
    let ttl = InsertOptions::new().time_to_live(Duration::from_secs(1));
    match cache.insert_with(1, "one".to_string(), ttl) {
        Err(InsertError::NoClock { key, value }) => assert_eq!((key, value.as_str()), (1, "one")),
        other => panic!("expected NoClock, got {other:?}"),
    }
    cache.insert(2, "two".to_string()).unwrap();
    assert_eq!(
        cache.get(&2).as_deref(),
        Some("two"),
        "entries without a deadline work"
    );
    assert_eq!(cache.evict_expired(), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code beyond what the other tests run"
)]
fn hits_on_l1_copies_keep_their_entries_in_l2() {
    // Reads of key 0 are all answered by L1, so L2 never counts them: unless its hand asks
    // L1, the entry would age out of L2 (and so out of L1) under a flood of new keys.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .shards(1)
        .l1_entries(1024)
        .promote_after(1)
        .build()
        .unwrap();
    cache.insert(0, 0).unwrap();
    assert_eq!(cache.get(&0), Some(0));
    assert_eq!(cache.l1_copy(&0), Some(0), "promoted");
    for key in 1..2_000 {
        cache.insert(key, key).unwrap();
        cache.get(&key); // used on probation: it will move to the main CLOCK and press on it
        assert_eq!(cache.get(&0), Some(0), "evicted after {key} insertions");
    }
    assert!(cache.stats().l1_hits >= 1_999);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn promotions_stop_when_they_do_not_pay_for_themselves() {
    // A working set far larger than L1, read round-robin: no copy is read again before it is
    // evicted from L1, so promotions would only churn. After the first allowance (one L1
    // capacity) a thread promotes at most once per two of its L1 hits.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(4_096)
        .l1_entries(64)
        .promote_after(1)
        .build()
        .unwrap();
    for key in 0..4_000 {
        cache.insert(key, key).unwrap();
    }
    for _ in 0..5 {
        for key in 0..4_000 {
            assert_eq!(cache.get(&key), Some(key));
        }
    }
    let stats = cache.stats();
    let allowance = cache.l1_capacity() as u64;
    assert!(stats.l2_hits > 15_000, "{stats:?}");
    assert!(
        stats.promotions <= allowance + stats.l1_hits / 2 + 1,
        "{} promotions for {} L1 hits",
        stats.promotions,
        stats.l1_hits
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn an_entry_whose_copy_left_l1_earns_its_way_back() {
    // One L1 set of seven ways. Key 0 is read often enough to stay there (its L1 hits earn the
    // promotion budget many times over); keys 1 to 32 have all earned a promotion once, and
    // read round-robin they push each other's copies out before their next read. An entry
    // whose copy is gone tries again on one in `promote_after / 2` (here four) of its
    // thread's L2 hits, not on each: about a fifth of the L2 hits promote (two thirds when
    // each tried).
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(4_096)
        .shards(1)
        .l1_entries(7)
        .promote_after(8)
        .build()
        .unwrap();
    for key in 0..=32 {
        cache.insert(key, key).unwrap();
        for _ in 0..8 {
            assert_eq!(cache.get(&key), Some(key));
        }
    }
    let before = cache.stats();
    for _ in 0..200 {
        for key in 1..=32 {
            assert_eq!(cache.get(&key), Some(key));
        }
        for _ in 0..64 {
            assert_eq!(cache.get(&0), Some(0));
        }
        // A quiet point: the displaced copies are freed, so their number stops no promotion.
        cache.collect();
    }
    let after = cache.stats();
    let l2_hits = after.l2_hits - before.l2_hits;
    let promotions = after.promotions - before.promotions;
    assert!(
        promotions <= l2_hits / 3,
        "{promotions} promotions for {l2_hits} L2 hits"
    );
    assert!(
        promotions >= l2_hits / 8,
        "entries come back: {promotions} promotions for {l2_hits} L2 hits"
    );
    // The churn stayed among the cold keys: most of their reads went to L2, key 0's to L1.
    assert!(l2_hits >= 3_200, "{after:?}");
    assert!(after.l1_hits - before.l1_hits >= 12_000, "{after:?}");
}

/// A value that counts its live instances (clones included).
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Clone for Alive {
    fn clone(&self) -> Self {
        Self::new(&self.0)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A one-shard cache of 256 entries, full, three of them then removed: the removed values
/// wait in the shard's limbo (a batch is 15 for 253 entries).
fn cache_with_three_in_limbo(alive: &Arc<AtomicUsize>) -> Cache<u64, Alive> {
    let cache: Cache<u64, Alive> = Cache::builder().capacity(256).shards(1).build().unwrap();
    for key in 0..256 {
        assert!(cache.insert(key, Alive::new(alive)).is_ok());
    }
    for key in 0..3 {
        assert!(cache.remove(&key).is_some());
    }
    cache
}

#[test]
fn a_quiet_point_frees_what_a_shard_retired_short_of_a_batch() {
    let alive = Arc::new(AtomicUsize::new(0));
    let cache = cache_with_three_in_limbo(&alive);
    let count = || alive.load(Ordering::Relaxed);
    assert_eq!(count(), 256, "no write since: the removed values wait");
    // The epoch needs a few collections to move past the removals.
    for _ in 0..16 {
        if count() == 253 {
            break;
        }
        cache.collect();
    }
    assert_eq!(count(), 253, "collect freed the three removed values");
}

#[test]
fn dropping_the_cache_drops_what_waits_in_limbo_once() {
    let alive = Arc::new(AtomicUsize::new(0));
    drop(cache_with_three_in_limbo(&alive));
    assert_eq!(alive.load(Ordering::Relaxed), 0);
}

#[test]
fn entries_waiting_in_limbo_count_as_retired_until_freed() {
    let alive = Arc::new(AtomicUsize::new(0));
    let cache = cache_with_three_in_limbo(&alive);
    assert_eq!(
        cache.stats().retired,
        3,
        "the removed entries wait, and are reported"
    );
    for _ in 0..16 {
        if cache.stats().retired == 0 {
            break;
        }
        cache.collect();
    }
    assert_eq!(cache.stats().retired, 0);
    assert_eq!(alive.load(Ordering::Relaxed), 253);
}

/// A hasher builder that counts the hashers it builds (one per key hashed).
#[derive(Clone)]
struct CountingState(Arc<AtomicUsize>);

impl BuildHasher for CountingState {
    type Hasher = <crate::hash::FixedState as BuildHasher>::Hasher;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.fetch_add(1, Ordering::Relaxed);
        crate::hash::FixedState::with_seed(7).build_hasher()
    }
}

#[test]
fn an_insertion_and_a_read_through_miss_hash_their_key_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u64, u64, CountingState> = Cache::builder()
        .capacity(100)
        .hasher(CountingState(Arc::clone(&count)))
        .build()
        .unwrap();
    let hashed = || count.swap(0, Ordering::Relaxed);
    hashed();
    cache.insert(1, 10).unwrap();
    assert_eq!(hashed(), 1, "insert");
    assert_eq!(cache.get_with(&2, || 20), 20);
    assert_eq!(hashed(), 1, "a read-through miss");
    assert_eq!(cache.get_with(&2, || 21), 20);
    assert_eq!(hashed(), 1, "a read-through hit");
}

#[test]
fn iteration_reads_every_shard_without_a_lock_while_entries_are_replaced() {
    // Miri's view of the walk's unsafe reads: slots found through the index under an epoch,
    // while entries are replaced and evicted between the shards' snapshots.
    let cache: Cache<u64, String> = Cache::builder().capacity(64).shards(4).build().unwrap();
    for key in 0..64 {
        cache.insert(key, key.to_string()).unwrap();
    }
    let mut iter = cache.iter();
    let first = iter.next().expect("a full cache yields");
    for key in 0..64 {
        cache.insert(key, (key + 100).to_string()).unwrap();
    }
    let rest: Vec<(u64, String)> = iter.collect();
    assert_eq!(rest.len(), 63, "every key once");
    for (key, value) in core::iter::once(first).chain(rest) {
        assert!(value == key.to_string() || value == (key + 100).to_string());
    }
}
