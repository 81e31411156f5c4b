//! Unit tests of the tiered facade that look inside it.
use alloc::string::{String, ToString};

use super::*;

impl<K: Hash + Eq, V, S: BuildHasher, W, P: Policy> Cache<K, V, S, W, P> {
    /// Whether L1 holds a copy for `key` (and which value).
    fn l1_copy(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        self.l1
            .pin()
            .get_hashed(hash, key, false)
            .map(|copy| copy.value.clone())
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
            let hash = cache.hash_builder.hash_one(k);
            let in_l2 = cache.l2.shard_of(hash).read().peek(hash, &k).copied();
            assert_eq!(
                in_l2,
                Some(copy),
                "L1 copy of {k} without the same entry in L2"
            );
        }
    }
}
