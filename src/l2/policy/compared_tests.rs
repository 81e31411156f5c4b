//! Unit tests of the policies the `policies` feature adds, driven through the [`Harness`].

use alloc::vec::Vec;

use super::tests::{h, insert_bounded, loop_hits, store};
use super::{Harness, Priority, ProbationClock};
use crate::policy::harness::NEVER;

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_key_back_soon_after_a_probation_eviction_is_admitted_to_the_main_queue() {
    let capacity = 20;
    let mut shard: Harness<u64, u64, ProbationClock> = Harness::with_policy(ProbationClock::new());
    for k in 0..capacity {
        insert_bounded(&mut shard, capacity, k);
    }
    // Key 0 is the oldest, never used: the next insert evicts it from probation into the ghost.
    let evicted = insert_bounded(&mut shard, capacity, 100);
    assert_eq!(evicted.iter().map(|e| e.key).collect::<Vec<_>>(), [0]);
    // Back soon: goes to the main queue, so the next insertions evict probation entries
    // (1, 2, ...) rather than it, although it is the newest unused entry.
    insert_bounded(&mut shard, capacity, 0);
    for k in 200..210 {
        let evicted = insert_bounded(&mut shard, capacity, k);
        assert!(
            evicted.iter().all(|e| e.key != 0),
            "readmitted key evicted by {k}"
        );
    }
    assert_eq!(shard.peek(h(0), &0), Some(&0));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn one_use_on_probation_saves_a_key_from_a_full_turnover() {
    let capacity = 30;
    let mut shard: Harness<u64, u64, ProbationClock> = Harness::with_policy(ProbationClock::new());
    for k in 0..capacity {
        insert_bounded(&mut shard, capacity, k);
    }
    assert!(shard.get(h(5), &5).is_some());
    for k in 100..100 + capacity {
        insert_bounded(&mut shard, capacity, k);
    }
    assert_eq!(
        shard.peek(h(5), &5),
        Some(&50),
        "the used key was promoted, not evicted"
    );
    let old_left = (0..capacity)
        .filter(|&k| shard.peek(h(k), &k).is_some())
        .count();
    assert_eq!(old_left, 1, "every unused old key was evicted");
}

/// Gets `hot` and `other` into the main CLOCK with zero counters (they were used on
/// probation; a third, unused entry is evicted to move them), then hits each three times and
/// returns the next victim.
fn victim_after_equal_use(hot: Priority, other: Priority) -> u64 {
    let mut shard: Harness<u64, u64, ProbationClock> = Harness::with_policy(ProbationClock::new());
    store(&mut shard, 1, hot, NEVER);
    store(&mut shard, 2, other, NEVER);
    store(&mut shard, 3, Priority::High, NEVER);
    shard.get(h(1), &1);
    shard.get(h(2), &2);
    assert_eq!(
        shard.evict().map(|e| e.key),
        Some(3),
        "the unused entry goes"
    );
    for _ in 0..3 {
        shard.get(h(1), &1);
        shard.get(h(2), &2);
    }
    shard.evict().expect("two entries left").key
}

#[test]
fn lower_priorities_get_fewer_second_chances_in_probation_clock() {
    // Both High: each counter is 3; the hand takes the first entry after three rounds.
    assert_eq!(victim_after_equal_use(Priority::High, Priority::High), 1);
    // The same use, but entry 2 is Low (one second chance) or Medium (two): it goes first.
    assert_eq!(victim_after_equal_use(Priority::High, Priority::Low), 2);
    assert_eq!(victim_after_equal_use(Priority::High, Priority::Medium), 2);
    // Medium against Low: Low goes.
    assert_eq!(victim_after_equal_use(Priority::Low, Priority::Medium), 1);
}

#[test]
fn lru_is_exact_when_told_of_hits_and_gives_untold_ones_a_second_chance() {
    use super::Lru;
    let mut shard: Harness<u64, u64, Lru> = Harness::with_policy(Lru::new());
    for key in 1..=3 {
        shard.insert(h(key), key, key, 1);
    }
    shard.get(h(1), &1); // order now 2, 3, 1
    assert_eq!(shard.evict().map(|e| e.key), Some(2));
    // A use the policy is not told of only marks: the hand moves a marked head to the tail.
    shard.mark_used(h(3), &3); // order 3*, 1
    assert_eq!(shard.evict().map(|e| e.key), Some(1));
    assert_eq!(shard.evict().map(|e| e.key), Some(3));
    assert!(shard.evict().is_none());
}

#[test]
fn arc_moves_reused_entries_to_t2_and_adapts_on_ghost_hits() {
    use super::ArcPolicy;
    // Capacity 4. 1 and 2 are used twice (T2); a scan of 10..20 passes through T1 only.
    let mut shard: Harness<u64, u64, ArcPolicy> = Harness::with_policy(ArcPolicy::new());
    let touch = |shard: &mut Harness<u64, u64, ArcPolicy>, key: u64| {
        if shard.get(h(key), &key).is_none() {
            shard.insert(h(key), key, key, 1);
            while shard.weight() > 4 {
                shard.evict();
            }
        }
    };
    for key in [1, 2, 1, 2] {
        touch(&mut shard, key);
    }
    for key in 10..20 {
        touch(&mut shard, key);
    }
    assert!(
        shard.peek(h(1), &1).is_some() && shard.peek(h(2), &2).is_some(),
        "the scan kept out of T2"
    );
}

#[test]
fn lfu_keeps_the_most_used_entries_against_one_time_keys() {
    use super::Lfu;
    let mut shard: Harness<u64, u64, Lfu> = Harness::with_policy(Lfu::new());
    let bounded = |shard: &mut Harness<u64, u64, Lfu>, key: u64| {
        if shard.get(h(key), &key).is_none() {
            shard.insert(h(key), key, key, 1);
            while shard.weight() > 3 {
                shard.evict();
            }
        }
    };
    for _ in 0..5 {
        bounded(&mut shard, 1); // used five times
    }
    bounded(&mut shard, 2);
    bounded(&mut shard, 2);
    for key in 100..110 {
        bounded(&mut shard, key); // one-time keys evict one another, not 1 or 2
    }
    assert!(shard.peek(h(1), &1).is_some() && shard.peek(h(2), &2).is_some());
    // An LRU would have kept only the last three one-time keys.
    assert_eq!(shard.len(), 3);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn predictive_learns_to_keep_part_of_a_loop_and_a_hot_key_through_a_scan() {
    use super::Predictive;
    assert!(
        loop_hits(Predictive::new(), 400, 200, 20) > 20 * 400 / 4,
        "a loop twice the cache: LRU keeps nothing, the learned scores keep a stable part"
    );
    let mut shard: Harness<u64, u64, Predictive> = Harness::with_policy(Predictive::new());
    let mut hot_hits = 0;
    for round in 0..2_000u64 {
        for key in [0, 1_000 + round] {
            // Key 0 is read every round; the others are a scan of one-time keys.
            if shard.get(h(key), &key).is_some() {
                hot_hits += u64::from(key == 0);
                continue;
            }
            shard.insert(h(key), key, key, 1);
            while shard.weight() > 16 {
                shard.evict();
            }
        }
    }
    assert!(
        hot_hits >= 1_990,
        "the hot key survived the scan: {hot_hits} hits"
    );
}
