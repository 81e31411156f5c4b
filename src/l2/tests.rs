//! Unit tests of the L2 shard and its default policy.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{Evicted, Shard};

/// A spread-out hash for test keys (the shard takes hashes from its owner).
fn h(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 7)
}

/// Inserts like a capacity-bounded cache would: store, then evict while over `capacity`.
fn insert_bounded(shard: &mut Shard<u64, u64>, capacity: u64, key: u64) -> Vec<Evicted<u64, u64>> {
    shard.insert(h(key), key, key * 10, 1);
    let mut evicted = Vec::new();
    while shard.weight() > capacity {
        evicted.push(shard.evict().expect("over budget means not empty"));
    }
    evicted
}

#[test]
fn insert_get_replace_remove_and_weights() {
    let mut shard: Shard<u64, &str> = Shard::new();
    assert_eq!(shard.insert(h(1), 1, "a", 5), None);
    assert_eq!(shard.insert(h(2), 2, "b", 7), None);
    assert_eq!(shard.weight(), 12);
    assert_eq!(shard.get(h(1), &1), Some(&"a"));
    assert_eq!(shard.get_key_value(h(2), &2), Some((&2, &"b")));
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
    let mut shard: Shard<u64, u64> = Shard::new();
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
    let mut shard: Shard<u64, u64> = Shard::new();
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
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn a_key_back_soon_after_a_probation_eviction_is_admitted_to_the_main_queue() {
    let capacity = 20;
    let mut shard: Shard<u64, u64> = Shard::new();
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
fn dropping_a_shard_drops_what_it_holds() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let mut shard: Shard<u64, Counted> = Shard::new();
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

#[test]
#[cfg_attr(
    miri,
    ignore = "policy behaviour, no unsafe code: covered by the native run"
)]
fn one_use_on_probation_saves_a_key_from_a_full_turnover() {
    let capacity = 30;
    let mut shard: Shard<u64, u64> = Shard::new();
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
