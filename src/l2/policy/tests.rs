//! Unit tests of the policies, driven through the [`Harness`].

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::harness::NEVER;
use super::{ClockPolicy, EntryInfo, Evicted, Harness, Policy, Priority, WTinyLfu};
use crate::entry::RemovalCause;

/// A spread-out hash for test keys (the shard takes hashes from its owner).
pub(super) fn h(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 7)
}

/// Inserts like a capacity-bounded cache would: store, then evict while over `capacity`.
pub(super) fn insert_bounded<P: Policy>(
    shard: &mut Harness<u64, u64, P>,
    capacity: u64,
    key: u64,
) -> Vec<Evicted<u64, u64>> {
    shard.insert(h(key), key, key * 10, 1);
    let mut evicted = Vec::new();
    while shard.weight() > capacity {
        evicted.push(shard.evict().expect("over budget means not empty"));
    }
    evicted
}

#[test]
fn insert_get_replace_remove_and_weights() {
    let mut shard: Harness<u64, &str> = Harness::new();
    assert_eq!(shard.insert(h(1), 1, "a", 5), None);
    assert_eq!(shard.insert(h(2), 2, "b", 7), None);
    assert_eq!(shard.weight(), 12);
    assert_eq!(shard.get(h(1), &1), Some(&"a"));
    assert_eq!(shard.get(h(2), &2), Some(&"b"));
    assert_eq!(shard.insert(h(1), 1, "A", 3), Some("a"));
    assert_eq!((shard.len(), shard.weight()), (2, 10));
    assert_eq!(shard.peek(h(1), &1), Some(&"A"));
    assert_eq!(shard.remove(h(1), &1), Some((1, "A")));
    assert_eq!(shard.remove(h(1), &1), None);
    assert_eq!((shard.len(), shard.weight()), (1, 7));
    let all: Vec<_> = shard.take_all().collect();
    assert_eq!(all, [(2, "b")]);
    assert!(shard.is_empty() && shard.weight() == 0 && shard.evict().is_none());
    // Slots are reused after `take_all` and removals.
    shard.insert(h(3), 3, "c", 1);
    assert_eq!(shard.get(h(3), &3), Some(&"c"));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn eviction_hands_out_every_entry_exactly_once() {
    let mut shard: Harness<u64, u64> = Harness::new();
    for k in 0..100 {
        shard.insert(h(k), k, k, 1 + k % 3);
        if k % 4 == 0 {
            shard.get(h(k), &k);
        }
    }
    let total: u64 = (0..100).map(|k| 1 + k % 3).sum();
    assert_eq!(shard.weight(), total);
    let mut seen = BTreeMap::new();
    while let Some(e) = shard.evict() {
        assert_eq!(e.value, e.key);
        assert_eq!(e.weight, 1 + e.key % 3);
        assert!(seen.insert(e.key, ()).is_none(), "{} evicted twice", e.key);
    }
    assert_eq!(seen.len(), 100);
    assert_eq!(shard.weight(), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_scan_does_not_flush_the_hot_set() {
    let capacity = 100;
    let mut shard: Harness<u64, u64> = Harness::new();
    let hot: Vec<u64> = (0..60).collect();
    // Warm up: the hot keys are read repeatedly, so they graduate from probation.
    for _ in 0..4 {
        for &k in &hot {
            if shard.get(h(k), &k).is_none() {
                insert_bounded(&mut shard, capacity, k);
            }
        }
    }
    // A scan of one-hit wonders, ten times the capacity, interleaved with hot reads.
    for (i, k) in (1_000..2_000).enumerate() {
        insert_bounded(&mut shard, capacity, k);
        let hk = hot[i % hot.len()];
        if shard.get(h(hk), &hk).is_none() {
            insert_bounded(&mut shard, capacity, hk);
        }
    }
    let resident = hot
        .iter()
        .filter(|&&k| shard.peek(h(k), &k).is_some())
        .count();
    assert!(
        resident >= 57,
        "only {resident} of 60 hot keys survived the scan"
    );
    assert!(shard.weight() <= capacity);
}

#[test]
fn dropping_a_shard_drops_what_it_holds() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let mut shard: Harness<u64, Counted> = Harness::new();
        for k in 0..50 {
            shard.insert(h(k), k, Counted(Arc::clone(&drops)), 1);
        }
        shard.insert(h(3), 3, Counted(Arc::clone(&drops)), 1); // replaced value dropped here
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(shard.evict());
        drop(shard.remove(h(7), &7));
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 51);
}

/// Stores `key` at `priority`, deadline `expires`.
pub(super) fn store<P: Policy>(
    shard: &mut Harness<u64, u64, P>,
    key: u64,
    priority: Priority,
    expires: u64,
) {
    let info = EntryInfo::new(h(key), 1, priority);
    assert!(shard.insert_with(key, key, info, expires).is_none());
}

#[test]
fn critical_entries_are_spared_until_nothing_else_is_left() {
    let mut shard: Harness<u64, u64> = Harness::new();
    store(&mut shard, 1, Priority::Critical, NEVER);
    store(&mut shard, 2, Priority::Low, NEVER);
    store(&mut shard, 3, Priority::Critical, NEVER);
    assert_eq!(shard.evict_at(0, true).map(|e| e.key), Some(2));
    assert!(
        shard.evict_at(0, true).is_none(),
        "only Critical entries are left, and they are spared"
    );
    assert_eq!(shard.len(), 2);
    // Allowed to take them, the hand does, oldest first (neither was used).
    assert_eq!(shard.evict_at(0, false).map(|e| e.key), Some(1));
    // A replacement can demote an entry out of the Critical ring.
    let demoted = EntryInfo::new(h(3), 1, Priority::High);
    assert_eq!(shard.insert_with(3, 30, demoted, NEVER), Some(3));
    assert_eq!(
        shard.evict_at(0, true).map(|e| (e.key, e.value)),
        Some((3, 30))
    );
}

#[test]
fn the_hand_takes_expired_entries_first_and_says_so() {
    let mut shard: Harness<u64, u64> = Harness::new();
    store(&mut shard, 1, Priority::High, NEVER);
    store(&mut shard, 2, Priority::High, 100);
    store(&mut shard, 3, Priority::Critical, 50);
    for key in 1..=3 {
        shard.get(h(key), &key); // used: a live entry would get a second chance
    }
    // At time 10 nothing has expired: the used entries move to main and the hand goes round.
    let mut early = shard.clone_keys_by_eviction(10, true);
    early.sort_unstable_by_key(|&(key, _)| key);
    assert_eq!(
        early,
        [(1, RemovalCause::Capacity), (2, RemovalCause::Capacity)]
    );

    let mut shard: Harness<u64, u64> = Harness::new();
    store(&mut shard, 1, Priority::High, NEVER);
    store(&mut shard, 2, Priority::High, 100);
    for key in 1..=2 {
        shard.get(h(key), &key);
    }
    let first = shard.evict_at(100, true).expect("two entries");
    assert_eq!((first.key, first.cause), (2, RemovalCause::Expired));
}

impl Harness<u64, u64> {
    /// Evicts everything evictable at `now` and lists (key, cause) in eviction order.
    fn clone_keys_by_eviction(
        &mut self,
        now: u64,
        spare_critical: bool,
    ) -> Vec<(u64, RemovalCause)> {
        core::iter::from_fn(|| self.evict_at(now, spare_critical))
            .map(|e| (e.key, e.cause))
            .collect()
    }
}

/// Hits of a loop over `keys` keys, `rounds` times, through a shard of `capacity` entries
/// evicting by `policy` (exclusive access, as in the simulator).
pub(super) fn loop_hits<P: Policy>(policy: P, keys: u64, capacity: u64, rounds: u64) -> u64 {
    let mut shard: Harness<u64, u64, P> = Harness::with_policy(policy);
    let mut hits = 0;
    for _ in 0..rounds {
        for key in 0..keys {
            if shard.get(h(key), &key).is_some() {
                hits += 1;
                continue;
            }
            shard.insert(h(key), key, key, 1);
            while shard.weight() > capacity {
                shard.evict();
            }
        }
    }
    hits
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn w_tinylfu_keeps_part_of_a_loop_larger_than_the_cache() {
    // 400 keys in a loop through 200 entries: CLOCK always evicts the key needed next.
    assert_eq!(loop_hits(<ClockPolicy>::new(), 400, 200, 20), 0);
    // Frequency admission keeps a stable set instead: nearly half of every round hits.
    let hits = loop_hits(WTinyLfu::new(), 400, 200, 20);
    assert!(hits > 20 * 400 * 4 / 10, "{hits} hits of {}", 20 * 400);
}

/// Replays `requests` through a W-TinyLFU harness of `capacity` entries, each hit told to the
/// policy (`exclusive`) or only marked (as when the concurrent cache loses a hit's record),
/// inserting on a miss; returns the hits among the requests from `count_from` on.
fn replay_wtinylfu(
    shard: &mut Harness<u64, u64, WTinyLfu>,
    capacity: u64,
    requests: impl IntoIterator<Item = u64>,
    exclusive: bool,
    count_from: usize,
) -> usize {
    let mut hits = 0;
    for (at, key) in requests.into_iter().enumerate() {
        let hit = if exclusive {
            shard.get(h(key), &key).is_some()
        } else {
            shard.mark_used(h(key), &key)
        };
        if hit {
            hits += usize::from(at >= count_from);
        } else {
            insert_bounded(shard, capacity, key);
        }
    }
    hits
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn the_default_policy_keeps_a_stable_part_of_a_loop_larger_than_the_cache() {
    // 120 keys in a loop through 100 entries: LRU, FIFO and CLOCK never hit; the optimum
    // holds 99.
    for exclusive in [true, false] {
        let mut shard = Harness::with_policy(WTinyLfu::new());
        let looped = (0..60).flat_map(|_| 0..120u64);
        let hits = replay_wtinylfu(&mut shard, 100, looped, exclusive, 40 * 120);
        let ratio = hits as f64 / (20.0 * 120.0);
        // Hits told (a concurrent table tells those on sampled keys) let the window's
        // miniature caches see the loop as it is; with every record lost they see only its
        // misses, and the window drifts, but a stable part stays.
        let floor = if exclusive { 0.75 } else { 0.5 };
        assert!(
            ratio > floor,
            "hit ratio {ratio:.3} on the loop's last 20 rounds (exclusive: {exclusive})"
        );
        let mut clock = Harness::with_policy(<ClockPolicy>::new());
        let mut clock_hits = 0;
        for key in (0..60).flat_map(|_| 0..120u64) {
            if clock.get(h(key), &key).is_some() {
                clock_hits += 1;
            } else {
                insert_bounded(&mut clock, 100, key);
            }
        }
        assert_eq!(clock_hits, 0, "the loop defeats CLOCK");
    }
}

/// Keys used twice, the second time 1 to 60 new keys after the first, and never again: the
/// longer the window, the more second uses it catches; the sketch has seen such a key once,
/// not enough to displace an incumbent.
fn recency_workload(keys: u64) -> Vec<u64> {
    let mut events: Vec<(u64, u64)> = Vec::new();
    for key in 0..keys {
        let gap = h(key) % 60 + 1;
        events.push((3 * key, key));
        events.push((3 * (key + gap) + 1, key));
    }
    events.sort_unstable();
    events.into_iter().map(|(_, key)| key).collect()
}

/// `shards` harnesses whose policies a table made ([`Policy::for_table`]), keys routed by hash
/// bits 32 and up, as the cache routes them.
struct Table<P: Policy> {
    shards: Vec<Harness<u64, u64, P>>,
    capacity: u64,
}

impl<P: Policy> Table<P> {
    fn new(shards: usize, capacity: u64, make: fn() -> P) -> Self {
        let shards: Vec<_> = P::for_table(shards, make)
            .into_iter()
            .map(Harness::with_policy)
            .collect();
        Self { shards, capacity }
    }

    fn shard(&mut self, key: u64) -> &mut Harness<u64, u64, P> {
        let at = (h(key) >> 32) as usize % self.shards.len();
        &mut self.shards[at]
    }

    /// A lookup, and on a miss an insertion within the shard's share of the capacity.
    fn touch(&mut self, key: u64) {
        let share = self.capacity / self.shards.len() as u64;
        let shard = self.shard(key);
        if shard.get(h(key), &key).is_none() {
            insert_bounded(shard, share, key);
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_table_makes_its_shards_policies_as_told() {
    use super::WindowTuning;
    let mut table = Table::new(4, 400, || WTinyLfu::with_tuning(WindowTuning::fixed(20)));
    for key in recency_workload(2_000) {
        table.touch(key);
    }
    for shard in &table.shards {
        let policy = shard.policy();
        assert_eq!(policy.window_share(), WindowTuning::fixed(20).initial);
        assert_eq!(
            policy.simulated_requests(),
            0,
            "a fixed window simulates nothing"
        );
        assert_eq!(policy.window_decisions(), 0);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_tables_shards_pool_their_evidence_and_follow_one_window() {
    let one = 1 << 16;
    let initial = super::WindowTuning::DEFAULT.initial;
    let mut table = Table::new(8, 800, WTinyLfu::new);
    let shares = |table: &Table<WTinyLfu>| -> Vec<u32> {
        table
            .shards
            .iter()
            .map(|shard| shard.policy().window_share())
            .collect()
    };
    let simulated = |table: &Table<WTinyLfu>| -> u64 {
        table
            .shards
            .iter()
            .map(|shard| shard.policy().simulated_requests())
            .sum()
    };
    let (mut moved_at, mut split) = (None, 0);
    for key in recency_workload(40_000) {
        table.touch(key);
        let now = shares(&table);
        if moved_at.is_none() && now[0] != initial {
            moved_at = Some(simulated(&table));
        }
        // A shard follows a move at its next miss.
        split += usize::from(now.iter().any(|&share| share != now[0]));
    }
    let now = shares(&table);
    assert!(
        now[0] >= one / 4,
        "window share {} after a recency workload",
        now[0]
    );
    assert!(
        now.iter().all(|&share| share == now[0]),
        "every shard follows the table's decision: {now:?}"
    );
    assert!(
        split < 500,
        "the shards' windows differed after {split} of 80 000 requests"
    );
    // Pooled, eight shards of 100 entries decide on as many simulated requests as one shard
    // of 800 would (three epochs of two requests per entry), not each on its own.
    let requests = moved_at.expect("the window moved");
    assert!(
        requests >= 3 * 2 * 800,
        "the first move came after {requests} simulated requests in all"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn the_window_grows_for_recency_and_stays_small_for_a_loop() {
    let initial = super::WindowTuning::DEFAULT.initial;
    let one = 1 << 16;
    let recent = recency_workload(60_000);
    // The hits told (those on sampled keys; every record kept) are what the window's
    // miniature caches learn from.
    for exclusive in [true] {
        let mut shard = Harness::with_policy(WTinyLfu::new());
        let (mut share, mut largest_move) = (initial, 0);
        for &key in &recent {
            replay_wtinylfu(&mut shard, 200, [key], exclusive, 0);
            let now = shard.policy().window_share();
            largest_move = largest_move.max(now.abs_diff(share));
            share = now;
        }
        assert!(
            share > one / 4,
            "window share {share} (of 65 536) after a recency workload (exclusive: {exclusive})"
        );
        assert!(
            largest_move <= one / 2,
            "the window moved by {largest_move} at once (exclusive: {exclusive})"
        );
        let mut shard = Harness::with_policy(WTinyLfu::new());
        replay_wtinylfu(
            &mut shard,
            100,
            (0..2_000).flat_map(|_| 0..120u64),
            exclusive,
            0,
        );
        let share = shard.policy().window_share();
        assert!(
            share < one / 8 && share < 12 * initial,
            "window share {share} (of 65 536) after a loop (exclusive: {exclusive})"
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_climbing_window_grows_for_recency_and_stays_small_for_a_loop() {
    let one = 1 << 16;
    let climbing = || WTinyLfu::with_tuning(super::WindowTuning::climbing());
    let mut shard = Harness::with_policy(climbing());
    for key in recency_workload(200_000) {
        replay_wtinylfu(&mut shard, 200, [key], true, 0);
    }
    let share = shard.policy().window_share();
    assert!(
        share > one / 4,
        "window share {share} (of 65 536) after a recency workload"
    );
    assert!(shard.policy().window_decisions() > 0);
    let mut shard = Harness::with_policy(climbing());
    replay_wtinylfu(&mut shard, 100, (0..2_000).flat_map(|_| 0..120u64), true, 0);
    let share = shard.policy().window_share();
    assert!(
        share < one / 8,
        "window share {share} (of 65 536) after a loop"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn low_priority_entries_never_displace_used_incumbents() {
    // A fixed 1 % window (never adapted), so every insertion brings a candidate to judge.
    let tuning = super::WindowTuning::fixed(1);
    let mut shard = Harness::with_policy(WTinyLfu::with_tuning(tuning));
    for key in 0..10 {
        store(&mut shard, key, Priority::High, NEVER);
        for _ in 0..3 {
            shard.get(h(key), &key);
        }
    }
    // Hundreds of Low entries, each used five times while it is the newest: the sketch sees
    // them as often as the incumbents, but a Low candidate counts as never seen. (The first
    // one pushes the newest incumbent out of the window, and one of the two may go then.)
    let mut displaced = Vec::new();
    for key in 100..400 {
        store(&mut shard, key, Priority::Low, NEVER);
        for _ in 0..5 {
            shard.get(h(key), &key);
        }
        while shard.len() > 10 {
            let victim = shard.evict().expect("over capacity");
            if victim.key < 100 {
                displaced.push((victim.key, key));
            }
        }
    }
    assert!(
        displaced.len() <= 1 && displaced.iter().all(|&(_, by)| by == 100),
        "incumbents displaced (incumbent, by): {displaced:?}"
    );
    // The same with High newcomers: they earn their place.
    for key in 1_000..1_300 {
        store(&mut shard, key, Priority::High, NEVER);
        for _ in 0..5 {
            shard.get(h(key), &key);
        }
        while shard.len() > 10 {
            shard.evict().expect("over capacity");
        }
    }
    assert!(
        (0..10).filter(|&k| shard.peek(h(k), &k).is_some()).count() < 10,
        "frequent High newcomers displace some incumbents"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn the_newest_entry_survives_its_own_insertion() {
    // Whatever the window's share, an insertion is not undone by its own eviction pass.
    let mut shard = Harness::with_policy(WTinyLfu::new());
    for key in 0..1_000 {
        let evicted = insert_bounded(&mut shard, 8, key);
        assert!(
            evicted.iter().all(|e| e.key != key),
            "{key} evicted at once"
        );
        assert_eq!(shard.peek(h(key), &key), Some(&(key * 10)));
        // Used while the newest: the next insertion's window pass gives it a second chance
        // behind the newcomer, which must not leave the newcomer at the front to be judged.
        shard.get(h(key), &key);
    }
}

#[test]
fn a_reserved_shard_sizes_the_sketch_once() {
    let mut shard: Harness<u64, u64, WTinyLfu> = Harness::with_policy(WTinyLfu::new());
    assert_eq!(shard.policy().heap_bytes(), 0);
    shard.reserve(1_000);
    // Eight bytes of sketch per entry, for the next power of two, and the window sizer's six
    // miniature caches: a quarter of the keys sampled, room for 328 nodes of 16 bytes each (a
    // quarter more than the 250 expected, and 16), and a hash table of node numbers.
    let sized = shard.policy().heap_bytes();
    let minis = 6 * 328 * 16;
    assert!(
        (1_024 * 8 + minis..=1_024 * 8 + 56 * 1_024).contains(&sized),
        "{sized}"
    );
    for key in 0..1_000 {
        insert_bounded(&mut shard, 1_000, key);
    }
    assert_eq!(
        shard.policy().heap_bytes() - sized,
        0,
        "no growth while filling"
    );
    // Clearing forgets the counts but keeps the size.
    drop(shard.take_all());
    assert_eq!(shard.policy().heap_bytes(), sized);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_heavy_candidate_must_outweigh_every_light_victim_it_displaces() {
    // 100 light incumbents seen `uses` times each, then a heavy newcomer (the weight of ten
    // of them) seen fifteen times; the next insertion makes it the candidate. (Each sighting
    // is a miss: hits count once per pass of the hand, however many there were.)
    let survives = |uses: u32| {
        let tuning = super::WindowTuning::fixed(1);
        let mut shard = Harness::with_policy(WTinyLfu::with_tuning(tuning));
        let fill = |shard: &mut Harness<u64, u64, WTinyLfu>| {
            while shard.weight() > 100 {
                shard.evict().expect("over capacity");
            }
        };
        let seen = |shard: &mut Harness<u64, u64, WTinyLfu>, key: u64, times: u32, weight| {
            for _ in 1..times {
                shard.insert(h(key), key, key, weight);
                shard.remove(h(key), &key);
            }
            shard.insert(h(key), key, key, weight);
        };
        for key in 0..100 {
            seen(&mut shard, key, uses, 1);
        }
        seen(&mut shard, 1_000, 15, 10);
        fill(&mut shard);
        shard.insert(h(1_001), 1_001, 0, 1);
        fill(&mut shard);
        shard.peek(h(1_000), &1_000).is_some()
    };
    // Against one victim used three times it would win; against the ten it would displace
    // (thirty uses together) it loses.
    assert!(!survives(3), "admitted over ten victims used more in all");
    // Against ten victims used once each it wins.
    assert!(
        survives(1),
        "rejected although used more than its victims together"
    );
}
