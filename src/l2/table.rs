//! The concurrent L2 table: power-of-two shards behind reader-writer locks, with capacity
//! enforced over the whole table.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use allocator_api2::vec::Vec as ApiVec;
use crossbeam_utils::CachePadded;
use stratacache_alloc::{Arena, MemoryHandle};

use super::policy::{DefaultPolicy, EntryInfo, Policy, Priority};
use super::shard::{Evicted, NEVER, Shard};
use crate::error::{BuildError, InsertError};
use crate::hash::DefaultHashBuilder;
use crate::sync::{AtomicUsize, Ordering, RwLock};

/// Tells how much an entry counts against the capacity.
///
/// Called once per insertion, before any lock is taken; a panic in it leaves the table as it
/// was. Closures `Fn(&K, &V) -> u64` are weighers.
pub trait Weigher<K, V> {
    /// Whether every entry weighs 1, so the capacity counts entries and the table can size its
    /// shards for them when it is built.
    const UNIT: bool = false;

    /// The entry's weight (for instance its size in bytes).
    fn weigh(&self, key: &K, value: &V) -> u64;
}

/// Every entry weighs 1: the capacity counts entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitWeigher;

impl<K, V> Weigher<K, V> for UnitWeigher {
    const UNIT: bool = true;

    #[inline]
    fn weigh(&self, _: &K, _: &V) -> u64 {
        1
    }
}

impl<K, V, F: Fn(&K, &V) -> u64> Weigher<K, V> for F {
    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u64 {
        self(key, value)
    }
}

/// A concurrent, sharded, capacity-bounded table: the in-memory L2 tier.
///
/// - Lookups take one shard's read lock; a hit bumps a policy counter with a relaxed atomic.
/// - Inserts and removals take one shard's write lock. An insertion adds its weight to a
///   table-wide total and evicts until the total is within the capacity again: first from
///   its own shard (while that shard holds anything besides the new entry), then from the
///   others. So the table exceeds its capacity by at most one in-flight entry per inserting
///   thread, and an entry may weigh as much as the whole capacity, not one shard's share.
/// - Evicted entries, replaced values and removed keys are dropped after every lock is
///   released; the weigher runs before any lock is taken.
///
/// ```
/// use stratacache::l2::L2;
///
/// let cache: L2<u64, String> = L2::with_capacity(1_000)?;
/// cache.insert(1, "one".to_string())?;
/// assert_eq!(cache.get(&1).as_deref(), Some("one"));
/// assert_eq!(cache.remove(&1).as_deref(), Some("one"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct L2<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    shards: Box<[LockedShard<K, V, P>]>,
    shard_mask: usize,
    hash_builder: S,
    weigher: W,
    capacity: usize,
    weight: CachePadded<AtomicUsize>,
    arenas: Vec<Arc<Arena>>,
}

/// Entries evicted under a lock, kept to be dropped after it is released. An insertion
/// usually evicts one entry, which stays inline: no allocation on that path.
/// Further victims are listed in the evicting shard's memory, and only when there is room:
/// an eviction never fails for want of memory, it stops.
pub(crate) struct Victims<K, V> {
    first: Option<Evicted<K, V>>,
    more: ApiVec<Evicted<K, V>, MemoryHandle>,
}

impl<K, V> Default for Victims<K, V> {
    fn default() -> Self {
        Self {
            first: None,
            more: ApiVec::new_in(MemoryHandle::global()),
        }
    }
}

impl<K, V> Victims<K, V> {
    /// Whether one more victim can be listed (making room in `memory` if need be).
    fn make_room(&mut self, memory: &MemoryHandle) -> bool {
        if self.first.is_none() || self.more.len() < self.more.capacity() {
            return true;
        }
        if self.more.capacity() == 0 {
            self.more = ApiVec::new_in(memory.clone());
        }
        self.more.try_reserve(1).is_ok()
    }

    /// Lists a victim; [`make_room`](Self::make_room) said there was room.
    fn push(&mut self, victim: Evicted<K, V>) {
        if self.first.is_none() {
            self.first = Some(victim);
        } else {
            debug_assert!(self.more.len() < self.more.capacity());
            self.more.push(victim);
        }
    }

    /// The victims, in eviction order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Evicted<K, V>> {
        self.first.iter().chain(self.more.iter())
    }
}

/// What an insertion displaced, handed out of the locked sections so the caller can report
/// it and drop it there.
pub(crate) struct Displaced<K, V> {
    /// When the key was present: the new key (the stored one is kept), the old value and the
    /// old deadline.
    pub(crate) replaced: Option<(K, V, u64)>,
    /// The entries evicted to make room.
    pub(crate) victims: Victims<K, V>,
    /// The entry itself, when the shard's memory could not hold it even after evicting
    /// everything else from the shard.
    pub(crate) refused: Option<(K, V)>,
}

/// One shard behind its lock, on cache lines of its own.
type LockedShard<K, V, P> = CachePadded<RwLock<Shard<K, V, P>>>;

/// Builds an [`L2`]: capacity (required), shards, hasher, weigher, policy.
pub struct L2Builder<K, V, S = DefaultHashBuilder, W = UnitWeigher, P = DefaultPolicy> {
    capacity: Option<u64>,
    shards: Option<usize>,
    arenas: Vec<Arc<Arena>>,
    /// Bytes of each arena's budget kept for others (the tiered cache's L1 nodes).
    aside: usize,
    hash_builder: S,
    weigher: W,
    /// Makes each shard's policy.
    make_policy: fn() -> P,
    types: PhantomData<BuilderTypes<K, V, P>>,
}

/// The types an [`L2Builder`] builds for, carried without owning any.
type BuilderTypes<K, V, P> = fn() -> (K, V, P);

impl<K, V> Default for L2Builder<K, V> {
    fn default() -> Self {
        Self {
            capacity: None,
            shards: None,
            arenas: Vec::new(),
            aside: 0,
            hash_builder: DefaultHashBuilder::default(),
            weigher: UnitWeigher,
            make_policy: DefaultPolicy::default,
            types: PhantomData,
        }
    }
}

impl<K, V, S, W, P> fmt::Debug for L2Builder<K, V, S, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L2Builder")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Entries a default shard is given at least (counting entries): the default policy's window,
/// sketch and window sizing need a few hundred entries to judge well, and a small cache gains
/// nothing from more locks than it has hot entries.
const MIN_SHARD_ENTRIES: usize = 256;

/// The default shard count: four per CPU (under `std`), rounded up to a power of two; when the
/// capacity counts entries, no more than leave each shard [`MIN_SHARD_ENTRIES`].
fn default_shards(entries: Option<usize>) -> usize {
    #[cfg(feature = "std")]
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    #[cfg(not(feature = "std"))]
    let cpus: usize = 4;
    let by_cpus = (cpus * 4).next_power_of_two().min(1 << 12);
    match entries {
        Some(entries) => {
            let most = (entries / MIN_SHARD_ENTRIES).max(1);
            // The largest power of two not above `most`.
            by_cpus.min(1 << most.ilog2())
        }
        None => by_cpus,
    }
}

impl<K, V, S, W, P> L2Builder<K, V, S, W, P> {
    /// The capacity: the most the entries may weigh together (with the default weigher, the
    /// most entries). Required.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// The number of shards, a power of two (default: four per CPU, rounded up, but when the
    /// capacity counts entries no more than leave each shard 256 of them).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Allocate every shard's index and slots from `arena`, shard `i` on lane `i` (default: the
    /// global allocator). An arena with a budget bounds the table's memory: when it is spent,
    /// an insertion evicts from its shard to reuse the room, and is refused
    /// ([`InsertError::OutOfMemory`]) only when the shard has nothing left to evict.
    ///
    /// Counting entries, the table reserves each shard's room for its share of the capacity
    /// when it is built; when the arena cannot hold that much, the shards start empty and grow
    /// as they fill, until the budget stops them.
    pub fn memory(mut self, arena: Arc<Arena>) -> Self {
        self.arenas = alloc::vec![arena];
        self
    }

    /// Allocate the shards from `arenas` in turn: shard `i` from `arenas[i % arenas.len()]`
    /// (on lane `i`). With one arena per NUMA node, the shards are striped across the nodes,
    /// each shard's memory on its home node. An empty list means the global allocator.
    pub fn memory_striped(mut self, arenas: Vec<Arc<Arena>>) -> Self {
        self.arenas = arenas;
        self
    }

    /// Leaves `bytes` of each arena's budget out of the shards' reservation.
    pub(crate) fn aside(mut self, bytes: usize) -> Self {
        self.aside = bytes;
        self
    }

    /// Hash keys with `hash_builder`.
    pub fn hasher<S2>(self, hash_builder: S2) -> L2Builder<K, V, S2, W, P> {
        L2Builder {
            capacity: self.capacity,
            shards: self.shards,
            arenas: self.arenas,
            aside: self.aside,
            hash_builder,
            weigher: self.weigher,
            make_policy: self.make_policy,
            types: PhantomData,
        }
    }

    /// Weigh entries with `weigher`; the capacity then bounds the total weight.
    pub fn weigher<W2: Weigher<K, V>>(self, weigher: W2) -> L2Builder<K, V, S, W2, P> {
        L2Builder {
            capacity: self.capacity,
            shards: self.shards,
            arenas: self.arenas,
            aside: self.aside,
            hash_builder: self.hash_builder,
            weigher,
            make_policy: self.make_policy,
            types: PhantomData,
        }
    }

    /// Evict by the policy `P2` (one instance per shard, from `Default`).
    pub fn policy<P2: Policy + Default>(self) -> L2Builder<K, V, S, W, P2> {
        self.policy_with(P2::default)
    }

    /// Evict by the policy `P2`, each shard's made by `make` (for a policy tuned otherwise
    /// than by `Default`, or one without it).
    pub fn policy_with<P2: Policy>(self, make: fn() -> P2) -> L2Builder<K, V, S, W, P2> {
        L2Builder {
            capacity: self.capacity,
            shards: self.shards,
            arenas: self.arenas,
            aside: self.aside,
            hash_builder: self.hash_builder,
            weigher: self.weigher,
            make_policy: make,
            types: PhantomData,
        }
    }

    /// Builds the table.
    ///
    /// # Errors
    /// [`BuildError::ZeroCapacity`] when no capacity or 0 was given,
    /// [`BuildError::CapacityOverflow`] when it does not fit this target's `usize`,
    /// [`BuildError::ZeroShards`] or [`BuildError::ShardsNotPowerOfTwo`] for a bad shard count,
    /// [`BuildError::AllocationFailed`] when the shards cannot be allocated.
    pub fn build(self) -> Result<L2<K, V, S, W, P>, BuildError>
    where
        P: Policy,
        W: Weigher<K, V>,
    {
        let capacity = self
            .capacity
            .filter(|&c| c > 0)
            .ok_or(BuildError::ZeroCapacity)?;
        let capacity = usize::try_from(capacity).map_err(|_| BuildError::CapacityOverflow {
            requested: usize::MAX,
        })?;
        let shards = self
            .shards
            .unwrap_or_else(|| default_shards(W::UNIT.then_some(capacity)));
        if shards == 0 {
            return Err(BuildError::ZeroShards);
        }
        if !shards.is_power_of_two() {
            return Err(BuildError::ShardsNotPowerOfTwo { shards });
        }
        let mut list: Vec<LockedShard<K, V, P>> = Vec::new();
        list.try_reserve_exact(shards)
            .map_err(|_| BuildError::AllocationFailed {
                bytes: shards
                    .saturating_mul(core::mem::size_of::<CachePadded<RwLock<Shard<K, V, P>>>>()),
            })?;
        // Counting entries, the table knows how many each shard will hold: room for them
        // now (plus a margin for uneven hashing), so a full cache never resizes a shard under
        // its lock. Weighted tables grow as they fill.
        let per_shard = if W::UNIT {
            let share = capacity.div_ceil(shards);
            share.saturating_add(share / 16 + 8)
        } else {
            0
        };
        let memory = |shard: usize| match self.arenas.len() {
            0 => MemoryHandle::global(),
            n => MemoryHandle::arena(&self.arenas[shard % n], shard),
        };
        // On a budget, reserve the same for every shard, as much as the budget holds (a
        // span spare for chunk records and alignment): a shard never resizes later, and none
        // is left without room while others have plenty.
        // Each arena serves every `arenas.len()`-th shard: the tightest one sets the share.
        let served = shards.div_ceil(self.arenas.len().max(1));
        let tightest = self.arenas.iter().filter_map(|arena| arena.limit()).min();
        let reserve = match tightest {
            Some(limit) if per_shard > 0 => {
                let room = limit
                    .saturating_sub(stratacache_alloc::SPAN_BYTES)
                    .saturating_sub(self.aside);
                let needs = |entries: usize| {
                    let each = Shard::<K, V, P>::reserved_layouts(entries);
                    stratacache_alloc::footprint(each.map(|(layout, n)| (layout, n * served)))
                        .unwrap_or(usize::MAX)
                };
                let mut fits = per_shard;
                while fits > 0 && needs(fits) > room {
                    fits = fits / 8 * 7;
                }
                fits
            }
            _ => per_shard,
        };
        for lane in 0..shards {
            let mut policy = (self.make_policy)();
            if let Some(first) = list.first() {
                policy.join(first.write().policy_mut());
            }
            let mut shard = Shard::with_policy_in(policy, memory(lane));
            if shard.try_reserve(reserve).is_err() && self.arenas.is_empty() {
                return Err(BuildError::AllocationFailed {
                    bytes: per_shard.saturating_mul(core::mem::size_of::<(K, V)>()),
                });
            }
            // On an arena, a shard that could not be given its room grows as it fills, until
            // the budget stops it.
            list.push(CachePadded::new(RwLock::new(shard)));
        }
        Ok(L2 {
            shards: list.into_boxed_slice(),
            shard_mask: shards - 1,
            hash_builder: self.hash_builder,
            weigher: self.weigher,
            capacity,
            weight: CachePadded::new(AtomicUsize::new(0)),
            arenas: self.arenas,
        })
    }
}

impl<K, V> L2<K, V> {
    /// A table of at most `capacity` entries with the default hasher, shards and policy.
    ///
    /// # Errors
    /// As [`L2Builder::build`].
    pub fn with_capacity(capacity: u64) -> Result<Self, BuildError> {
        Self::builder().capacity(capacity).build()
    }

    /// A builder with the defaults.
    pub fn builder() -> L2Builder<K, V> {
        L2Builder::default()
    }
}

impl<K, V, S, W, P: Policy> L2<K, V, S, W, P> {
    /// The capacity (the most the entries may weigh together).
    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// The entries' total weight now.
    pub fn weighted_size(&self) -> u64 {
        self.weight.load(Ordering::Relaxed) as u64
    }

    /// The arenas the shards allocate from (shard `i` from arena `i % len`); empty for the
    /// global allocator.
    pub fn arenas(&self) -> &[Arc<Arena>] {
        &self.arenas
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The number of entries (takes every shard's read lock in turn: a moment's view).
    pub fn len(&self) -> usize
    where
        P: Policy,
    {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool
    where
        P: Policy,
    {
        self.weighted_size() == 0 && self.len() == 0
    }

    #[inline]
    pub(crate) fn shard_of(&self, hash: u64) -> &RwLock<Shard<K, V, P>> {
        // Bits 32.. pick the shard: L1 sets use the low bits, and hashbrown inside the shard
        // the low bits and the top seven.
        &self.shards[(hash >> 32) as usize & self.shard_mask]
    }

    fn add_weight(&self, before: u64, after: u64) {
        // Relaxed: the total is a budget, not a synchronisation point; the shard locks order
        // the entries themselves.
        if after >= before {
            self.weight
                .fetch_add((after - before) as usize, Ordering::Relaxed);
        } else {
            self.weight
                .fetch_sub((before - after) as usize, Ordering::Relaxed);
        }
    }

    fn over_budget(&self) -> bool {
        self.weight.load(Ordering::Relaxed) > self.capacity
    }

    /// Whether the table is over budget once `pending` (a change not yet added to the total)
    /// is counted.
    fn over_budget_with(&self, pending: i64) -> bool {
        // Relaxed: see `add_weight`.
        self.weight.load(Ordering::Relaxed) as i64 + pending > self.capacity as i64
    }

    /// Adds `pending` to the table's total: one read-modify-write, none when it is zero (an
    /// insertion into a full cache that evicts one entry of the same weight writes nothing
    /// shared).
    fn apply(&self, pending: i64) {
        // Relaxed: see `add_weight`.
        if pending > 0 {
            self.weight.fetch_add(pending as usize, Ordering::Relaxed);
        } else if pending < 0 {
            self.weight
                .fetch_sub(pending.unsigned_abs() as usize, Ordering::Relaxed);
        }
    }

    /// Heap bytes the table holds (shard arenas, indexes, policy history), not counting what
    /// keys and values own. Takes every shard's read lock in turn.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shards.len() * core::mem::size_of::<LockedShard<K, V, P>>()
            + self
                .shards
                .iter()
                .map(|s| s.read().heap_bytes())
                .sum::<usize>()
    }

    /// Evicts from `shard` while the table, counting `pending` weight not yet added to its
    /// total, is over budget and the shard holds more than `keep` entries; then adds the net
    /// change to the total (before the shard is unlocked). `upper` sees each victim while the
    /// shard is still locked.
    fn evict_from(
        &self,
        shard: &mut Shard<K, V, P>,
        evict: Evict,
        mut pending: i64,
        victims: &mut Victims<K, V>,
        upper: &mut impl Upper<K, V>,
    ) where
        P: Policy,
    {
        while self.over_budget_with(pending)
            && shard.len() > evict.keep
            && victims.make_room(shard.memory())
        {
            let mut used = |hash: u64, key: &K, hits: u8| upper.used(hash, key, hits);
            let Some(victim) = shard.evict_at(evict.now, evict.spare_critical, Some(&mut used))
            else {
                break;
            };
            pending -= victim.weight as i64;
            upper.evicted(&victim);
            victims.push(victim);
        }
        self.apply(pending);
    }
}

impl<K, V, S, W, P> L2<K, V, S, W, P>
where
    K: Hash + Eq,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    /// A clone of the value for `key`, counted as a use.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_of(hash).read().get(hash, key).cloned()
    }

    /// A clone of the value for `key`, not counted as a use.
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_of(hash).read().peek(hash, key).cloned()
    }

    /// Whether `key` is present (not counted as a use).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_of(hash).read().peek(hash, key).is_some()
    }

    /// Stores `value` for `key`, replacing any previous value, then evicts until the table is
    /// within its capacity. The replaced value and the evicted entries are dropped after the
    /// locks are released.
    ///
    /// # Errors
    /// [`InsertError::TooHeavy`], with the key and value, when the entry alone weighs more
    /// than the capacity (or than `u32::MAX`, the most one entry may weigh);
    /// [`InsertError::OutOfMemory`] when the table's arena has no room for it even after its
    /// shard evicted everything else.
    pub fn insert(&self, key: K, value: V) -> Result<(), InsertError<K, V>> {
        let hash = self.hash_builder.hash_one(&key);
        let displaced =
            self.insert_hashed(hash, key, value, StoreAs::default(), |_, _| {}, &mut ())?;
        match displaced.refused {
            Some((key, value)) => Err(InsertError::OutOfMemory { key, value }),
            None => Ok(()),
        }
    }

    /// Removes `key` and returns its value; the stored key is dropped outside the lock.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        self.remove_hashed(hash, key, || {}).map(|(_, value)| value)
    }

    /// Removes every entry, one shard at a time; entries are dropped outside the locks.
    pub fn clear(&self) {
        self.clear_with(|_| {}, |_| {});
    }
}

/// What a tier above L2 (the tiered cache's L1) is told and asked while a shard is locked.
pub(crate) trait Upper<K, V> {
    /// `victim` left L2.
    fn evicted(&mut self, victim: &Evicted<K, V>);
    /// Whether the entry (`hash`, `key`, with `hits` counted in L2) was used in the upper tier
    /// since this was last asked.
    fn used(&mut self, hash: u64, key: &K, hits: u8) -> bool;
}

/// No upper tier.
impl<K, V> Upper<K, V> for () {
    fn evicted(&mut self, _: &Evicted<K, V>) {}

    fn used(&mut self, _: u64, _: &K, _: u8) -> bool {
        false
    }
}

/// How one eviction pass over a shard runs.
#[derive(Clone, Copy)]
struct Evict {
    /// Leave at least this many entries in the shard.
    keep: usize,
    /// Never choose a `Critical` entry.
    spare_critical: bool,
    /// The clock, for expiry.
    now: u64,
}

/// How an entry is stored, beyond its key and value.
#[derive(Clone, Copy)]
pub(crate) struct StoreAs {
    /// Its weight, or `None` to ask the weigher.
    pub(crate) weight: Option<u64>,
    pub(crate) priority: Priority,
    /// Its deadline on the cache's clock ([`NEVER`] for none).
    pub(crate) expires: u64,
    /// The clock now (0 when no entry can expire), for choosing expired victims first.
    pub(crate) now: u64,
}

impl Default for StoreAs {
    fn default() -> Self {
        Self {
            weight: None,
            priority: Priority::High,
            expires: NEVER,
            now: 0,
        }
    }
}

impl<K, V, S, W, P> L2<K, V, S, W, P>
where
    K: Eq,
    W: Weigher<K, V>,
    P: Policy,
{
    /// [`insert`](Self::insert) with the hash computed by the caller and the entry's weight,
    /// priority and deadline in `how`. `after_store` runs with the key's shard still
    /// write-locked, right after the entry is stored, with the new key if it replaced an entry
    /// (`None` if the key is new); `upper` hears of every victim while its shard is still
    /// locked, and is asked whether a candidate was used above L2 (the tiered cache keeps L1
    /// in step there). What the insertion displaced is
    /// returned, to be dropped after every lock is released.
    ///
    /// Eviction spares `Critical` entries as long as anything else can go: first from the
    /// key's shard (keeping the new entry), then from the others, then the new entry itself;
    /// only then, the same passes taking `Critical` entries too.
    pub(crate) fn insert_hashed(
        &self,
        hash: u64,
        key: K,
        value: V,
        how: StoreAs,
        after_store: impl FnOnce(&Shard<K, V, P>, Option<&K>),
        upper: &mut impl Upper<K, V>,
    ) -> Result<Displaced<K, V>, InsertError<K, V>> {
        let weight = match how.weight {
            Some(weight) => weight,
            None => self.weigher.weigh(&key, &value),
        };
        let limit = (self.capacity as u64).min(u64::from(u32::MAX));
        if weight > limit {
            return Err(InsertError::TooHeavy {
                key,
                value,
                weight,
                capacity: limit,
            });
        }
        let home = (hash >> 32) as usize & self.shard_mask;
        let mut victims = Victims::default();
        let pass = |keep, spare_critical| Evict {
            keep,
            spare_critical,
            now: how.now,
        };
        let replaced = {
            let mut shard = self.shards[home].write();
            let before = shard.weight();
            let info = EntryInfo::new(hash, weight, how.priority);
            let mut entry = (key, value);
            let replaced = loop {
                match shard.store(entry.0, entry.1, info, how.expires) {
                    Ok(replaced) => break replaced,
                    Err(back) => entry = back,
                }
                // The shard's memory is spent (its arena's budget): evict from this shard, whose
                // freed slot and index bucket the entry can then take; with nothing left to
                // evict, refuse the entry.
                let mut used = |hash: u64, key: &K, hits: u8| upper.used(hash, key, hits);
                let victim = if victims.make_room(shard.memory()) {
                    shard.evict_at(how.now, false, Some(&mut used))
                } else {
                    None
                };
                let Some(victim) = victim else {
                    self.apply(shard.weight() as i64 - before as i64);
                    return Ok(Displaced {
                        replaced: None,
                        victims,
                        refused: Some(entry),
                    });
                };
                upper.evicted(&victim);
                victims.push(victim);
            };
            let added = shard.weight() as i64 - before as i64;
            after_store(&shard, replaced.as_ref().map(|(key, _, _)| key));
            // Keep the new entry if its shard has nothing else to give: others can.
            self.evict_from(&mut shard, pass(1, true), added, &mut victims, upper);
            replaced
        };
        for spare_critical in [true, false] {
            if !spare_critical && self.over_budget() {
                let mut shard = self.shards[home].write();
                self.evict_from(&mut shard, pass(1, false), 0, &mut victims, upper);
            }
            for step in 1..self.shards.len() {
                if !self.over_budget() {
                    break;
                }
                let mut shard = self.shards[(home + step) & self.shard_mask].write();
                self.evict_from(&mut shard, pass(0, spare_critical), 0, &mut victims, upper);
            }
            if self.over_budget() {
                // Only the new entry (and entries racing in) are left: the budget wins.
                let mut shard = self.shards[home].write();
                self.evict_from(&mut shard, pass(0, spare_critical), 0, &mut victims, upper);
            }
        }
        Ok(Displaced {
            replaced,
            victims,
            refused: None,
        })
    }

    /// [`remove`](Self::remove) with the hash computed by the caller; `under_lock` runs with
    /// the key's shard write-locked.
    pub(crate) fn remove_hashed<Q>(
        &self,
        hash: u64,
        key: &Q,
        under_lock: impl FnOnce(),
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut shard = self.shard_of(hash).write();
        under_lock();
        let before = shard.weight();
        let removed = shard.remove(hash, key);
        self.add_weight(before, shard.weight());
        removed
    }

    /// Removes `key` if it has expired by `now`; `under_lock` runs with the shard write-locked
    /// once the entry is known to go.
    pub(crate) fn remove_expired_hashed<Q>(
        &self,
        hash: u64,
        key: &Q,
        now: u64,
        under_lock: impl FnOnce(),
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut shard = self.shard_of(hash).write();
        let before = shard.weight();
        let removed = shard.remove_expired(hash, key, now)?;
        self.add_weight(before, shard.weight());
        under_lock();
        Some(removed)
    }

    /// Removes every entry that has expired by `now`, one shard at a time; `under_lock` sees
    /// each shard's expired entries while it is still locked, `after` once it is released
    /// (they are dropped after that).
    pub(crate) fn drain_expired(
        &self,
        now: u64,
        mut under_lock: impl FnMut(&[Evicted<K, V>]),
        mut after: impl FnMut(&[Evicted<K, V>]),
    ) {
        let mut expired = Vec::new();
        for shard in self.shards.iter() {
            {
                let mut shard = shard.write();
                let before = shard.weight();
                shard.drain_expired(now, &mut expired);
                self.add_weight(before, shard.weight());
                under_lock(&expired);
            }
            after(&expired);
            expired.clear();
        }
    }

    /// Removes every entry, one shard at a time; `under_lock` sees each shard's entries (with
    /// their stored hashes) while it is still locked, `after` once it is released. Entries are
    /// dropped after that.
    pub(crate) fn clear_with(
        &self,
        mut under_lock: impl FnMut(&[(u64, K, V)]),
        mut after: impl FnMut(&[(u64, K, V)]),
    ) {
        for shard in self.shards.iter() {
            let taken: Vec<(u64, K, V)> = {
                let mut shard = shard.write();
                let before = shard.weight();
                let taken: Vec<(u64, K, V)> = shard.take_all_hashed().collect();
                self.add_weight(before, 0);
                under_lock(&taken);
                taken
            };
            after(&taken);
            drop(taken);
        }
    }
}

impl<K, V, S, W, P: Policy> fmt::Debug for L2<K, V, S, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L2")
            .field("capacity", &self.capacity)
            .field("weighted_size", &self.weighted_size())
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}
