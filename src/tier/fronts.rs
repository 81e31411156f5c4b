//! The cache's fronts: plain calls on [`Cache`] (under `std`, through a thread-local L1
//! handle), a [`CacheHandle`] per thread (no `std` needed), and a [`CacheFrame`] that pins L1
//! once for a batch. One macro writes the operations all three share.

use alloc::borrow::ToOwned;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::convert::Infallible;
use core::hash::{BuildHasher, Hash};

use super::compute::EntryRef;
use super::iter::{Iter, PinFrom};
use super::stats::Sampler;
use super::{Cache, Shared, Stamped};
use crate::entry::InsertOptions;
use crate::error::InsertError;
use crate::hash::DefaultHashBuilder;
use crate::l1;
use crate::l2::{DefaultPolicy, Policy, UnitWeigher, Weigher};

/// What a quiet point frees at most (of L1's retired copies, and of L2's retired entries).
pub(super) const QUIET_RECLAIM: usize = crate::l1::COLLECT_BATCH;

impl<K, V, S, W, P: Policy> Cache<K, V, S, W, P> {
    /// Registers the calling thread: a handle works without `std` (and is a little faster
    /// than the thread-local one the plain methods use). `!Send`: one per thread.
    pub fn handle(&self) -> CacheHandle<'_, K, V, S, W, P> {
        let shared = &*self.shared;
        CacheHandle {
            cache: shared,
            l1: shared.l1.handle_on(if shared.l1.replicas() > 1 {
                shared.placement.replica_of_current_thread()
            } else {
                0
            }),
            stripe: shared.stats.assign(),
            sampler: shared.sampler(),
        }
    }
}

macro_rules! cache_operations {
    ($pin:ident, $stripe:ident, $caller:ident) => {
        /// A clone of the value for `key`: from L1 if it holds a live copy (wait-free), else
        /// from L2, where enough hits copy it into L1. Expired entries are never returned (the
        /// lookup that finds one reclaims it).
        pub fn get<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.$caller(|stripe, sampler| self.cache().get_in(&self.$pin(), stripe, sampler, key))
        }

        /// Selects `key` for an insertion on a miss or a computation from its current value
        /// (moka's `entry_by_ref`): see [`EntryRef`].
        ///
        /// ```
        /// use stratacache::{Cache, ComputeOp, Computed};
        ///
        /// let cache: Cache<String, u32> = Cache::builder().capacity(100).build()?;
        /// let first = cache.entry("hits").or_insert_with(|| 1);
        /// assert!(first.is_fresh());
        /// assert!(!cache.entry("hits").or_insert_with(|| 99).is_fresh());
        /// // Count up: computations on one key take turns.
        /// let counted = cache.entry("hits").and_upsert_with(|now| now.map_or(1, |n| n + 1))?;
        /// assert_eq!(counted, 2);
        /// let gone = cache.entry("hits").and_compute_with(|now| match now {
        ///     Some(n) if n >= 2 => ComputeOp::Remove,
        ///     _ => ComputeOp::Nop,
        /// })?;
        /// assert_eq!(gone, Computed::Removed(2));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn entry<'a, Q>(&'a self, key: &'a Q) -> EntryRef<'a, Q, K, V, S, W, P>
        where
            K: Borrow<Q>,
            Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        {
            EntryRef::new(self.cache(), self.pin_from(), self.$stripe(), key)
        }

        /// A clone of the value for `key`, not counted as a use (nor in the statistics) and
        /// never promoted.
        pub fn peek<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().peek_with(&self.$pin(), key, V::clone)
        }

        /// Whether `key` has a live entry (not counted as a use).
        pub fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().peek_with(&self.$pin(), key, |_| ()).is_some()
        }

        /// Stores `value` for `key` at `High` priority with the cache's default time to live,
        /// replacing any previous value and invalidating L1's copy, then evicts until the
        /// cache is within its capacity.
        ///
        /// # Errors
        /// [`InsertError::TooHeavy`], with the key and value, when the entry alone weighs more
        /// than the capacity; [`InsertError::NoClock`] when the cache has a default time to
        /// live and no clock (only possible without `std`).
        pub fn insert(&self, key: K, value: V) -> Result<(), InsertError<K, V>> {
            self.insert_with(key, value, InsertOptions::new())
        }

        /// Stores `value` for `key` with a priority, a time to live and a weight
        /// ([`InsertOptions`]); otherwise as [`insert`](Self::insert). A `Critical` entry is
        /// copied into L1 at once.
        ///
        /// ```
        /// use std::time::Duration;
        /// use stratacache::{Cache, InsertOptions, Priority};
        ///
        /// let cache: Cache<&str, u32> = Cache::builder().capacity(1_000).build()?;
        /// let critical = InsertOptions::new().priority(Priority::Critical);
        /// cache.insert_with("match:17", 3, critical)?;
        /// let brief = InsertOptions::new().priority(Priority::Low).time_to_live(Duration::from_secs(2));
        /// cache.insert_with("tooltip", 9, brief)?;
        /// assert_eq!(cache.get("match:17"), Some(3));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        /// As [`insert`](Self::insert); [`InsertError::NoClock`] for a time to live on a cache
        /// without a clock.
        pub fn insert_with(
            &self,
            key: K,
            value: V,
            options: InsertOptions,
        ) -> Result<(), InsertError<K, V>> {
            self.cache()
                .insert_in(&self.$pin(), self.$stripe(), key, value, options)
        }

        /// The value for `key`, or, on a miss, the value `init` makes, stored with the default
        /// options (moka's `get_with`). The key is borrowed: an owned one is made only on a
        /// miss. Concurrent callers that miss on the same key run `init` once: the others
        /// wait (parked under `std`, spinning then yielding without it) and get its value. If
        /// `init` panics, the panic reaches this caller, the waiters wake and one of them
        /// runs its own `init`. No lock and no L1 pin is held while `init` runs.
        ///
        /// A value too heavy to store is still returned (to every waiter).
        ///
        /// ```
        /// use std::sync::atomic::{AtomicUsize, Ordering};
        /// use stratacache::Cache;
        ///
        /// let cache: Cache<String, Vec<u8>> = Cache::builder().capacity(100).build()?;
        /// let loads = AtomicUsize::new(0);
        /// std::thread::scope(|s| {
        ///     for _ in 0..4 {
        ///         s.spawn(|| {
        ///             // A `&str` is enough to look up; the `String` key is made on the miss.
        ///             let mesh = cache.get_with("mesh:rock", || {
        ///                 loads.fetch_add(1, Ordering::Relaxed);
        ///                 vec![0; 64]
        ///             });
        ///             assert_eq!(mesh.len(), 64);
        ///         });
        ///     }
        /// });
        /// assert_eq!(loads.load(Ordering::Relaxed), 1, "one load for the concurrent misses");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn get_with<Q>(&self, key: &Q, init: impl FnOnce() -> V) -> V
        where
            K: Borrow<Q>,
            Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        {
            match self.try_get_with(key, || Ok::<V, Infallible>(init())) {
                Ok(value) => value,
                Err(never) => match *never {},
            }
        }

        /// [`get_with`](Self::get_with) with a fallible initialiser (moka's `try_get_with`). If
        /// `init` fails, nothing is stored and its error is returned, in an `Arc`, to this
        /// caller and to the callers waiting on it that expect the same error type (others
        /// start over, one of them running its own `init`).
        ///
        /// ```
        /// use stratacache::Cache;
        ///
        /// let cache: Cache<String, u32> = Cache::builder().capacity(100).build()?;
        /// let failed = cache.try_get_with("level-3", || "missing".parse::<u32>());
        /// assert!(failed.is_err());
        /// assert_eq!(cache.try_get_with("level-3", || "3".parse::<u32>()), Ok(3));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        /// The error of the `init` that ran for this miss.
        pub fn try_get_with<Q, E>(
            &self,
            key: &Q,
            init: impl FnOnce() -> Result<V, E>,
        ) -> Result<V, alloc::sync::Arc<E>>
        where
            K: Borrow<Q>,
            Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
            E: Send + Sync + 'static,
        {
            self.try_get_with_options(key, init, InsertOptions::new())
        }

        /// [`get_with`](Self::get_with) with an initialiser that may decline: `None` stores
        /// nothing and is returned to this caller and to the callers waiting on it.
        ///
        /// ```
        /// use stratacache::Cache;
        ///
        /// let cache: Cache<u32, String> = Cache::builder().capacity(100).build()?;
        /// let on_disk = |id: u32| (id < 10).then(|| format!("save {id}"));
        /// assert_eq!(cache.optionally_get_with(&99, || on_disk(99)), None);
        /// assert_eq!(cache.len(), 0, "a declined load stores nothing");
        /// assert_eq!(cache.optionally_get_with(&3, || on_disk(3)).as_deref(), Some("save 3"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn optionally_get_with<Q>(&self, key: &Q, init: impl FnOnce() -> Option<V>) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        {
            self.try_get_with(key, || init().ok_or(())).ok()
        }

        /// [`try_get_with`](Self::try_get_with) storing the loaded value with `options` (a
        /// priority, a time to live, a weight).
        ///
        /// # Errors
        /// The error of the `init` that ran for this miss.
        pub fn try_get_with_options<Q, E>(
            &self,
            key: &Q,
            init: impl FnOnce() -> Result<V, E>,
            options: InsertOptions,
        ) -> Result<V, alloc::sync::Arc<E>>
        where
            K: Borrow<Q>,
            Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
            E: Send + Sync + 'static,
        {
            self.cache()
                .get_or_try_insert_in(|| self.$pin(), self.$stripe(), key, options, init)
                .map(|(value, _)| value)
        }

        /// Keeps only the entries `keep` accepts: the others are removed (the listener sees
        /// each with [`RemovalCause::Removed`](crate::RemovalCause::Removed)), moka's
        /// `invalidate_entries_if` done at once. `keep` sees clones, one L2 shard's snapshot at
        /// a time, and runs with no lock held; an entry replaced or removed after `keep` saw it
        /// is left as it is now, and entries inserted meanwhile may not be seen. Returns how
        /// many entries it removed.
        ///
        /// ```
        /// use stratacache::Cache;
        ///
        /// let cache: Cache<u32, u32> = Cache::builder().capacity(100).build()?;
        /// for player in 0..10 {
        ///     cache.insert(player, player * 100)?; // score
        /// }
        /// // The round ends: drop every score below 500.
        /// assert_eq!(cache.retain(|_, &score| score >= 500), 5);
        /// assert_eq!((cache.get(&4), cache.get(&5)), (None, Some(500)));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
            let cache = self.cache();
            let mut removed = 0;
            for shard in 0..cache.l2.shard_count() {
                let entries = cache.snapshot(shard, &self.$pin());
                for (key, value, id) in entries {
                    if !keep(&key, &value) {
                        let hash = cache.hash_builder.hash_one(&key);
                        let pin = self.$pin();
                        let gone =
                            cache.remove_hashed(&pin, self.$stripe(), hash, &key, Some(id), |_| ());
                        removed += usize::from(gone.is_some());
                    }
                }
            }
            removed
        }

        /// Removes `key` from both tiers and returns a clone of its value (the listener sees
        /// it first, with [`RemovalCause::Removed`](crate::RemovalCause::Removed)); the entry
        /// itself is dropped once no reader can hold it.
        pub fn remove<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().remove_in(&self.$pin(), self.$stripe(), key)
        }

        /// Removes every entry (entries inserted while it runs may stay).
        pub fn clear(&self) {
            self.cache().clear_in(&self.$pin(), self.$stripe());
        }

        /// Removes every expired entry now, one L2 shard at a time, and returns how many.
        /// Expired entries are never returned anyway and the eviction hand reclaims them
        /// first; call this at a quiet point (between frames) to free their memory sooner.
        pub fn evict_expired(&self) -> usize {
            self.cache().evict_expired_in(&self.$pin(), self.$stripe())
        }

        /// Looks up every key under one pin of L1; the results come in the keys' order.
        pub fn get_many<'q, Q>(&self, keys: impl IntoIterator<Item = &'q Q>) -> Vec<Option<V>>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq + 'q,
        {
            let l1 = self.$pin();
            self.$caller(|stripe, sampler| {
                keys.into_iter()
                    .map(|key| self.cache().get_in(&l1, stripe, sampler, key))
                    .collect()
            })
        }

        /// Inserts every entry under one pin of L1. Entries that cannot be stored are handed
        /// back, in order, with why; an empty result means every entry was stored.
        pub fn insert_many(
            &self,
            entries: impl IntoIterator<Item = (K, V)>,
        ) -> Vec<InsertError<K, V>> {
            let l1 = self.$pin();
            let stripe = self.$stripe();
            entries
                .into_iter()
                .filter_map(|(key, value)| {
                    self.cache()
                        .insert_in(&l1, stripe, key, value, InsertOptions::new())
                        .err()
                })
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
    #[inline]
    fn cache(&self) -> &Shared<K, V, S, W, P> {
        &self.shared
    }

    #[inline]
    fn pin_l1(&self) -> l1::Guard<'_, K, Stamped<V>, ()> {
        self.shared.l1.pin()
    }

    fn pin_from(&self) -> PinFrom<'_, K, V> {
        PinFrom::ThreadLocal
    }

    #[inline]
    fn stripe(&self) -> usize {
        super::stats::thread_stripe()
    }

    #[inline]
    fn caller<R>(&self, f: impl FnOnce(usize, &Sampler) -> R) -> R {
        super::stats::with_thread_caller(f)
    }

    cache_operations!(pin_l1, stripe, caller);

    /// Loads up to `limit` of the persistent tier's newest values into memory (those a
    /// [`write_back`](Self::write_back) before the last shutdown left come first): a restart
    /// starts warm. Lookups and writes go on meanwhile (run it on a thread of its own); a
    /// key written in memory since is never overwritten. How many it loaded; 0 without a
    /// persistent tier.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("stratacache-warm-{}", std::process::id()));
    /// use stratacache::Cache;
    /// use stratacache::l3::Store;
    ///
    /// let cache: Cache<u64, u64> =
    ///     Cache::builder().capacity(1_000).build_persistent(Store::builder(&dir).open()?.0)?;
    /// let warming = {
    ///     let cache = cache.clone();
    ///     std::thread::spawn(move || cache.warm(1_000))
    /// };
    /// cache.insert(1, 10)?; // served while warming
    /// warming.join().unwrap();
    /// # drop(cache); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "persistent")]
    pub fn warm(&self, limit: usize) -> usize {
        self.shared.warm_in(&self.pin_l1(), self.stripe(), limit)
    }

    /// [`warm`](Self::warm) on a thread of its own, named `stratacache-warm`: the cache serves
    /// lookups and writes meanwhile. Join the handle for the count.
    ///
    /// # Errors
    /// The operating system's, when it cannot start a thread.
    #[cfg(feature = "persistent")]
    pub fn warm_in_background(
        &self,
        limit: usize,
    ) -> std::io::Result<std::thread::JoinHandle<usize>>
    where
        Self: Send + 'static,
    {
        let cache = self.clone();
        std::thread::Builder::new()
            .name(std::string::String::from("stratacache-warm"))
            .spawn(move || cache.warm(limit))
    }

    /// The entries, as clones of their keys and values, one L2 shard's snapshot at a time
    /// (weakly consistent, taking no lock: see [`Iter`]).
    ///
    /// ```
    /// use stratacache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().capacity(100).build()?;
    /// for key in 0..10 {
    ///     cache.insert(key, key * key)?;
    /// }
    /// let mut entries: Vec<(u32, u32)> = cache.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries[3], (3, 9));
    /// assert_eq!(entries.len(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S, W, P> {
        Iter::new(&self.shared, self.pin_from())
    }

    /// Pins L1 once for a batch of operations: see [`CacheFrame`].
    pub fn frame(&self) -> CacheFrame<'_, K, V, S, W, P> {
        CacheFrame {
            cache: &self.shared,
            l1: self.shared.l1.pin(),
            stripe: super::stats::thread_stripe(),
            sampler: self.shared.sampler(),
        }
    }

    /// Drops and frees what writes and promotions retired and no reader can still see (at most
    /// [`COLLECT_BATCH`](crate::l1::COLLECT_BATCH) L1 copies and as many L2 entries): see
    /// [`CacheHandle::collect`].
    pub fn collect(&self) {
        self.shared.quiet_point(&self.shared.l1.pin());
    }
}

/// One thread's access to a [`Cache`], without `std`'s thread-locals. `!Send`.
pub struct CacheHandle<'c, K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy>
{
    cache: &'c Shared<K, V, S, W, P>,
    l1: l1::Handle<'c, K, Stamped<V>, ()>,
    stripe: usize,
    sampler: Sampler,
}

impl<'c, K, V, S, W, P> CacheHandle<'c, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &'c Shared<K, V, S, W, P> {
        self.cache
    }

    #[inline]
    fn pin_l1(&self) -> l1::Guard<'c, K, Stamped<V>, ()> {
        self.l1.pin()
    }

    fn pin_from(&self) -> PinFrom<'_, K, V> {
        PinFrom::Handle(&self.l1)
    }

    #[inline]
    fn stripe(&self) -> usize {
        self.stripe
    }

    #[inline]
    fn caller<R>(&self, f: impl FnOnce(usize, &Sampler) -> R) -> R {
        f(self.stripe, &self.sampler)
    }

    cache_operations!(pin_l1, stripe, caller);

    /// The entries, as [`Cache::iter`] (weakly consistent: see [`Iter`]).
    pub fn iter(&self) -> Iter<'_, K, V, S, W, P> {
        Iter::new(self.cache, self.pin_from())
    }

    /// Pins L1 once for a batch of operations: see [`CacheFrame`].
    pub fn frame(&self) -> CacheFrame<'c, K, V, S, W, P> {
        CacheFrame {
            cache: self.cache,
            l1: self.l1.pin(),
            stripe: self.stripe,
            sampler: self.cache.sampler(),
        }
    }

    /// Drops and frees what writes and promotions retired (replaced, removed and evicted
    /// entries, displaced L1 copies) and no reader can still see: at most
    /// [`COLLECT_BATCH`](crate::l1::COLLECT_BATCH) of each tier's. Call it at a quiet point,
    /// such as between frames: their values' `Drop` runs here. Writes do a little of this
    /// after their own work; lookups never do.
    pub fn collect(&self) {
        self.cache.quiet_point(&self.l1.pin());
    }
}

/// A batch of operations under one pin of L1: a game loop's frame, or a request's worth of
/// lookups. Every operation of a [`Cache`] or a [`CacheHandle`] pins L1 for its own duration,
/// which costs one atomic read-modify-write; a frame pays it once, so its L1 hits write no
/// shared memory at all. `!Send`.
///
/// While a frame lives, L1 copies retired by any thread are not freed (reclamation waits for
/// every pinned reader), so keep frames short: end one per frame, not per level. Ending a
/// frame frees what has become reclaimable (as [`CacheHandle::collect`]). Nothing else changes: writes still invalidate L1 before they return, and a
/// [`get_with`](Self::get_with) inside a frame waits or loads with the
/// frame's pin held.
///
/// ```
/// use stratacache::Cache;
///
/// let cache: Cache<u32, u32> = Cache::builder().capacity(1_000).build()?;
/// let handle = cache.handle();
/// for frame_number in 0..3 {
///     let frame = handle.frame();
///     frame.insert(frame_number, frame_number * 10)?;
///     assert_eq!(frame.get(&0), Some(0));
/// } // each frame's pin ends here
/// handle.collect(); // a quiet point: free what the frames retired
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CacheFrame<'c, K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy>
{
    cache: &'c Shared<K, V, S, W, P>,
    l1: l1::Guard<'c, K, Stamped<V>, ()>,
    stripe: usize,
    sampler: Sampler,
}

impl<'c, K, V, S, W, P> CacheFrame<'c, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &'c Shared<K, V, S, W, P> {
        self.cache
    }

    #[inline]
    fn pin_l1(&self) -> &l1::Guard<'c, K, Stamped<V>, ()> {
        &self.l1
    }

    fn pin_from(&self) -> PinFrom<'_, K, V> {
        PinFrom::Frame(&self.l1)
    }

    #[inline]
    fn stripe(&self) -> usize {
        self.stripe
    }

    #[inline]
    fn caller<R>(&self, f: impl FnOnce(usize, &Sampler) -> R) -> R {
        f(self.stripe, &self.sampler)
    }

    cache_operations!(pin_l1, stripe, caller);

    /// The entries, as [`Cache::iter`] (weakly consistent: see [`Iter`]), under the frame's
    /// pin.
    pub fn iter(&self) -> Iter<'_, K, V, S, W, P> {
        Iter::new(self.cache, self.pin_from())
    }
}

impl<K, V, S, W, P: Policy> Drop for CacheFrame<'_, K, V, S, W, P> {
    fn drop(&mut self) {
        // No lock is held here: freeing what was retired runs its `Drop`.
        self.cache.quiet_point(&self.l1);
    }
}
