//! The tiered facade: a wait-free L1 of hot copies in front of the sharded L2, kept
//! consistent per key.
//!
//! # Data flow
//! - `get`: L1 (wait-free) → on a miss, the key's L2 shard, read in place without a lock;
//!   after `promote_after` L2 hits the entry is copied into L1 (once its copy has left L1, on
//!   one in `promote_after / 2` of the thread's L2 hits: see `promotes_again`). Either way the
//!   hit is recorded for the L2 policy in the reader's own ring (see `l2::buffer`).
//! - `insert` / `remove`: the key's L2 shard under its writer lock; the key's L1 copy is
//!   invalidated inside that locked section (or, for a `Critical` entry, replaced by a copy of
//!   the new value), and so is every L2 victim's.
//! - Whatever leaves the cache (victims, replaced and removed values, expired entries) stays
//!   readable until no reader can hold it: the listener sees it after every lock is released,
//!   and it is dropped at a quiet point (the end of a write, a frame, `collect`), never inside
//!   a lookup.
//!
//! # Consistency (DESIGN §9)
//! Per key, the two tiers are linearizable: after `insert` or `remove` returns, every later
//! `get` on any thread returns that value, a newer one, or a miss, never an older one.
//!
//! The hard case is a promotion racing a write: a reader copies the value it found in L2 into
//! L1 while a writer replaces or removes the key. L2 readers take no lock, so the promotion
//! itself does: the reader takes the shard's writer lock (only if free: a promotion is never
//! worth waiting for), checks that the entry it read is still the one indexed, and copies it
//! into L1 under the lock. Writers invalidate L1 under the same lock. Every L1 change for a key
//! is thus ordered by that key's shard lock: a promotion either completes before the write's
//! invalidation (which then removes the copy) or sees the write (and copies nothing). The loom
//! model `promotion_vs_write` checks exactly this.
//!
//! L1 only ever holds copies of entries that are in L2: L2 evictions invalidate them too. A
//! copy carries its entry's deadline, so an expired entry is never returned from either tier.

#[cfg(all(feature = "async", not(loom)))]
pub(crate) mod awaited;
mod builder;
mod compute;
#[cfg(feature = "metrics")]
mod export;
pub(crate) mod flight;
mod fronts;
mod health;
mod iter;
mod ops;
#[cfg(feature = "persistent")]
mod persist;
mod raw;
mod read_through;
mod stats;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

pub use builder::CacheBuilder;
pub use compute::{ComputeOp, Computed, EntryRef, Fetched};
use flight::Flights;
pub use fronts::{CacheFrame, CacheHandle};
pub use health::{Concern, Health, HealthThresholds};
pub use iter::Iter;
pub use stats::CacheStats;
use stats::Counters;

use crate::clock::Clock;
use crate::entry::{RemovalCause, Ttl};
use crate::hash::DefaultHashBuilder;
use crate::l1::{self, L1};
use crate::l2::{DefaultPolicy, NEVER, Policy, Table, Tiers, UnitWeigher};
use crate::sync::{AtomicU8, Ordering};

/// The eviction listener's type.
pub(crate) type Listener<K, V> = dyn Fn(&K, &V, RemovalCause) + Send + Sync;

/// An L1 copy: the value and its entry's deadline.
pub(crate) struct Stamped<V> {
    value: V,
    expires: u64,
}

/// The part of a key's hash L1 uses: the low 32 bits, the ones L2 keeps (its shards take the
/// high ones to choose a shard).
#[inline]
fn l1_hash(hash: u64) -> u64 {
    hash & 0xFFFF_FFFF
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

/// Keeps L1 (and the persistent tier, if any) in step with what changes in L2, under the
/// shard's writer lock.
struct TierSync<'g, 'c, K, V> {
    l1: &'g l1::Guard<'c, K, Stamped<V>, ()>,
    promote_after: u8,
    #[cfg(feature = "persistent")]
    below: Option<persist::Below<'g, K, V>>,
}

impl<K, V> TierSync<'_, '_, K, V> {
    /// The last removal record this write queued in the persistent tier, if any.
    fn ticket(&self) -> Option<u64> {
        #[cfg(feature = "persistent")]
        return self.below.as_ref().and_then(|below| below.ticket);
        #[cfg(not(feature = "persistent"))]
        None
    }
}

impl<K: Eq, V> Tiers<K, V> for TierSync<'_, '_, K, V> {
    #[cfg(feature = "persistent")]
    fn spilled(&mut self, key: &K, value: &V, expires: u64) {
        if let Some(below) = self.below.as_mut() {
            below.spilled(key, value, expires);
        }
    }

    #[cfg(feature = "persistent")]
    fn written(&mut self, key: &K) {
        if let Some(below) = self.below.as_mut() {
            below.written(key);
        }
    }

    #[cfg(feature = "persistent")]
    fn absent<Q>(&mut self, hash: u64, key: &Q)
    where
        K: core::borrow::Borrow<Q>,
        Q: ?Sized + Eq,
    {
        if let Some(below) = self.below.as_mut() {
            below.absent(hash, key);
        }
    }

    fn evicted(&mut self, hash: u32, key: &K, hits: u8) {
        // Fewer hits than promotion needs: never copied (the count only grows, and a Critical
        // copy saturates it).
        if hits >= self.promote_after {
            self.l1.remove_hashed(u64::from(hash), key);
        }
    }

    fn used(&mut self, hash: u32, key: &K, hits: u8) -> bool {
        hits >= self.promote_after && self.l1.take_reference_hashed(u64::from(hash), key)
    }
}

/// Frees what writes retired, when dropped: at the end of a write, after its locks are
/// released and what it displaced was reported (also when the listener panics).
struct Reclaim<'a, K, V, S, W, P: Policy>(&'a Shared<K, V, S, W, P>);

impl<K, V, S, W, P: Policy> Drop for Reclaim<'_, K, V, S, W, P> {
    fn drop(&mut self) {
        // Usually nothing is ready: say so before asking the thread whether it unwinds.
        if !self.0.l1.has_ready() && !crate::l2::Table::<K, V, W, P>::may_wait_for_drop() {
            return;
        }
        // Not while a panic (the listener's) unwinds: a `Drop` that panicked then would abort.
        #[cfg(feature = "std")]
        if std::thread::panicking() {
            return;
        }
        self.0.reclaim(WRITE_RECLAIM);
    }
}

/// The most retired L1 copies, and L2 entries, a write frees after its own work: more than a
/// write retires, so writers keep ahead of the garbage.
const WRITE_RECLAIM: usize = 64;

/// Retired L1 copies that stop promotions at least (see `Cache::promotion_budget`).
const RETIRED_FLOOR: usize = 1024;

pub(crate) fn cpus() -> usize {
    #[cfg(feature = "std")]
    return std::thread::available_parallelism().map_or(4, |n| n.get());
    #[cfg(not(feature = "std"))]
    return 4;
}

/// A concurrent, capacity-bounded cache: a wait-free L1 of hot copies in front of a sharded
/// L2 evicting by W-TinyLFU, with priorities, time to live, single-flight loading, an eviction
/// listener and statistics.
///
/// - `get` looks in L1 first (wait-free), then in the key's L2 shard, without a lock, and
///   copies entries into L1 after [`promote_after`](CacheBuilder::promote_after) L2 hits.
/// - `insert` and `remove` change L2 under the shard's writer lock and invalidate L1's copy
///   inside that section; promotions take the same lock. So, per key, the tiers are
///   linearizable: after `insert` or `remove` returns, every later `get` returns that value, a
///   newer one, or a miss, never an older one (a loom model checks the promotion race).
/// - `get` clones the value: store large values behind an `Arc` (`Cache<K, Arc<V>>`) so a hit
///   copies a pointer, not the value.
/// - `Cache` is a cheap `Clone` (a reference count): clones share one cache, so a clone moves
///   into a thread or a task without an `Arc` around it, and the cache lives until its last
///   clone is dropped (see the second example).
/// - [`insert_with`](Self::insert_with) takes a [`Priority`](crate::Priority), a time to
///   live and a weight: `Critical` entries go to L1 at once and are evicted last.
/// - [`get_with`](Self::get_with) runs the initialiser once for
///   concurrent misses on one key.
/// - No lock is held while user code runs (weigher, listener, initialiser, a key's or value's
///   `Clone` and `Drop`), and a panic in any of them leaves the cache consistent and usable.
///
/// ```
/// use stratacache::Cache;
///
/// let cache: Cache<u64, String> = Cache::builder().capacity(10_000).build()?;
/// cache.insert(7, "seven".to_string())?;
/// assert_eq!(cache.get(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.remove(&7).as_deref(), Some("seven"));
/// assert_eq!(cache.get(&7), None);
/// let loaded = cache.get_with(&8, || "eight".to_string());
/// assert_eq!(loaded, "eight");
/// assert_eq!(cache.stats().misses, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Clones share the cache:
///
/// ```
/// use stratacache::Cache;
///
/// let cache: Cache<u64, u64> = Cache::builder().capacity(1_000).build()?;
/// let workers: Vec<_> = (0..4)
///     .map(|worker| {
///         let cache = cache.clone(); // a reference count, not a copy
///         std::thread::spawn(move || cache.insert(worker, worker * 10))
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap()?;
/// }
/// assert_eq!(cache.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    shared: alloc::sync::Arc<Shared<K, V, S, W, P>>,
}

/// A cache's state, which its clones share.
struct Shared<K, V, S, W, P: Policy> {
    l1: L1<K, Stamped<V>, ()>,
    /// Whether L1 takes copies at all ([`CacheBuilder::l1_entries`] 0 turns it off).
    l1_on: bool,
    /// Which L1 replica a thread reads.
    placement: builder::Placement,
    l2: Table<K, V, W, P>,
    hash_builder: S,
    promote_after: u8,
    /// An entry promoted before tries again on the L2 hits of a thread whose count of them
    /// has these bits clear: one in `promote_after / 2` (rounded up to a power of two).
    promote_again: usize,
    clock: Option<Box<dyn Clock>>,
    /// The default time to live in nanoseconds.
    default_ttl: Option<u64>,
    /// The time to idle in nanoseconds.
    idle: Option<u64>,
    /// The time after a write when a loader's read reloads the entry, in nanoseconds.
    refresh: Option<u64>,
    /// Chooses entries' times to live from the entries.
    expiry: Option<Box<dyn crate::entry::Expiry<K, V>>>,
    /// 1 once an entry may have a deadline: until then insertions do not read the clock.
    expiring: AtomicU8,
    listener: Option<Box<Listener<K, V>>>,
    stats: Counters,
    flights: Flights<K, V>,
    /// `health`'s thresholds and last counts.
    health: health::Watch,
    /// The name lookups are timed under (one in 1,024), if any, and whether there is one
    /// (what a lookup reads when its caller's [`Sampler`](stats::Sampler) runs out).
    #[cfg(feature = "metrics")]
    metrics_name: Option<&'static str>,
    #[cfg(feature = "metrics")]
    metrics_on: bool,
    /// The persistent tier below L2.
    #[cfg(feature = "persistent")]
    l3: Option<persist::Persistent<K, V>>,
}

impl<K, V, S, W, P: Policy> Shared<K, V, S, W, P> {
    /// A lookup sampler for a new handle or frame: one that times lookups if the cache has a
    /// metrics name.
    fn sampler(&self) -> stats::Sampler {
        #[cfg(feature = "metrics")]
        return stats::Sampler::new(self.metrics_on);
        #[cfg(not(feature = "metrics"))]
        stats::Sampler::new(false)
    }
}

#[cfg(feature = "persistent")]
impl<K: core::hash::Hash, V, S: core::hash::BuildHasher, W, P: Policy> persist::Around<K>
    for Shared<K, V, S, W, P>
{
    fn hash_key(&self, key: &K) -> u64 {
        self.hash_builder.hash_one(key)
    }

    fn clock_now(&self) -> u64 {
        self.now()
    }
}

impl<K, V, S, W, P: Policy> Clone for Cache<K, V, S, W, P> {
    /// Another handle on the same cache (a reference count's increment): entries, statistics
    /// and settings are shared, and the cache lives until its last clone is dropped.
    fn clone(&self) -> Self {
        Self {
            shared: alloc::sync::Arc::clone(&self.shared),
        }
    }
}

impl<K, V> Cache<K, V> {
    /// A builder with the defaults.
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }
}

impl<K, V, S, W, P: Policy> Cache<K, V, S, W, P> {
    /// The persistent tier's counters (hits, bytes read and written, compactions, damaged
    /// records, disk bytes), if the cache was built with one
    /// ([`CacheBuilder::build_persistent`]).
    #[cfg(feature = "persistent")]
    pub fn persistent_stats(&self) -> Option<crate::l3::StoreStats> {
        self.shared.l3.as_ref().map(persist::Persistent::stats)
    }

    /// Writes every entry held in memory to the persistent tier as well and waits until the
    /// disk has it all: call it before a clean shutdown, and the next run starts with
    /// everything this one held (the disk tier otherwise keeps only what memory evicted).
    /// Each shard is written under its lock, in order with the writes to it; an entry whose
    /// record the disk holds already (written through, or read back from there) is not
    /// written again. The entries the disk now has; 0 without a persistent tier.
    ///
    /// # Errors
    /// [`L3Error::Io`](crate::l3::L3Error::Io) when the store's writes or sync fail.
    #[cfg(feature = "persistent")]
    pub fn write_back(&self) -> Result<usize, crate::l3::L3Error>
    where
        K: core::hash::Hash,
        S: core::hash::BuildHasher,
    {
        let Some(l3) = self.shared.l3.as_ref() else {
            return Ok(0);
        };
        let shared = &*self.shared;
        let mut written = 0;
        shared.l2.for_each_locked(|key, value, expires| {
            let kept = persist::Kept::WriteBack;
            let outcome = l3.write_back(shared, (key, value, expires), crate::Priority::High, kept);
            written += usize::from(outcome != persist::Written::Refused);
        });
        l3.store.sync()?;
        Ok(written)
    }

    /// The L2 capacity.
    pub fn capacity(&self) -> u64 {
        self.shared.l2.capacity()
    }

    /// The arenas the cache's memory comes from (one, or one per NUMA node; none on the global
    /// allocator), for their per-size-class accounting
    /// ([`Arena::class_stats`](stratacache_alloc::Arena::class_stats)); their totals are in
    /// [`CacheStats::arena`].
    pub fn arenas(&self) -> &[alloc::sync::Arc<stratacache_alloc::Arena>] {
        self.shared.l2.arenas()
    }

    /// How many L1 replicas the cache keeps: one per NUMA node with
    /// [`per_socket_l1`](CacheBuilder::per_socket_l1), else one.
    pub fn l1_replicas(&self) -> usize {
        self.shared.l1.replicas()
    }

    /// How many hot copies L1 holds (in each replica); 0 when L1 is off.
    pub fn l1_capacity(&self) -> usize {
        if self.shared.l1_on {
            self.shared.l1.capacity()
        } else {
            0
        }
    }

    /// The total weight of the entries (L1 holds copies and adds none).
    pub fn weighted_size(&self) -> u64 {
        self.shared.l2.weighted_size()
    }

    /// The number of entries (a moment's view; takes every L2 shard's lock in turn).
    /// Expired entries not yet reclaimed are counted.
    pub fn len(&self) -> usize {
        self.shared.l2.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.shared.l2.weighted_size() == 0 && self.len() == 0
    }

    /// A snapshot of the statistics: per-tier hits, misses, insertions, promotions, entries
    /// gone by cause, and the memory the cache's structures hold. Sums every counter stripe
    /// and takes every L2 shard's lock in turn; scans L1's sets (`O(L1 capacity)`).
    pub fn stats(&self) -> CacheStats {
        let mut stats = self.shared.stats.snapshot();
        stats.retired = (self.shared.l1.retired() + self.shared.l2.retired()) as u64;
        stats.entries = self.len() as u64;
        stats.weighted_size = self.weighted_size();
        stats.memory_bytes = (core::mem::size_of::<Shared<K, V, S, W, P>>()
            + self.shared.l1.heap_bytes()
            + self.shared.l2.heap_bytes()) as u64;
        stats.arena = self
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

    /// The cache's health for an operator's check: the concerns the thresholds set in
    /// [`CacheBuilder::health_thresholds`] find (a hit ratio since the last check below the
    /// minimum, a memory or disk budget nearly spent, damaged records or dropped writes on
    /// disk since the last check). Takes [`stats`](Self::stats)'s cost.
    ///
    /// ```
    /// use stratacache::{Cache, HealthThresholds};
    ///
    /// let thresholds = HealthThresholds { min_hit_ratio: 0.5, min_lookups: 10, ..Default::default() };
    /// let cache: Cache<u64, u64> =
    ///     Cache::builder().capacity(100).health_thresholds(thresholds).build()?;
    /// for key in 0..20 {
    ///     cache.get(&key); // all misses
    /// }
    /// let health = cache.health();
    /// assert!(!health.is_healthy());
    /// println!("{health}"); // "hit ratio 0.0 % over 20 lookups, below 50.0 %"
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Health {
        let stats = self.stats();
        #[cfg(feature = "persistent")]
        let disk = self.shared.l3.as_ref().map(|l3| {
            let s = l3.stats();
            (
                s.corrupt_records,
                s.dropped_writes,
                s.disk_bytes,
                s.disk_budget,
            )
        });
        #[cfg(not(feature = "persistent"))]
        let disk = None;
        self.shared.health.check(&stats, disk)
    }
}

impl<K, V, S, W, P: Policy> Shared<K, V, S, W, P> {
    /// Allocates every L2 shard's room for its share of a capacity that counts entries.
    fn preallocate(&self) -> Result<(), crate::l2::OutOfMemory> {
        let handle = self.l1.handle();
        let guard = handle.pin();
        self.l2.reserve_each(&raw::epoch(&guard))
    }

    /// Sizes the L2 indexes for what a memory budget can hold (see `Table::size_indexes`).
    fn size_indexes(&self) -> Result<(), crate::l2::OutOfMemory> {
        let handle = self.l1.handle();
        let guard = handle.pin();
        self.l2.size_indexes(&raw::epoch(&guard))
    }

    /// Frees what writes and promotions retired that no reader can see any more (at most
    /// `max` of L1's and of L2's): a quiet point's work (their `Drop` runs here).
    fn reclaim(&self, max: usize) {
        self.l1.reclaim(max);
        self.l2.reclaim(max);
    }

    /// A quiet point's work under `l1` (no lock held: values' `Drop` runs here): L2's
    /// retired entries waiting in limbo go to the collector, this thread's retirements move
    /// on, and up to [`QUIET_RECLAIM`](fronts::QUIET_RECLAIM) of each tier's are freed.
    fn quiet_point(&self, l1: &l1::Guard<'_, K, Stamped<V>, ()>) {
        self.l2.hand_over(&raw::epoch(l1));
        l1.flush();
        self.reclaim(fronts::QUIET_RECLAIM);
    }

    #[inline]
    fn now(&self) -> u64 {
        self.clock.as_ref().map_or(0, |clock| clock.now_nanos())
    }

    fn notify(&self, key: &K, value: &V, cause: RemovalCause) {
        if let Some(listener) = &self.listener {
            listener(key, value, cause);
        }
    }

    /// The deadline of an L1 copy of an entry whose deadline is `expires`, made `now`: the
    /// same, or in a cache with a time to idle at most a 32nd of it from now (L1's hits do
    /// not reach L2's idle deadline: the read after the copy's end does, and copies again).
    fn copy_deadline(&self, expires: u64, now: u64) -> u64 {
        if let Some(idle) = self.idle {
            return expires.min(now.saturating_add((idle / 32).max(1)));
        }
        if self.expiry.is_some() && expires != NEVER {
            // An `Expiry`'s read hook is asked on L2's reads: a copy lives a 32nd of what is
            // left, so a read entry is asked about at least that often.
            return expires.min(now.saturating_add((expires.saturating_sub(now) / 32).max(1)));
        }
        expires
    }

    /// The idle deadline of an entry stored or read `now` ([`NEVER`] without a time to idle).
    fn idle_deadline(&self, now: u64) -> u64 {
        self.idle.map_or(NEVER, |idle| deadline_after(now, idle))
    }

    /// The deadline for an entry inserted with `ttl`, and the clock now (0 while no entry can
    /// expire); `None` if a deadline is needed and there is no clock.
    fn deadline(&self, ttl: Ttl) -> Option<(u64, u64)> {
        let ttl = match ttl {
            Ttl::Never => None,
            Ttl::CacheDefault => self.default_ttl,
            Ttl::For(ttl) => Some(nanos(ttl)),
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
        let expires = ttl.map_or(NEVER, |ttl| deadline_after(now, ttl));
        Some((expires, now))
    }
}

/// A duration in nanoseconds, saturating.
fn nanos(duration: core::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The deadline `span` nanoseconds after `now`, saturating below [`NEVER`] (which means none).
fn deadline_after(now: u64, span: u64) -> u64 {
    now.saturating_add(span).min(NEVER - 1)
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

#[cfg(all(test, feature = "std"))]
mod tests;
