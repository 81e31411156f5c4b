//! The validated builder of a [`Cache`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::flight::Flights;
use super::stats::Counters;
use super::{Cache, Listener, Shared, Stamped, nanos};
use crate::clock::Clock;
use crate::entry::{Expiry, RemovalCause};
use crate::error::BuildError;
use crate::hash::DefaultHashBuilder;
use crate::l1::L1;
use crate::l2::{DefaultPolicy, Policy, TableBuilder, UnitWeigher, Weigher, default_shards};
use crate::sync::AtomicU8;
use stratacache_alloc::Arena;
use stratacache_platform::{CpuLocator, Topology};

/// The default of [`CacheBuilder::promote_after`] (measured in `benches/results/NOTES.md`).
const DEFAULT_PROMOTE_AFTER: u8 = 12;

/// Which CPU the calling thread runs on, shared by the cache's threads.
type Locator = Arc<dyn CpuLocator + Send + Sync>;

/// Where the L2 shards' memory comes from.
enum Memory {
    /// The global allocator; on a machine of several NUMA nodes, an arena per node over it,
    /// each node's chunks bound there (under `std` on Linux).
    Global,
    Arena(Arc<Arena>),
    /// One arena per node of the topology, shards striped over them.
    PerNode(Vec<Arc<Arena>>),
    /// An arena over the global allocator, of this many bytes, made at build time.
    Budget(usize),
}

/// Builds a [`Cache`]. Only the capacity is required; [`build`](Self::build) validates.
///
/// ```
/// use std::time::Duration;
/// use stratacache::{Cache, RemovalCause};
///
/// let cache: Cache<u64, Vec<u8>, _, _> = Cache::builder()
///     .capacity(64 << 20) // bytes, with the weigher below
///     .weigher(|_key: &u64, value: &Vec<u8>| value.len() as u64)
///     .time_to_live(Duration::from_secs(60))
///     .eviction_listener(|key: &u64, _value: &Vec<u8>, cause| {
///         if cause == RemovalCause::Capacity {
///             // e.g. write it to a lower tier
///             let _ = key;
///         }
///     })
///     .build()?;
/// # Ok::<(), stratacache::BuildError>(())
/// ```
pub struct CacheBuilder<K, V, S = DefaultHashBuilder, W = UnitWeigher, P = DefaultPolicy> {
    /// Everything whose type does not change as the builder is set up.
    settings: Settings<K, V>,
    hash_builder: S,
    weigher: W,
    make_policy: fn() -> P,
}

/// The builder's settings that keep their type (the hasher, weigher and policy change the
/// builder's type, and travel beside these).
struct Settings<K, V> {
    capacity: Option<u64>,
    shards: Option<usize>,
    preallocate: bool,
    l1_entries: Option<usize>,
    promote_after: u8,
    clock: Option<Box<dyn Clock>>,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    refresh_after_write: Option<Duration>,
    expiry: Option<Box<dyn Expiry<K, V>>>,
    listener: Option<Box<Listener<K, V>>>,
    memory: Memory,
    topology: Option<Topology>,
    locator: Option<Locator>,
    per_socket_l1: Option<bool>,
    health: super::HealthThresholds,
    #[cfg(feature = "metrics")]
    metrics_name: Option<&'static str>,
    #[cfg(feature = "persistent")]
    write_through: Option<crate::Priority>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            settings: Settings {
                capacity: None,
                shards: None,
                preallocate: false,
                l1_entries: None,
                promote_after: DEFAULT_PROMOTE_AFTER,
                #[cfg(feature = "std")]
                clock: Some(Box::new(crate::clock::StdClock::new())),
                #[cfg(not(feature = "std"))]
                clock: None,
                time_to_live: None,
                time_to_idle: None,
                refresh_after_write: None,
                expiry: None,
                listener: None,
                memory: Memory::Global,
                topology: None,
                locator: None,
                per_socket_l1: None,
                health: super::HealthThresholds::default(),
                #[cfg(feature = "metrics")]
                metrics_name: None,
                #[cfg(feature = "persistent")]
                write_through: None,
            },
            hash_builder: DefaultHashBuilder::default(),
            weigher: UnitWeigher,
            make_policy: DefaultPolicy::default,
        }
    }
}

impl<K, V, S, W, P> fmt::Debug for CacheBuilder<K, V, S, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("capacity", &self.settings.capacity)
            .field("l1_entries", &self.settings.l1_entries)
            .field("promote_after", &self.settings.promote_after)
            .field("time_to_live", &self.settings.time_to_live)
            .field("time_to_idle", &self.settings.time_to_idle)
            .field("refresh_after_write", &self.settings.refresh_after_write)
            .field("expiry", &self.settings.expiry.is_some())
            .field("has_clock", &self.settings.clock.is_some())
            .field("has_listener", &self.settings.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V, S, W, P> CacheBuilder<K, V, S, W, P> {
    /// The L2 capacity: the most the entries may weigh together (with the default weigher, the
    /// most entries). Required.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// Whether a cache counting entries allocates room for its whole capacity when built
    /// (default: no, it grows as entries arrive, and an empty cache of a large capacity holds
    /// little). A game that must not allocate at run time sets this; the cache then never
    /// grows a shard.
    ///
    /// ```
    /// use stratacache::Cache;
    ///
    /// // Grows as entries arrive: empty, it holds little of what its capacity would take.
    /// let lazy: Cache<u64, u64> = Cache::builder().capacity(100_000).build()?;
    /// // Holds room for all of its capacity from the start: no allocation in the frame loop.
    /// let ready: Cache<u64, u64> = Cache::builder().capacity(100_000).preallocate(true).build()?;
    /// let (lazy, ready) = (lazy.stats().memory_bytes, ready.stats().memory_bytes);
    /// assert!(lazy * 2 < ready, "{lazy} bytes growing, {ready} preallocated");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn preallocate(mut self, on: bool) -> Self {
        self.settings.preallocate = on;
        self
    }

    /// How many hot copies L1 holds, in entries (default: an eighth of the capacity, between
    /// 7 and 65 536, rounded up to whole sets); 0 turns L1 off, so every lookup goes to L2 and
    /// no entry is ever held twice (for a tight memory budget: L1's copies are allocated by
    /// the global allocator, and crossbeam-epoch's reclamation lists allocate there too). L1
    /// hits never reach the L2 policy, which only learns of them when it is about to evict, so
    /// a larger L1 serves more hits wait-free but leaves the policy blinder (measured in
    /// `benches/results/NOTES.md`).
    pub fn l1_entries(mut self, entries: usize) -> Self {
        self.settings.l1_entries = Some(entries);
        self
    }

    /// Allocate the L2 shards' indexes and slots from `arena` (default: the global allocator),
    /// each shard on a lane of its own. An arena over a [`ChunkSource::region`] keeps every
    /// entry in the caller's memory; an arena with a budget caps what the entries' structures
    /// take. When the arena is spent, a shard lives on the slots it has: it evicts ahead of
    /// need so that some are always on their way back, and reuses an evicted entry's slot once
    /// no reader can still hold it (readers pinned by a long frame, or preempted mid-lookup,
    /// hold that back). An insertion finding no slot is refused with
    /// [`InsertError::OutOfMemory`], the entry handed back. [`CacheStats::arena`] reports what
    /// the arena holds.
    ///
    /// L1's copies (unless [L1 is off](Self::l1_entries)) come from the arena too; the
    /// policy's history and the cache's fixed bookkeeping stay on the global allocator.
    ///
    /// [`ChunkSource::region`]: stratacache_alloc::ChunkSource::region
    /// [`InsertError::OutOfMemory`]: crate::InsertError::OutOfMemory
    /// [`CacheStats::arena`]: crate::CacheStats::arena
    pub fn memory(mut self, arena: Arc<Arena>) -> Self {
        self.settings.memory = Memory::Arena(arena);
        self
    }

    /// Allocate the L2 shards from one arena per NUMA node: `arenas[n]` serves the shards
    /// whose home is the topology's `n`-th node, shards striped over the nodes in turn (shard
    /// `i` lives on node `i % nodes`). For arenas over
    /// [`ChunkSource::mimalloc_node`](stratacache_alloc::ChunkSource) or
    /// [`ChunkSource::global_on_node`](stratacache_alloc::ChunkSource), each shard's memory is
    /// on its home node. Without this, a machine of several nodes gets an arena per node over
    /// the global allocator, its chunks bound to the node (under `std` on Linux).
    pub fn memory_per_node(mut self, arenas: Vec<Arc<Arena>>) -> Self {
        self.settings.memory = Memory::PerNode(arenas);
        self
    }

    /// Cap the memory of the L2 shards' indexes and slots at `bytes`: shorthand for
    /// [`memory`](Self::memory) with an arena over the global allocator with that budget
    /// (split evenly between the nodes' arenas on a machine of several nodes; the last of
    /// `memory`, `memory_per_node` and `memory_budget` wins).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.settings.memory = Memory::Budget(bytes);
        self
    }

    /// The machine's NUMA nodes (sockets) and their CPUs (default under `std` on Linux: read
    /// from sysfs; otherwise one node). With more than one node, L1 keeps one replica per node
    /// unless [`per_socket_l1`](Self::per_socket_l1) says otherwise.
    pub fn topology(mut self, topology: Topology) -> Self {
        self.settings.topology = Some(topology);
        self
    }

    /// How a thread finds the CPU it runs on, to read its node's L1 replica (default under
    /// `std` on Linux: `sched_getcpu`; otherwise none, and every thread reads the first
    /// replica). A closure `Fn() -> Option<u32>` is a locator: a hook into the embedder's
    /// scheduler, or a fake for tests. Asked when a [`CacheHandle`](crate::CacheHandle) is
    /// made, and every 1,024 pins of a thread-local one.
    pub fn cpu_locator(mut self, locator: impl CpuLocator + Send + Sync + 'static) -> Self {
        self.settings.locator = Some(Arc::new(locator));
        self
    }

    /// Whether L1 keeps a replica per NUMA node, each read by that node's threads (default:
    /// when the topology has more than one node). A thread reads its own node's copy of a hot
    /// entry instead of pulling it across the socket link; an insertion, replacement or removal
    /// changes every replica before it returns, and a promotion copies into the reader's
    /// replica only. On one node the cache keeps one replica, whatever this says.
    pub fn per_socket_l1(mut self, on: bool) -> Self {
        self.settings.per_socket_l1 = Some(on);
        self
    }

    /// With a persistent tier ([`build_persistent`](Self::build_persistent)): entries stored
    /// at `from` or a higher priority are written to the disk tier as they are stored
    /// (write-through), not only when memory evicts them, so a crash keeps them; others as
    /// [`InsertOptions::write_through`](crate::InsertOptions::write_through) asks (default:
    /// none). Under [`SyncPolicy::Always`](crate::l3::SyncPolicy::Always) such an insertion
    /// returns once the disk has it.
    #[cfg(feature = "persistent")]
    pub fn write_through(mut self, from: crate::Priority) -> Self {
        self.settings.write_through = Some(from);
        self
    }

    /// Feature `metrics`: one lookup in 1,024 (per thread, handle or frame) is timed into the
    /// histogram `stratacache_get_seconds{cache = name, tier = l1 | l2 | l3 | miss}`, and
    /// [`Cache::export_metrics`] is the way to publish the rest. Without a name nothing is
    /// timed. The other lookups pay what an unnamed cache's do (`benches/results/NOTES.md`).
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: &'static str) -> Self {
        self.settings.metrics_name = Some(name);
        self
    }

    /// When [`Cache::health`] reports a concern (default: [`HealthThresholds::default`]).
    ///
    /// [`HealthThresholds::default`]: super::HealthThresholds::default
    pub fn health_thresholds(mut self, thresholds: super::HealthThresholds) -> Self {
        self.settings.health = thresholds;
        self
    }

    /// After how many L2 hits an entry is copied into L1 (default 12; 1 promotes on the first
    /// hit). 0 is treated as 1. An entry whose copy has since left L1 comes back in
    /// proportion to its reads, on one in `hits / 2` (rounded up to a power of two) of its
    /// thread's L2 hits, not on each. A promotion (an allocation, an L1 eviction, a deferred
    /// free) pays only through the L1 hits its copy earns: a lower threshold pays where L1
    /// holds the whole hot set.
    pub fn promote_after(mut self, hits: u8) -> Self {
        self.settings.promote_after = hits.max(1);
        self
    }

    /// The number of L2 shards, a power of two (default: four per CPU, rounded up, but when the
    /// capacity counts entries no more than leave each shard 256 of them).
    pub fn shards(mut self, shards: usize) -> Self {
        self.settings.shards = Some(shards);
        self
    }

    /// The clock that times entries' time to live (default under `std`: [`StdClock`]; none
    /// without `std`, where entries with a time to live are then refused).
    ///
    /// [`StdClock`]: crate::StdClock
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.settings.clock = Some(Box::new(clock));
        self
    }

    /// Every entry expires this long after its insertion unless its
    /// [`InsertOptions`](crate::InsertOptions) say otherwise (default: entries never expire).
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.settings.time_to_live = Some(ttl);
        self
    }

    /// Every entry also expires once this long has passed without a read (`get`, a hit of a
    /// loader or an entry's computation) or a write of it; reads push its idle deadline on
    /// (moka's time to idle). A time to live, the cache's or the entry's, still ends it at its
    /// deadline however often it is read.
    ///
    /// An entry's idle deadline costs 8 bytes beside it, and a read that moves it writes to
    /// the entry (at most once per 1/32 of the time to idle). L1's copies of such entries live
    /// a 32nd of the time to idle: their hits cannot reach L2's idle deadline, so the read
    /// after a copy ends goes to L2, pushes the deadline on and copies again. Needs 64-bit
    /// atomics (the targets without them offer no time to idle).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use stratacache::{Cache, ManualClock};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .capacity(100)
    ///     .clock(Arc::clone(&clock))
    ///     .time_to_idle(Duration::from_secs(10))
    ///     .build()?;
    /// cache.insert("session", 1)?;
    /// clock.advance(Duration::from_secs(8));
    /// assert_eq!(cache.get("session"), Some(1)); // read: ten more seconds
    /// clock.advance(Duration::from_secs(8));
    /// assert_eq!(cache.get("session"), Some(1));
    /// clock.advance(Duration::from_secs(11));
    /// assert_eq!(cache.get("session"), None); // idle too long
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(loom, target_has_atomic = "64"))]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.settings.time_to_idle = Some(tti);
        self
    }

    /// Reloads an entry read through a loader this long after its write (Caffeine's refresh
    /// after write): the first loader call ([`Cache::get_with`] and its fallible and
    /// declining forms, and the entry API's `or_*_with`) that finds the entry due runs its own
    /// loader, stores the value and returns it, while every other reader goes on getting the
    /// current value (exactly one caller reloads). A reload that fails, declines or panics
    /// keeps the current value, and the next loader call tries again. A plain `get` never
    /// reloads: it has no loader. Costs 8 bytes beside each entry; needs 64-bit atomics.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use stratacache::{Cache, ManualClock};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .capacity(100)
    ///     .clock(Arc::clone(&clock))
    ///     .refresh_after_write(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(cache.get_with(&"price", || 10), 10);
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(cache.get_with(&"price", || 11), 10, "fresh enough");
    /// clock.advance(Duration::from_secs(31));
    /// assert_eq!(cache.get(&"price"), Some(10), "a plain read does not reload");
    /// assert_eq!(cache.get_with(&"price", || 12), 12, "due: reloaded");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`Cache::get_with`]: crate::Cache::get_with
    #[cfg(any(loom, target_has_atomic = "64"))]
    pub fn refresh_after_write(mut self, after: Duration) -> Self {
        self.settings.refresh_after_write = Some(after);
        self
    }

    /// Chooses each entry's time to live from the entry when it is stored (see [`Expiry`]).
    pub fn expiry(mut self, expiry: impl Expiry<K, V> + 'static) -> Self {
        self.settings.expiry = Some(Box::new(expiry));
        self
    }

    /// Calls `listener` with every entry that leaves the cache and why: evicted for capacity,
    /// expired, replaced (with the old value) or removed. It runs on the thread whose
    /// operation removed the entry, after every lock is released, before the entry is dropped.
    /// If it panics, the panic reaches that operation's caller after the operation has taken
    /// full effect; the cache stays consistent and usable.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.settings.listener = Some(Box::new(listener));
        self
    }

    /// Hash keys with `hash_builder`.
    pub fn hasher<S2>(self, hash_builder: S2) -> CacheBuilder<K, V, S2, W, P> {
        CacheBuilder {
            settings: self.settings,
            hash_builder,
            weigher: self.weigher,
            make_policy: self.make_policy,
        }
    }

    /// Weigh entries with `weigher`; the capacity then bounds the total weight. One entry
    /// weighs at most `u32::MAX`.
    pub fn weigher<W2: Weigher<K, V>>(self, weigher: W2) -> CacheBuilder<K, V, S, W2, P> {
        CacheBuilder {
            settings: self.settings,
            hash_builder: self.hash_builder,
            weigher,
            make_policy: self.make_policy,
        }
    }

    /// Evict from L2 by the policy `P2`.
    pub fn policy<P2: Policy + Default>(self) -> CacheBuilder<K, V, S, W, P2> {
        self.policy_with(P2::default)
    }

    /// Evict from L2 by the policy `P2`, each shard's made by `make`: a policy tuned
    /// otherwise than by `Default`, such as W-TinyLFU with a fixed window, which spares the
    /// miss path the window's miniature simulations:
    ///
    /// ```
    /// use stratacache::Cache;
    /// use stratacache::policy::{WTinyLfu, WindowTuning};
    ///
    /// let cache: Cache<u64, u64, _, _, WTinyLfu> = Cache::builder()
    ///     .capacity(10_000)
    ///     .policy_with(|| WTinyLfu::with_tuning(WindowTuning::fixed(1)))
    ///     .build()?;
    /// cache.insert(1, 10)?;
    /// assert_eq!(cache.get(&1), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy_with<P2: Policy>(self, make: fn() -> P2) -> CacheBuilder<K, V, S, W, P2> {
        CacheBuilder {
            settings: self.settings,
            hash_builder: self.hash_builder,
            weigher: self.weigher,
            make_policy: make,
        }
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// [`BuildError::NoCapacity`] without a [`capacity`](Self::capacity); any [`BuildError`]
    /// of the two tiers (zero or overflowing capacities, a bad shard count,
    /// a failed allocation), [`BuildError::NoClock`] for a default time to live without a
    /// clock, and [`BuildError::Memory`] for a memory budget too small to make an arena.
    pub fn build(self) -> Result<Cache<K, V, S, W, P>, BuildError>
    where
        P: Policy,
        W: Weigher<K, V>,
    {
        Ok(Cache {
            shared: Arc::new(self.build_shared()?),
        })
    }

    /// Builds the cache with `store` as its persistent tier below L2 (feature `persistent`):
    /// what L2 evicts is written there, a miss in L2 looks there, and a key stored or removed
    /// in memory loses its record there, so no tier returns a value older than a completed
    /// write. What the store already holds (from an earlier run) is served from the start.
    /// Keys and values are byte buffers, strings or integers ([`Codec`](crate::l3::Codec)).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("stratacache-tiered-{}", std::process::id()));
    /// use stratacache::Cache;
    /// use stratacache::l3::Store;
    ///
    /// let (store, _) = Store::builder(&dir).open()?;
    /// let cache: Cache<u64, String> = Cache::builder().capacity(100).build_persistent(store)?;
    /// for id in 0..1_000u64 {
    ///     cache.insert(id, format!("player {id}"))?;
    /// }
    /// // Most of them left memory long ago; the disk tier still has them.
    /// assert_eq!(cache.get(&7).as_deref(), Some("player 7"));
    /// # drop(cache); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`build`](Self::build).
    #[cfg(feature = "persistent")]
    pub fn build_persistent(
        self,
        store: crate::l3::Store,
    ) -> Result<Cache<K, V, S, W, P>, BuildError>
    where
        K: crate::l3::Codec + core::hash::Hash,
        V: crate::l3::Codec,
        S: core::hash::BuildHasher,
        P: Policy,
        W: Weigher<K, V>,
    {
        let through = self.settings.write_through;
        let mut shared = self.build_shared()?;
        let l3 = super::persist::Persistent::new(store, through);
        // The store is keyed by this cache's hash of each key.
        l3.store.rekey(|bytes| {
            K::decode(bytes)
                .ok()
                .map(|key| shared.hash_builder.hash_one(&key))
        });
        shared.l3 = Some(l3);
        Ok(Cache {
            shared: Arc::new(shared),
        })
    }

    fn build_shared(self) -> Result<Shared<K, V, S, W, P>, BuildError>
    where
        P: Policy,
        W: Weigher<K, V>,
    {
        let timed = self.settings.time_to_live.is_some()
            || self.settings.time_to_idle.is_some()
            || self.settings.refresh_after_write.is_some()
            || self.settings.expiry.is_some();
        if timed && self.settings.clock.is_none() {
            return Err(BuildError::NoClock);
        }
        let topology = self.settings.topology.unwrap_or_else(default_topology);
        let nodes = topology.nodes().len().max(1);
        let arenas = match self.settings.memory {
            Memory::Global if nodes > 1 => node_arenas(&topology, None)?,
            Memory::Global => Vec::new(),
            Memory::Arena(arena) => alloc::vec![arena],
            Memory::PerNode(arenas) => arenas,
            Memory::Budget(bytes) if nodes > 1 => node_arenas(&topology, Some(bytes / nodes))?,
            Memory::Budget(bytes) => alloc::vec![Arc::new(
                Arena::builder()
                    .budget(bytes)
                    .build()
                    .map_err(BuildError::Memory)?,
            )],
        };
        let capacity = match self.settings.capacity {
            None => return Err(BuildError::NoCapacity),
            Some(0) => return Err(BuildError::ZeroCapacity),
            Some(capacity) => capacity,
        };
        // The tightest arena's budget, which the defaults below scale down to.
        let budget = arenas.iter().filter_map(|arena| arena.limit()).min();
        let shards = self
            .settings
            .shards
            .unwrap_or_else(|| default_shards(super::cpus(), W::UNIT.then_some(capacity)));
        if shards == 0 {
            return Err(BuildError::ZeroShards);
        }
        if !shards.is_power_of_two() {
            return Err(BuildError::ShardsNotPowerOfTwo { shards });
        }
        let l1_entries = self.settings.l1_entries.unwrap_or_else(|| {
            // An eighth of the capacity, and on a budget as many copies as an eighth of it
            // holds (a copy's node, with a margin for those retired and not yet freed).
            let copy = L1::<K, Stamped<V>, ()>::node_layout().size() * 5 / 4;
            let by_budget = budget.map_or(usize::MAX, |budget| budget / 8 / copy.max(1));
            usize::try_from(capacity / 8)
                .unwrap_or(usize::MAX)
                .min(by_budget)
                .clamp(7, 1 << 16)
        });
        let l1_on = l1_entries > 0;
        let replicas = if self.settings.per_socket_l1.unwrap_or(true) {
            nodes
        } else {
            1
        };
        // Off, L1 is one set that nothing is ever copied into.
        let mut l1 = L1::<K, Stamped<V>, ()>::with_replicas(l1_entries.max(1), replicas, ())?;
        // L1's nodes come from the arenas too (replica r's from arena r, on a lane of its own).
        if l1_on && !arenas.is_empty() {
            for replica in 0..replicas {
                let arena = Arc::clone(&arenas[replica % arenas.len()]);
                let lane = stratacache_alloc::LANES - 1 - replica % stratacache_alloc::LANES;
                // On a budget, the copies' room is set aside now: L2 fills whatever a budget
                // leaves, and an L1 that asked only when it promotes would find nothing.
                if arena.limit().is_some() {
                    let _ = arena.reserve(L1::<K, Stamped<V>, ()>::node_layout(), l1_entries);
                }
                l1.nodes_in(replica, arena, lane);
            }
        }
        let l2 = TableBuilder {
            capacity,
            shards,
            arenas,
            weigher: self.weigher,
            make_policy: self.make_policy,
            promote_after: self.settings.promote_after,
            stripes: super::cpus().next_power_of_two().min(8),
            // An `Expiry`'s deadlines are the entries' own, which reads may move.
            idling: self.settings.time_to_idle.is_some() || self.settings.expiry.is_some(),
            refreshing: self.settings.refresh_after_write.is_some(),
        }
        .build();
        let locator = self.settings.locator.or_else(default_locator);

        let placement = Placement::new(&topology, locator);
        #[cfg(all(feature = "std", not(loom)))]
        if replicas > 1 {
            let placement = placement.clone();
            l1.set_replica_of_thread(Box::new(move || placement.replica_of_current_thread()));
        }
        #[cfg(all(feature = "std", target_os = "linux", not(loom)))]
        if replicas > 1 {
            // Each replica's memory on its node: best effort (whole pages only, and a kernel
            // without NUMA support refuses, which changes nothing but placement).
            for (replica, node) in topology.nodes().iter().enumerate() {
                let _ = stratacache_platform::bind_to_node(
                    l1.replica_sets(replica),
                    node.id(),
                    stratacache_platform::Binding::Preferred,
                );
            }
        }
        let stripes = 4 * super::cpus();
        let shards = l2.shard_count();
        let cache = Shared {
            l1,
            l1_on,
            placement,
            l2,
            hash_builder: self.hash_builder,
            promote_after: self.settings.promote_after,
            promote_again: usize::from(self.settings.promote_after / 2).next_power_of_two() - 1,
            default_ttl: self.settings.time_to_live.map(nanos),
            idle: self.settings.time_to_idle.map(nanos),
            refresh: self.settings.refresh_after_write.map(nanos),
            expiry: self.settings.expiry,
            expiring: AtomicU8::new(u8::from(timed)),
            clock: self.settings.clock,
            listener: self.settings.listener,
            stats: Counters::new(stripes),
            flights: Flights::new(shards),
            health: super::health::Watch::new(self.settings.health),
            #[cfg(feature = "metrics")]
            metrics_name: self.settings.metrics_name,
            #[cfg(feature = "metrics")]
            metrics_on: self.settings.metrics_name.is_some(),
            #[cfg(feature = "persistent")]
            l3: None,
        };
        // A budget too small for the indexes only means they grow later.
        if budget.is_some() {
            let _ = cache.size_indexes();
        }
        if self.settings.preallocate {
            let on_arena = !cache.l2.arenas().is_empty();
            if cache.preallocate().is_err() && !on_arena {
                return Err(BuildError::AllocationFailed {
                    bytes: usize::try_from(capacity)
                        .unwrap_or(usize::MAX)
                        .saturating_mul(core::mem::size_of::<(K, V)>()),
                });
            }
        }
        Ok(cache)
    }
}

/// The topology when none is given: sysfs under `std` on Linux (one node if it cannot be read).
fn default_topology() -> Topology {
    // Not under Miri, whose isolation refuses to open files.
    #[cfg(all(feature = "std", target_os = "linux", not(miri)))]
    if let Ok(topology) = Topology::from_sysfs() {
        return topology;
    }
    Topology::single_node(u32::try_from(super::cpus()).unwrap_or(1))
}

/// The locator when none is given: `sched_getcpu` under `std` on Linux.
fn default_locator() -> Option<Locator> {
    // Not under Miri, which has no `sched_getcpu`.
    #[cfg(all(feature = "std", target_os = "linux", not(miri)))]
    return Some(Arc::new(stratacache_platform::OsCpu));
    #[cfg(not(all(feature = "std", target_os = "linux", not(miri))))]
    return None;
}

/// Which L1 replica a thread reads: its node's, found through the locator.
#[derive(Clone)]
pub(crate) struct Placement {
    /// The replica of each CPU (by CPU number; CPUs of no node read replica 0).
    replica_of_cpu: Arc<[u16]>,
    locator: Option<Locator>,
}

impl Placement {
    fn new(topology: &Topology, locator: Option<Locator>) -> Self {
        let cpus = topology
            .nodes()
            .iter()
            .flat_map(|node| node.cpus().iter().copied())
            .max()
            .map_or(0, |cpu| cpu as usize + 1);
        let mut map = alloc::vec![0u16; cpus];
        for (replica, node) in topology.nodes().iter().enumerate() {
            for &cpu in node.cpus() {
                map[cpu as usize] = u16::try_from(replica).unwrap_or(0);
            }
        }
        Self {
            replica_of_cpu: map.into(),
            locator,
        }
    }

    /// The replica the calling thread reads (0 without a locator, or for an unknown CPU).
    pub(crate) fn replica_of_current_thread(&self) -> usize {
        self.locator
            .as_ref()
            .and_then(|locator| locator.current_cpu())
            .and_then(|cpu| self.replica_of_cpu.get(cpu as usize))
            .map_or(0, |&replica| usize::from(replica))
    }
}

/// One arena per node of `topology`, each with `budget` bytes (if any): over the global
/// allocator, its chunks bound to the node under `std` on Linux (a node the kernel cannot bind
/// to, such as one of a simulated topology, gets unbound chunks: placement is only a hint).
fn node_arenas(topology: &Topology, budget: Option<usize>) -> Result<Vec<Arc<Arena>>, BuildError> {
    topology
        .nodes()
        .iter()
        .map(|node| {
            let builder = Arena::builder().source(node_source(node.id()));
            let builder = match budget {
                Some(bytes) => builder.budget(bytes),
                None => builder,
            };
            builder.build().map(Arc::new).map_err(BuildError::Memory)
        })
        .collect()
}

/// Chunks from the global allocator bound to `node` where the kernel can bind them (under `std`
/// on Linux), unbound otherwise.
#[cfg_attr(
    not(all(feature = "std", target_os = "linux")),
    allow(unused_variables)
)]
fn node_source(node: u32) -> stratacache_alloc::ChunkSource {
    #[cfg(all(feature = "std", target_os = "linux"))]
    if let Ok(source) = stratacache_alloc::ChunkSource::global_on_node(node) {
        return source;
    }
    stratacache_alloc::ChunkSource::global()
}
