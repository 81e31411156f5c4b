//! The tiered facade: a wait-free L1 in front of the sharded L2, kept consistent per key.
//!
//! # Data flow
//! - `get`: L1 (wait-free) → on a miss, the key's L2 shard under its read lock; after
//!   `promote_after` L2 hits the entry is copied into L1.
//! - `insert` / `remove`: the key's L2 shard under its write lock; the key's L1 copy is
//!   invalidated inside that locked section, and so is every L2 victim's.
//!
//! # Consistency (DESIGN §8)
//! Per key, the two tiers are linearizable: after `insert` or `remove` returns, every later
//! `get` on any thread returns that value, a newer one, or a miss, never an older one.
//!
//! The hard case is a promotion racing a write: a reader copies the value it found in L2 into
//! L1 while a writer replaces or removes the key. Promotion therefore happens **while the
//! reader still holds the L2 shard's read lock**, and writers invalidate L1 **while they hold
//! its write lock**. Every L1 change for a key is thus ordered by that key's shard lock: a
//! promotion either completes before the write's invalidation (which then removes the copy) or
//! starts after the write (and copies the new value). The loom model `promotion_vs_write`
//! checks exactly this.
//!
//! L1 only ever holds copies of entries that are in L2: L2 evictions invalidate L1 too.

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crate::error::{BuildError, InsertError};
use crate::hash::DefaultHashBuilder;
use crate::l1::{self, L1};
use crate::l2::{L2, L2Builder, Policy, ProbationClock, UnitWeigher, Weigher};

/// A concurrent, capacity-bounded cache: a wait-free L1 of hot copies in front of a sharded
/// CLOCK L2.
///
/// `get` looks in L1 first (wait-free), then in the key's L2 shard under its read lock, and
/// copies entries into L1 after [`promote_after`](CacheBuilder::promote_after) L2 hits.
/// `insert` and `remove` change L2 under the shard's write lock and invalidate L1's copy inside
/// that section; promotions happen under the read lock. So, per key, the tiers are
/// linearizable: after `insert` or `remove` returns, every later `get` returns that value, a
/// newer one, or a miss, never an older one (a loom model checks the promotion race).
/// L1 only holds copies of entries present in L2: L2 evictions invalidate them too.
///
/// ```
/// use stratacache::Cache;
///
/// let cache: Cache<u64, String> = Cache::builder().capacity(10_000).build()?;
/// cache.insert(7, "seven".to_string())?;
/// assert_eq!(cache.get(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.remove(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.get(&7), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = ProbationClock> {
    l1: L1<K, V, ()>,
    l2: L2<K, V, (), W, P>,
    hash_builder: S,
    promote_after: u8,
}

/// Builds a [`Cache`]. Only the capacity is required.
pub struct CacheBuilder<K, V, S = DefaultHashBuilder, W = UnitWeigher, P = ProbationClock> {
    l2: L2Builder<K, V, (), W, P>,
    capacity: Option<u64>,
    l1_entries: Option<usize>,
    promote_after: u8,
    hash_builder: S,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            l2: L2::builder().hasher(()),
            capacity: None,
            l1_entries: None,
            promote_after: 2,
            hash_builder: DefaultHashBuilder::default(),
        }
    }
}

impl<K, V, S, W, P> fmt::Debug for CacheBuilder<K, V, S, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("capacity", &self.capacity)
            .field("l1_entries", &self.l1_entries)
            .field("promote_after", &self.promote_after)
            .finish_non_exhaustive()
    }
}

impl<K, V, S, W, P> CacheBuilder<K, V, S, W, P> {
    /// The L2 capacity: the most the entries may weigh together (with the default weigher, the
    /// most entries). Required.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self.l2 = self.l2.capacity(capacity);
        self
    }

    /// How many hot copies L1 holds, in entries (default: an eighth of the capacity, between
    /// 64 and 65 536, rounded up to whole sets).
    pub fn l1_entries(mut self, entries: usize) -> Self {
        self.l1_entries = Some(entries);
        self
    }

    /// After how many L2 hits an entry is copied into L1 (default 2; 1 promotes on the first
    /// hit). 0 is treated as 1.
    pub fn promote_after(mut self, hits: u8) -> Self {
        self.promote_after = hits.max(1);
        self
    }

    /// The number of L2 shards, a power of two (default: four per CPU, rounded up).
    pub fn shards(mut self, shards: usize) -> Self {
        self.l2 = self.l2.shards(shards);
        self
    }

    /// Hash keys with `hash_builder`.
    pub fn hasher<S2>(self, hash_builder: S2) -> CacheBuilder<K, V, S2, W, P> {
        CacheBuilder {
            l2: self.l2,
            capacity: self.capacity,
            l1_entries: self.l1_entries,
            promote_after: self.promote_after,
            hash_builder,
        }
    }

    /// Weigh entries with `weigher`; the capacity then bounds the total weight.
    pub fn weigher<W2: Weigher<K, V>>(self, weigher: W2) -> CacheBuilder<K, V, S, W2, P> {
        CacheBuilder {
            l2: self.l2.weigher(weigher),
            capacity: self.capacity,
            l1_entries: self.l1_entries,
            promote_after: self.promote_after,
            hash_builder: self.hash_builder,
        }
    }

    /// Evict from L2 by the policy `P2`.
    pub fn policy<P2: Policy + Default>(self) -> CacheBuilder<K, V, S, W, P2> {
        CacheBuilder {
            l2: self.l2.policy::<P2>(),
            capacity: self.capacity,
            l1_entries: self.l1_entries,
            promote_after: self.promote_after,
            hash_builder: self.hash_builder,
        }
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// Any [`BuildError`] of the two tiers: zero or overflowing capacities, a bad shard count,
    /// a failed allocation.
    pub fn build(self) -> Result<Cache<K, V, S, W, P>, BuildError>
    where
        P: Policy + Default,
    {
        let l2 = self.l2.build()?;
        let l1_entries = self.l1_entries.unwrap_or_else(|| {
            usize::try_from(l2.capacity() / 8)
                .unwrap_or(usize::MAX)
                .clamp(64, 1 << 16)
        });
        Ok(Cache {
            l1: L1::with_capacity_and_hasher(l1_entries, ())?,
            l2,
            hash_builder: self.hash_builder,
            promote_after: self.promote_after,
        })
    }
}

impl<K, V> Cache<K, V> {
    /// A builder with the defaults.
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }
}

impl<K, V, S, W, P: Policy> Cache<K, V, S, W, P> {
    /// The L2 capacity.
    pub fn capacity(&self) -> u64 {
        self.l2.capacity()
    }

    /// How many copies L1 can hold.
    pub fn l1_capacity(&self) -> usize {
        self.l1.capacity()
    }

    /// The total weight of the entries (L1 holds copies and adds none).
    pub fn weighted_size(&self) -> u64 {
        self.l2.weighted_size()
    }

    /// The number of entries (a moment's view; takes every L2 shard's read lock in turn).
    pub fn len(&self) -> usize
    where
        P: Policy,
    {
        self.l2.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool
    where
        P: Policy,
    {
        self.l2.is_empty()
    }

    /// Registers the calling thread: a handle works without `std` (and is a little faster
    /// than the thread-local one the plain methods use). `!Send`: one per thread.
    pub fn handle(&self) -> CacheHandle<'_, K, V, S, W, P> {
        CacheHandle {
            cache: self,
            l1: self.l1.handle(),
        }
    }
}

/// The operations, over an L1 guard from either front.
impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn get_in<Q>(&self, l1: &l1::Guard<'_, K, V, ()>, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        if let Some(value) = l1.get_hashed(hash, key, true) {
            return Some(value.clone());
        }
        let shard = self.l2.shard_of(hash).read();
        let (stored_key, value, hits) = shard.get_counting(hash, key)?;
        if hits >= self.promote_after {
            // Under the shard's read lock: see the module docs.
            l1.insert_hashed(hash, stored_key.clone(), value.clone());
        }
        Some(value.clone())
    }

    /// Applies `f` to the value for `key` without counting a use or promoting: L1's copy if
    /// it has one, else L2's (under the shard's read lock).
    fn peek_with<Q, R>(
        &self,
        l1: &l1::Guard<'_, K, V, ()>,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        if let Some(value) = l1.get_hashed(hash, key, false) {
            return Some(f(value));
        }
        self.l2.shard_of(hash).read().peek(hash, key).map(f)
    }

    fn insert_in(
        &self,
        l1: &l1::Guard<'_, K, V, ()>,
        key: K,
        value: V,
    ) -> Result<(), InsertError<K, V>> {
        let hash = self.hash_builder.hash_one(&key);
        self.l2.insert_hashed(
            hash,
            key,
            value,
            |key| {
                l1.remove_hashed(hash, key);
            },
            |victim_hash, victim| {
                l1.remove_hashed(victim_hash, victim);
            },
        )
    }

    fn remove_in<Q>(&self, l1: &l1::Guard<'_, K, V, ()>, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        self.l2.remove_hashed(hash, key, || {
            l1.remove_hashed(hash, key);
        })
    }

    fn clear_in(&self, l1: &l1::Guard<'_, K, V, ()>) {
        self.l2.clear_with(|taken| {
            for (key, _) in taken {
                l1.remove_hashed(self.hash_builder.hash_one(key), key);
            }
        });
    }
}

macro_rules! cache_operations {
    ($pin:ident) => {
        /// A clone of the value for `key`: from L1 if it holds a copy (wait-free), else from L2,
        /// where enough hits copy it into L1.
        pub fn get<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().get_in(&self.$pin(), key)
        }

        /// A clone of the value for `key`, not counted as a use and never promoted.
        pub fn peek<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().peek_with(&self.$pin(), key, V::clone)
        }

        /// Whether `key` is present (not counted as a use).
        pub fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().peek_with(&self.$pin(), key, |_| ()).is_some()
        }

        /// Stores `value` for `key` in L2, replacing any previous value and invalidating L1's
        /// copy, then evicts until the cache is within its capacity.
        ///
        /// # Errors
        /// [`InsertError::TooHeavy`], with the key and value, when the entry alone weighs more
        /// than the capacity.
        pub fn insert(&self, key: K, value: V) -> Result<(), InsertError<K, V>> {
            self.cache().insert_in(&self.$pin(), key, value)
        }

        /// Removes `key` from both tiers and returns its value.
        pub fn remove<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().remove_in(&self.$pin(), key)
        }

        /// Removes every entry (entries inserted while it runs may stay).
        pub fn clear(&self) {
            self.cache().clear_in(&self.$pin());
        }

        /// Looks up every key under one pin of L1; the results come in the keys' order.
        pub fn get_many<'q, Q>(&self, keys: impl IntoIterator<Item = &'q Q>) -> Vec<Option<V>>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq + 'q,
        {
            let l1 = self.$pin();
            keys.into_iter()
                .map(|key| self.cache().get_in(&l1, key))
                .collect()
        }

        /// Inserts every entry under one pin of L1. Entries that cannot be stored are handed
        /// back, in order, with why; an empty result means every entry was stored.
        pub fn insert_many(
            &self,
            entries: impl IntoIterator<Item = (K, V)>,
        ) -> Vec<InsertError<K, V>> {
            let l1 = self.$pin();
            entries
                .into_iter()
                .filter_map(|(key, value)| self.cache().insert_in(&l1, key, value).err())
                .collect()
        }
    };
}

#[cfg(all(feature = "std", not(loom)))]
impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &Self {
        self
    }

    fn pin_l1(&self) -> l1::Guard<'_, K, V, ()> {
        self.l1.pin()
    }

    cache_operations!(pin_l1);
}

impl<K, V, S, W, P: Policy> fmt::Debug for Cache<K, V, S, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity())
            .field("weighted_size", &self.weighted_size())
            .field("l1_capacity", &self.l1_capacity())
            .finish_non_exhaustive()
    }
}

/// One thread's access to a [`Cache`], without `std`'s thread-locals. `!Send`.
pub struct CacheHandle<
    'c,
    K,
    V,
    S = DefaultHashBuilder,
    W = UnitWeigher,
    P: Policy = ProbationClock,
> {
    cache: &'c Cache<K, V, S, W, P>,
    l1: l1::Handle<'c, K, V, ()>,
}

impl<K, V, S, W, P> CacheHandle<'_, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &Cache<K, V, S, W, P> {
        self.cache
    }

    fn pin_l1(&self) -> l1::Guard<'_, K, V, ()> {
        self.l1.pin()
    }

    cache_operations!(pin_l1);

    /// Frees L1 copies retired by this thread and others that no reader can still see (at most
    /// 8 batches of 64). Call it at a quiet point, such as between frames.
    pub fn collect(&self) {
        self.l1.collect();
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use alloc::string::{String, ToString};

    use super::*;

    impl<K: Hash + Eq, V, S: BuildHasher, W, P: Policy> Cache<K, V, S, W, P> {
        /// Whether L1 holds a copy for `key` (and which value).
        fn l1_copy(&self, key: &K) -> Option<V>
        where
            V: Clone,
        {
            let hash = self.hash_builder.hash_one(key);
            self.l1.pin().get_hashed(hash, key, false).cloned()
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
}
