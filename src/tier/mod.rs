//! The tiered facade: a wait-free L1 in front of the sharded L2, kept consistent per key.
//!
//! # Data flow
//! - `get`: L1 (wait-free) → on a miss, the key's L2 shard under its read lock; after
//!   `promote_after` L2 hits the entry is copied into L1.
//! - `insert` / `remove`: the key's L2 shard under its write lock; the key's L1 copy is
//!   invalidated inside that locked section (or, for a `Critical` entry, replaced by a copy of
//!   the new value), and so is every L2 victim's.
//! - Whatever leaves the cache (victims, replaced and removed values, expired entries) is
//!   counted, shown to the eviction listener and dropped after every lock is released.
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
//! L1 only ever holds copies of entries that are in L2: L2 evictions invalidate them too. A
//! copy carries its entry's deadline, so an expired entry is never returned from either tier.

mod builder;
mod flight;
mod stats;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::convert::Infallible;
use core::fmt;
use core::hash::{BuildHasher, Hash};

pub use builder::CacheBuilder;
use flight::{Flights, Role};
pub use stats::CacheStats;
use stats::{Counters, Event};

use crate::clock::Clock;
use crate::entry::{InsertOptions, Priority, RemovalCause, Ttl};
use crate::error::InsertError;
use crate::hash::DefaultHashBuilder;
use crate::l1::{self, L1};
use crate::l2::shard::NEVER;
use crate::l2::table::{Displaced, StoreAs, Upper};
use crate::l2::{DefaultPolicy, Evicted, L2, Policy, UnitWeigher, Weigher};
use crate::sync::{AtomicU8, Ordering};

/// The eviction listener's type.
pub(crate) type Listener<K, V> = dyn Fn(&K, &V, RemovalCause) + Send + Sync;

/// An L1 copy: the value and its entry's deadline.
pub(crate) struct Stamped<V> {
    value: V,
    expires: u64,
}

/// A `Critical` entry's L1 copies, one per replica, made before any lock is taken: the first
/// inline, so one replica allocates nothing for them. Each is taken when placed in its
/// replica; one L1 had no memory for is put back, to be dropped after the locks.
struct Copies<K, V> {
    first: Option<(K, Stamped<V>)>,
    rest: Vec<Option<(K, Stamped<V>)>>,
}

impl<K, V> FromIterator<(K, Stamped<V>)> for Copies<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, Stamped<V>)>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        Self {
            first: iter.next(),
            rest: iter.map(Some).collect(),
        }
    }
}

impl<K, V> Copies<K, V> {
    /// The key the copies are of.
    fn key(&self) -> &K {
        &self
            .first
            .as_ref()
            .expect("a copy per replica, at least one")
            .0
    }

    /// Places copy `r` with `place(r, key, copy)`; a copy handed back stays here.
    fn place(
        &mut self,
        mut place: impl FnMut(usize, K, Stamped<V>) -> Result<(), (K, Stamped<V>)>,
    ) {
        let slots = core::iter::once(&mut self.first).chain(self.rest.iter_mut());
        for (replica, slot) in slots.enumerate() {
            if let Some((key, copy)) = slot.take() {
                *slot = place(replica, key, copy).err();
            }
        }
    }
}

/// What an insertion's locked part leaves for its reporting part (see `Cache::store_in`).
struct Stored<K, V> {
    displaced: Displaced<K, V>,
    /// The clock when the entry was stored (0 while no entry can expire).
    now: u64,
    /// L1 copies that could not be placed, dropped with this.
    _declined: Option<Copies<K, V>>,
}

/// Frees L1 copies whose grace period is over when dropped: at the end of a write, after its
/// locks are released and what it displaced was reported (also when the listener panics).
struct Reclaim<'a, K, V>(&'a L1<K, Stamped<V>, ()>);

impl<K, V> Drop for Reclaim<'_, K, V> {
    fn drop(&mut self) {
        self.0.reclaim(WRITE_RECLAIM);
    }
}

/// The most retired L1 copies a write frees after its own work: more than a write retires
/// (one per replica, and one per victim with a copy), so writers keep ahead of the garbage.
const WRITE_RECLAIM: usize = 64;

/// Retired L1 copies that stop promotions at least (see `Cache::promotion_budget`).
const RETIRED_FLOOR: usize = 1024;

/// Keeps L1 in step with L2 evictions, under the evicting shard's write lock.
struct L1Sync<'g, 'c, K, V> {
    l1: &'g l1::Guard<'c, K, Stamped<V>, ()>,
    promote_after: u8,
}

impl<K: Eq, V> Upper<K, V> for L1Sync<'_, '_, K, V> {
    fn evicted(&mut self, victim: &Evicted<K, V>) {
        // Fewer hits than promotion needs: never copied (the count only grows).
        if victim.hits >= self.promote_after {
            self.l1.remove_hashed(victim.hash, &victim.key);
        }
    }

    fn used(&mut self, hash: u64, key: &K, hits: u8) -> bool {
        hits >= self.promote_after && self.l1.take_reference_hashed(hash, key)
    }
}

/// The CPUs available (4 without `std`).
pub(crate) fn cpus() -> usize {
    #[cfg(feature = "std")]
    return std::thread::available_parallelism().map_or(4, |n| n.get());
    #[cfg(not(feature = "std"))]
    return 4;
}

/// A concurrent, capacity-bounded cache: a wait-free L1 of hot copies in front of a sharded
/// CLOCK L2, with priorities, time to live, single-flight loading, an eviction listener and
/// statistics.
///
/// - `get` looks in L1 first (wait-free), then in the key's L2 shard under its read lock, and
///   copies entries into L1 after [`promote_after`](CacheBuilder::promote_after) L2 hits.
/// - `insert` and `remove` change L2 under the shard's write lock and invalidate L1's copy
///   inside that section; promotions happen under the read lock. So, per key, the tiers are
///   linearizable: after `insert` or `remove` returns, every later `get` returns that value, a
///   newer one, or a miss, never an older one (a loom model checks the promotion race).
/// - [`insert_with`](Self::insert_with) takes a [`Priority`], a time to live and a weight:
///   `Critical` entries go to L1 at once and are evicted last (see [`Priority`]).
/// - [`get_or_insert_with`](Self::get_or_insert_with) runs the initialiser once for
///   concurrent misses on one key.
/// - No lock is held while user code runs (weigher, listener, initialiser, `Drop`), and a
///   panic in any of them leaves the cache consistent and usable.
///
/// ```
/// use stratacache::Cache;
///
/// let cache: Cache<u64, String> = Cache::builder().capacity(10_000).build()?;
/// cache.insert(7, "seven".to_string())?;
/// assert_eq!(cache.get(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.remove(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.get(&7), None);
/// let loaded = cache.get_or_insert_with(8, || "eight".to_string());
/// assert_eq!(loaded, "eight");
/// assert_eq!(cache.stats().misses, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    l1: L1<K, Stamped<V>, ()>,
    /// Whether L1 takes copies at all ([`CacheBuilder::l1_entries`] 0 turns it off).
    l1_on: bool,
    /// Which L1 replica a thread reads.
    placement: builder::Placement,
    l2: L2<K, V, (), W, P>,
    hash_builder: S,
    promote_after: u8,
    clock: Option<Box<dyn Clock>>,
    /// The default time to live in nanoseconds.
    default_ttl: Option<u64>,
    /// 1 once an entry may have a deadline: until then insertions do not read the clock.
    expiring: AtomicU8,
    listener: Option<Box<Listener<K, V>>>,
    stats: Counters,
    flights: Flights<K, V>,
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

    /// The arenas the cache's memory comes from (one, or one per NUMA node; none on the global
    /// allocator), for their per-size-class accounting
    /// ([`Arena::class_stats`](stratacache_alloc::Arena::class_stats)); their totals are in
    /// [`CacheStats::arena`].
    pub fn arenas(&self) -> &[alloc::sync::Arc<stratacache_alloc::Arena>] {
        self.l2.arenas()
    }

    /// How many L1 replicas the cache keeps: one per NUMA node with
    /// [`per_socket_l1`](CacheBuilder::per_socket_l1), else one.
    pub fn l1_replicas(&self) -> usize {
        self.l1.replicas()
    }

    /// How many hot copies L1 holds (in each replica); 0 when L1 is off.
    pub fn l1_capacity(&self) -> usize {
        if self.l1_on { self.l1.capacity() } else { 0 }
    }

    /// The total weight of the entries (L1 holds copies and adds none).
    pub fn weighted_size(&self) -> u64 {
        self.l2.weighted_size()
    }

    /// The number of entries (a moment's view; takes every L2 shard's read lock in turn).
    /// Expired entries not yet reclaimed are counted.
    pub fn len(&self) -> usize {
        self.l2.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.l2.is_empty()
    }

    /// A snapshot of the statistics: per-tier hits, misses, insertions, promotions, entries
    /// gone by cause, and the memory the cache's structures hold. Sums every counter stripe
    /// and takes every L2 shard's read lock in turn; scans L1's sets (`O(L1 capacity)`).
    pub fn stats(&self) -> CacheStats {
        let mut stats = self.stats.snapshot();
        stats.retired = self.l1.retired() as u64;
        stats.entries = self.len() as u64;
        stats.weighted_size = self.weighted_size();
        stats.memory_bytes =
            (core::mem::size_of::<Self>() + self.l1.heap_bytes() + self.l2.heap_bytes()) as u64;
        stats.arena = self
            .l2
            .arenas()
            .iter()
            .map(|arena| arena.stats())
            .reduce(|a, b| stratacache_alloc::ArenaStats {
                reserved: a.reserved + b.reserved,
                carved: a.carved + b.carved,
                in_use: a.in_use + b.in_use,
                limit: a.limit.zip(b.limit).map(|(x, y)| x + y),
            });
        stats
    }

    /// Registers the calling thread: a handle works without `std` (and is a little faster
    /// than the thread-local one the plain methods use). `!Send`: one per thread.
    pub fn handle(&self) -> CacheHandle<'_, K, V, S, W, P> {
        CacheHandle {
            cache: self,
            l1: self.l1.handle_on(if self.l1.replicas() > 1 {
                self.placement.replica_of_current_thread()
            } else {
                0
            }),
            stripe: self.stats.assign(),
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.clock.as_ref().map_or(0, |clock| clock.now_nanos())
    }

    /// The clock now if an entry may have a deadline, else `None` (no clock read): for
    /// lookups, which read it before taking a lock (the clock is user code).
    #[inline]
    fn now_if_expiring(&self) -> Option<u64> {
        // Relaxed: a hint, set before any entry with a deadline is stored; a lookup that
        // finds such an entry without having seen it reads the clock after the lock.
        (self.expiring.load(Ordering::Relaxed) != 0).then(|| self.now())
    }

    fn notify(&self, key: &K, value: &V, cause: RemovalCause) {
        if let Some(listener) = &self.listener {
            listener(key, value, cause);
        }
    }

    /// The deadline for an entry inserted with `ttl`, and the clock now (0 while no entry can
    /// expire); `None` if a deadline is needed and there is no clock.
    fn deadline(&self, ttl: Ttl) -> Option<(u64, u64)> {
        let ttl = match ttl {
            Ttl::Never => None,
            Ttl::CacheDefault => self.default_ttl,
            Ttl::For(ttl) => Some(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX)),
        };
        let Some(clock) = &self.clock else {
            // No clock: only entries without a deadline can be stored, and none can expire.
            return ttl.is_none().then_some((NEVER, 0));
        };
        if ttl.is_some() {
            // Relaxed: a hint that makes later insertions read the clock.
            self.expiring.store(1, Ordering::Relaxed);
        }
        // Relaxed: as above.
        let now = if self.expiring.load(Ordering::Relaxed) == 0 {
            0
        } else {
            clock.now_nanos()
        };
        let expires = match ttl {
            None => NEVER,
            Some(ttl) => now.saturating_add(ttl).min(NEVER - 1),
        };
        Some((expires, now))
    }
}

/// The operations, over an L1 guard and a statistics stripe from either front.
impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn get_in<Q>(&self, l1: &l1::Guard<'_, K, Stamped<V>, ()>, stripe: usize, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        self.get_hashed(l1, stripe, hash, key)
    }

    #[inline]
    fn get_hashed<Q>(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        stripe: usize,
        hash: u64,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        if self.l1_on
            && let Some(copy) = l1.get_hashed(hash, key, true)
            && (copy.expires == NEVER || copy.expires > self.now())
        {
            self.stats.add(stripe, Event::L1Hit, 1);
            return Some(copy.value.clone());
        }
        // The clock (user code) is read before the lock is taken.
        let now = self.now_if_expiring();
        let shard = self.l2.shard_of(hash).read();
        let Some(found) = shard.lookup(hash, key, self.promote_after) else {
            drop(shard);
            self.stats.add(stripe, Event::Miss, 1);
            return None;
        };
        if found.expires != NEVER {
            let expires = found.expires;
            let Some(now) = now else {
                // This thread had not seen the hint yet: read the clock after the lock, and
                // skip the promotion this once.
                let value = found.value.clone();
                drop(shard);
                let now = self.now();
                if expires > now {
                    self.stats.add(stripe, Event::L2Hit, 1);
                    return Some(value);
                }
                drop(value);
                self.stats.add(stripe, Event::Miss, 1);
                self.reclaim_expired(l1, stripe, hash, key, now);
                return None;
            };
            if expires <= now {
                drop(shard);
                self.stats.add(stripe, Event::Miss, 1);
                self.reclaim_expired(l1, stripe, hash, key, now);
                return None;
            }
        }
        // Under the shard's read lock: see the module docs. L1 may decline the copy (its set
        // is full of recently used copies), and promotions must pay for themselves.
        let mut declined = None;
        let promoted = found.hits >= self.promote_after
            && self.l1_on
            && self.promotion_budget(stripe)
            && l1
                .insert_admitted_hashed(hash, || {
                    let copy = Stamped {
                        value: found.value.clone(),
                        expires: found.expires,
                    };
                    (found.key.clone(), copy)
                })
                .unwrap_or_else(|copy| {
                    declined = Some(copy);
                    false
                });
        let value = found.value.clone();
        drop(shard);
        // A copy L1 had no memory for is dropped here, under no lock.
        drop(declined);
        self.stats.add(stripe, Event::L2Hit, 1);
        if promoted {
            self.stats.add(stripe, Event::Promotion, 1);
        }
        Some(value)
    }

    /// Whether this thread may promote now. A promotion costs an allocation, an L1 eviction and
    /// a deferred free; it pays off only through later L1 hits. So each thread may promote
    /// at most once per two of its L1 hits, beyond a first allowance of one L1 capacity (to
    /// fill it). A skewed workload earns far more than it spends; one with no hot set, where
    /// every copy would be evicted before its first L1 hit, stops churning L1 after the
    /// allowance.
    ///
    /// Every promotion also retires the copy it displaces; while more retired copies wait to
    /// be freed than L1 holds (nobody wrote, collected or ended a frame lately), promotions
    /// stop, so the memory they hold stays bounded.
    #[inline]
    fn promotion_budget(&self, stripe: usize) -> bool {
        let spent = self.stats.get(stripe, Event::Promotion);
        let earned = self.stats.get(stripe, Event::L1Hit) / 2 + self.l1.capacity();
        spent < earned && self.l1.retired() < self.l1.capacity().max(RETIRED_FLOOR)
    }

    /// Removes `key` from both tiers if it has expired by `now`.
    fn reclaim_expired<Q>(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        stripe: usize,
        hash: u64,
        key: &Q,
        now: u64,
    ) where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let expired = self.l2.remove_expired_hashed(hash, key, now, || {
            l1.remove_hashed(hash, key);
        });
        if let Some((key, value)) = expired {
            self.stats.add(stripe, Event::Expired, 1);
            self.notify(&key, &value, RemovalCause::Expired);
        }
    }

    /// Applies `f` to the live value for `key` without counting a use or promoting: L1's copy
    /// if it has one, else L2's (under the shard's read lock).
    fn peek_with<Q, R>(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        if self.l1_on
            && let Some(copy) = l1.get_hashed(hash, key, false)
            && (copy.expires == NEVER || copy.expires > self.now())
        {
            return Some(f(&copy.value));
        }
        // The clock (user code) is read before the lock is taken; if the entry has a deadline
        // and this thread had not seen the hint yet, once more with the clock read.
        let mut now = self.now_if_expiring();
        loop {
            let shard = self.l2.shard_of(hash).read();
            let (value, expires) = shard.peek_entry(hash, key)?;
            match now {
                _ if expires == NEVER => return Some(f(value)),
                Some(now) => return (expires > now).then(|| f(value)),
                None => {
                    drop(shard);
                    now = Some(self.now());
                }
            }
        }
    }

    fn insert_in(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        stripe: usize,
        key: K,
        value: V,
        options: InsertOptions,
    ) -> Result<(), InsertError<K, V>> {
        let stored = self.store_in(l1, key, value, options)?;
        self.report(stripe, stored)
    }

    /// An insertion's locked part: the entry stored in L2, L1 kept in step, victims taken.
    /// Nothing of what it displaced has been shown to the listener or dropped yet: that is
    /// [`report`](Self::report)'s part, which runs user code, so a `get_or_insert_with` leader
    /// settles its flight between the two.
    fn store_in(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        key: K,
        value: V,
        options: InsertOptions,
    ) -> Result<Stored<K, V>, InsertError<K, V>> {
        let Some((expires, now)) = self.deadline(options.ttl) else {
            return Err(InsertError::NoClock { key, value });
        };
        let hash = self.hash_builder.hash_one(&key);
        // A Critical entry's L1 copies are made before any lock is taken (cloning is user code).
        // With per-socket replicas, one copy per replica.
        let mut copies = (self.l1_on && options.priority == Priority::Critical).then(|| {
            (0..self.l1.replicas())
                .map(|_| {
                    let stamped = Stamped {
                        value: value.clone(),
                        expires,
                    };
                    (key.clone(), stamped)
                })
                .collect::<Copies<K, V>>()
        });
        let how = StoreAs {
            weight: options.weight,
            priority: options.priority,
            expires,
            now,
        };
        let displaced = self.l2.insert_hashed(
            hash,
            key,
            value,
            how,
            // Under the write lock, like every L1 change: see the module docs. L1 only holds
            // copies of entries in L2, so a new key has no copy to invalidate.
            |shard, replaced| match copies.as_mut() {
                Some(copies) => {
                    shard.saturate_hits(hash, copies.key());
                    // Its count now says "may have a copy", so its eviction invalidates it.
                    copies.place(|replica, key, stamped| {
                        l1.insert_at_hashed(replica, hash, key, stamped).map(drop)
                    });
                }
                None => {
                    if let Some(key) = replaced {
                        l1.remove_hashed(hash, key);
                    }
                }
            },
            &mut L1Sync {
                l1,
                promote_after: self.promote_after,
            },
        )?;
        Ok(Stored {
            displaced,
            now,
            // Copies L1 declined (no memory), to drop after the locks.
            _declined: copies,
        })
    }

    /// An insertion's reporting part: statistics, the listener (for the replaced value and
    /// each victim), then the drop of all of it, and the reclamation of L1 copies retired by
    /// this and other writes (their `Drop` runs here). Holds no lock.
    fn report(&self, stripe: usize, stored: Stored<K, V>) -> Result<(), InsertError<K, V>> {
        // Reclaims even if the listener panics, after what the insertion displaced is dropped.
        let _reclaim = Reclaim(&self.l1);
        let Stored { displaced, now, .. } = stored;
        let refused = displaced.refused.is_some();
        if !refused {
            self.stats.add(stripe, Event::Insert, 1);
        }
        // An insertion over an entry whose time had run out (not yet reclaimed) ends that
        // entry by expiry, not replacement.
        let replaced_cause = displaced.replaced.as_ref().map(|&(_, _, old_expires)| {
            if old_expires <= now && old_expires != NEVER {
                RemovalCause::Expired
            } else {
                RemovalCause::Replaced
            }
        });
        match replaced_cause {
            Some(RemovalCause::Expired) => self.stats.add(stripe, Event::Expired, 1),
            Some(_) => self.stats.add(stripe, Event::Replaced, 1),
            None => {}
        }
        for victim in displaced.victims.iter() {
            let event = match victim.cause {
                RemovalCause::Expired => Event::Expired,
                _ => Event::EvictedCapacity,
            };
            self.stats.add(stripe, event, 1);
        }
        if self.listener.is_some() {
            if let (Some((key, old, _)), Some(cause)) = (&displaced.replaced, replaced_cause) {
                self.notify(key, old, cause);
            }
            for victim in displaced.victims.iter() {
                self.notify(&victim.key, &victim.value, victim.cause);
            }
        }
        match displaced.refused {
            Some((key, value)) => Err(InsertError::OutOfMemory { key, value }),
            None => Ok(()),
        }
    }

    fn remove_in<Q>(
        &self,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
        stripe: usize,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        let _reclaim = Reclaim(&self.l1);
        let (key, value) = self.l2.remove_hashed(hash, key, || {
            l1.remove_hashed(hash, key);
        })?;
        self.stats.add(stripe, Event::Removed, 1);
        self.notify(&key, &value, RemovalCause::Removed);
        Some(value)
    }

    fn clear_in(&self, l1: &l1::Guard<'_, K, Stamped<V>, ()>, stripe: usize) {
        let _reclaim = Reclaim(&self.l1);
        self.l2.clear_with(
            |taken| {
                // The stored hashes: no user code (`Hash`) runs under the shard lock.
                for (hash, key, _) in taken {
                    l1.remove_hashed(*hash, key);
                }
            },
            |taken| {
                self.stats.add(stripe, Event::Removed, taken.len());
                for (_, key, value) in taken {
                    self.notify(key, value, RemovalCause::Removed);
                }
            },
        );
    }

    fn evict_expired_in(&self, l1: &l1::Guard<'_, K, Stamped<V>, ()>, stripe: usize) -> usize {
        // Relaxed: the flag is a hint; an entry stored with a deadline set it first.
        if self.expiring.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let now = self.now();
        let mut count = 0;
        self.l2.drain_expired(
            now,
            |expired| {
                for entry in expired {
                    l1.remove_hashed(entry.hash, &entry.key);
                }
            },
            |expired| {
                count += expired.len();
                self.stats.add(stripe, Event::Expired, expired.len());
                for entry in expired {
                    self.notify(&entry.key, &entry.value, RemovalCause::Expired);
                }
            },
        );
        count
    }

    /// `get_or_insert_with`'s core: a hit, or the value of the one initialiser run for
    /// concurrent misses on `key`. `pin` is called for each step, so no L1 pin is held while
    /// the initialiser runs or while waiting for it.
    ///
    /// No user code runs while this caller's flight is pending, but the initialiser: the pin
    /// for the re-check is taken before the flight list's lock (pins never run user code
    /// anyway: see the L1's reclamation), and the leader settles its flight once the value is
    /// stored, before the listener hears of what the insertion displaced and before that is
    /// dropped. A listener or a value's `Drop` may call back into the cache, even for this
    /// key, without waiting on a flight that waits on it.
    fn get_or_try_insert_in<'c, E, G>(
        &'c self,
        pin: impl Fn() -> G,
        stripe: usize,
        key: K,
        options: InsertOptions,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        G: Borrow<l1::Guard<'c, K, Stamped<V>, ()>>,
    {
        let hash = self.hash_builder.hash_one(&key);
        let mut init = Some(init);
        loop {
            let role = {
                let l1 = pin();
                if let Some(value) = self.get_hashed(l1.borrow(), stripe, hash, &key) {
                    return Ok(value);
                }
                self.flights
                    .join_or_lead(hash, &key, || self.peek_with(l1.borrow(), &key, V::clone))
            };
            match role {
                Role::Found(value) => return Ok(value),
                Role::Join(flight) => {
                    if let Some(value) = flight::wait(&flight) {
                        return Ok(value);
                    }
                    // The leader gave up: start over (perhaps as the next leader).
                }
                Role::Lead(leading) => {
                    let init = init
                        .take()
                        .expect("a caller leads at most once: it returns");
                    // A panic or an error drops `leading`, which wakes the waiters.
                    let value = init()?;
                    let stored = self.store_in(pin().borrow(), key, value.clone(), options);
                    leading.finish(value.clone());
                    // A refused insertion (too heavy, no clock) still hands the value out.
                    match stored {
                        Ok(stored) => drop(self.report(stripe, stored)),
                        Err(refused) => drop(refused),
                    }
                    return Ok(value);
                }
            }
        }
    }
}

macro_rules! cache_operations {
    ($pin:ident, $stripe:ident) => {
        /// A clone of the value for `key`: from L1 if it holds a live copy (wait-free), else
        /// from L2, where enough hits copy it into L1. Expired entries are never returned (the
        /// lookup that finds one reclaims it).
        pub fn get<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: ?Sized + Hash + Eq,
        {
            self.cache().get_in(&self.$pin(), self.$stripe(), key)
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
        /// options. Concurrent callers that miss on the same key run `init` once: the others
        /// wait (parked under `std`, spinning then yielding without it) and get its value. If
        /// `init` panics, the panic reaches this caller, the waiters wake and one of them
        /// runs its own `init`. No lock and no L1 pin is held while `init` runs.
        ///
        /// A value too heavy to store is still returned (to every waiter).
        pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
            let cache = self.cache();
            let loaded = cache.get_or_try_insert_in(
                || self.$pin(),
                self.$stripe(),
                key,
                InsertOptions::new(),
                || Ok::<V, Infallible>(init()),
            );
            match loaded {
                Ok(value) => value,
                Err(never) => match never {},
            }
        }

        /// [`get_or_insert_with`](Self::get_or_insert_with) with a fallible initialiser and
        /// [`InsertOptions`] for the stored entry. If `init` fails, its error is returned to
        /// this caller and nothing is stored; waiting callers start over, and one of them runs
        /// its own `init`.
        ///
        /// # Errors
        /// The error of this caller's `init`.
        pub fn try_get_or_insert_with<E>(
            &self,
            key: K,
            options: InsertOptions,
            init: impl FnOnce() -> Result<V, E>,
        ) -> Result<V, E> {
            self.cache()
                .get_or_try_insert_in(|| self.$pin(), self.$stripe(), key, options, init)
        }

        /// Removes `key` from both tiers and returns its value (the listener sees it first,
        /// with [`RemovalCause::Removed`]).
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
            let stripe = self.$stripe();
            keys.into_iter()
                .map(|key| self.cache().get_in(&l1, stripe, key))
                .collect()
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
    fn cache(&self) -> &Self {
        self
    }

    #[inline]
    fn pin_l1(&self) -> l1::Guard<'_, K, Stamped<V>, ()> {
        self.l1.pin()
    }

    #[inline]
    fn stripe(&self) -> usize {
        stats::thread_stripe()
    }

    cache_operations!(pin_l1, stripe);

    /// Pins L1 once for a batch of operations: see [`CacheFrame`].
    pub fn frame(&self) -> CacheFrame<'_, K, V, S, W, P> {
        CacheFrame {
            cache: self,
            l1: self.l1.pin(),
            stripe: stats::thread_stripe(),
        }
    }

    /// Drops and frees L1 copies that were retired (by writes and promotions) and that no
    /// reader can still see, at most [`COLLECT_BATCH`](crate::l1::COLLECT_BATCH): see
    /// [`CacheHandle::collect`].
    pub fn collect(&self) {
        self.l1.pin().flush();
    }
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
pub struct CacheHandle<'c, K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy>
{
    cache: &'c Cache<K, V, S, W, P>,
    l1: l1::Handle<'c, K, Stamped<V>, ()>,
    stripe: usize,
}

impl<'c, K, V, S, W, P> CacheHandle<'c, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &'c Cache<K, V, S, W, P> {
        self.cache
    }

    #[inline]
    fn pin_l1(&self) -> l1::Guard<'c, K, Stamped<V>, ()> {
        self.l1.pin()
    }

    #[inline]
    fn stripe(&self) -> usize {
        self.stripe
    }

    cache_operations!(pin_l1, stripe);

    /// Pins L1 once for a batch of operations: see [`CacheFrame`].
    pub fn frame(&self) -> CacheFrame<'c, K, V, S, W, P> {
        CacheFrame {
            cache: self.cache,
            l1: self.l1.pin(),
            stripe: self.stripe,
        }
    }

    /// Drops and frees L1 copies retired by this thread and others that no reader can still
    /// see (at most [`COLLECT_BATCH`](crate::l1::COLLECT_BATCH)). Call it at a quiet point,
    /// such as between frames: their values' `Drop` runs here. Writes do a little of this
    /// after their own work; lookups never do.
    pub fn collect(&self) {
        self.l1.collect();
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
/// [`get_or_insert_with`](Self::get_or_insert_with) inside a frame waits or loads with the
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
    cache: &'c Cache<K, V, S, W, P>,
    l1: l1::Guard<'c, K, Stamped<V>, ()>,
    stripe: usize,
}

impl<'c, K, V, S, W, P> CacheFrame<'c, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    fn cache(&self) -> &'c Cache<K, V, S, W, P> {
        self.cache
    }

    #[inline]
    fn pin_l1(&self) -> &l1::Guard<'c, K, Stamped<V>, ()> {
        &self.l1
    }

    #[inline]
    fn stripe(&self) -> usize {
        self.stripe
    }

    cache_operations!(pin_l1, stripe);
}

impl<K, V, S, W, P: Policy> Drop for CacheFrame<'_, K, V, S, W, P> {
    fn drop(&mut self) {
        // No lock is held here: freeing copies may run their `Drop`.
        self.l1.flush();
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
