//! Eviction and admission policies for an L2 [`Shard`](super::Shard).
//!
//! A policy sees entries only as [`SlotId`]s (indices into the shard's arena) and keeps its
//! per-entry state in the entry's slot (its [`Meta`](Policy::Meta)). The shard calls it:
//!
//! - [`on_hit`](Policy::on_hit) with **shared** access, from a lookup that holds only the
//!   shard's read lock: implementations may only touch atomics (a CLOCK counter bump);
//! - everything else with exclusive access (the shard's write lock).
//!
//! The shard never decides what to evict: it asks [`evict`](Policy::evict) for a victim when
//! its owner (the sharded L2) is over budget. Policies are told each entry's [`Priority`]:
//! with `spare_critical` set they must not choose a `Critical` entry, and they should choose
//! an entry that [has expired](Entries::is_expired) before any other.

mod arc;
mod clock;
mod evidence;
mod lfu;
mod list;
mod lru;
mod predictive;
mod probation_clock;
mod s3fifo;
mod sieve;
mod sketch;
mod window;
mod wtinylfu;

pub use arc::{Arc, Meta as ArcMeta};
pub use clock::{Clock, Meta as ClockMeta};
pub use lfu::{Lfu, Meta as LfuMeta};
pub use lru::{Lru, Meta as LruMeta};
pub use predictive::{Meta as PredictiveMeta, Predictive};
pub use probation_clock::{Meta as ProbationMeta, ProbationClock};
pub use s3fifo::{Meta as S3FifoMeta, S3Fifo};
pub use sieve::{Meta as SieveMeta, Sieve};
pub use window::WindowTuning;
pub use wtinylfu::{Meta as WTinyLfuMeta, WTinyLfu};

pub use crate::entry::Priority;

/// The policy a [`Cache`](crate::Cache), an [`L2`](crate::l2::L2) and a
/// [`Shard`](crate::l2::Shard) use unless told otherwise: W-TinyLFU with an adaptive window,
/// chosen on the shared traces (`benches/HIT_RATIO.md`) as the one that is never far from the
/// best policy on any of them.
pub type DefaultPolicy = WTinyLfu;
use crate::sync::{AtomicU8, Ordering};

/// The index of an entry in a shard's arena. Ids are reused after an entry leaves.
pub type SlotId = u32;

/// What a policy learns about an entry when it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The key's 64-bit hash (admission policies remember hashes of evicted keys).
    pub hash: u64,
    /// The entry's weight (1 per entry when the cache counts entries).
    pub weight: u64,
    /// How much the entry matters.
    pub priority: Priority,
}

impl EntryInfo {
    /// Information for an entry of `hash`, `weight` and `priority`.
    pub const fn new(hash: u64, weight: u64, priority: Priority) -> Self {
        Self {
            hash,
            weight,
            priority,
        }
    }
}

/// The policy's view of a shard's entries: each entry's policy state (kept inside the entry's
/// slot, so a lookup touches one place), hash, weight and whether it has expired.
pub trait Entries<M> {
    /// The state of entry `id`.
    fn meta(&self, id: SlotId) -> &M;
    /// The state of entry `id`, for changing.
    fn meta_mut(&mut self, id: SlotId) -> &mut M;
    /// The hash of entry `id`'s key.
    fn hash(&self, id: SlotId) -> u64;
    /// The weight of entry `id`.
    fn weight(&self, id: SlotId) -> u64;
    /// Whether entry `id`'s time to live has run out (it will never be returned again).
    fn is_expired(&self, id: SlotId) -> bool;
    /// Whether entry `id` was used in a tier above this one (the tiered cache's L1, whose
    /// hits never reach the shard) since this was last asked; asking consumes that use. A
    /// CLOCK hand asks before evicting an entry whose counter is zero.
    fn used_elsewhere(&mut self, id: SlotId) -> bool;
}

/// A saturating count of an entry's hits, which every policy keeps in its [`Policy::Meta`]
/// (see [`Policy::hit_counter`]); the shard counts. The tiered cache copies an entry into L1
/// once its count reaches the configured number, and relies on the count never going down:
/// an entry whose count is below that number has no L1 copy, so its eviction need not look
/// in L1. One byte; once saturated, a hit no longer writes it.
#[derive(Debug, Default)]
pub struct HitCounter(AtomicU8);

impl HitCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self(AtomicU8::new(0))
    }

    /// Counts a hit, up to `cap`, and returns the hits so far (this one included, at most
    /// `cap`, or the count already saturated by [`saturate`](Self::saturate)). The count
    /// never decreases, even under racing hits; once it has reached `cap` a hit no longer
    /// writes it, so an entry pays at most `cap` read-modify-writes in its life.
    #[inline]
    pub fn record(&self, cap: u8) -> u8 {
        // Relaxed: the count orders nothing; the shard lock orders promotions and evictions.
        let mut seen = self.0.load(Ordering::Relaxed);
        while seen < cap {
            // A read-modify-write (not a load and a store) so that a racing hit cannot write
            // back a smaller count.
            match self
                .0
                .compare_exchange_weak(seen, seen + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return seen + 1,
                Err(now) => seen = now,
            }
        }
        seen
    }

    /// The hits so far.
    #[inline]
    pub fn get(&self) -> u8 {
        // Relaxed: as in `record`.
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the count to its maximum (an entry copied into L1 at insertion).
    pub fn saturate(&self) {
        // Relaxed: as in `record`; callers hold the shard's write lock.
        self.0.store(u8::MAX, Ordering::Relaxed);
    }
}

/// A shard-level eviction and admission policy. See the [module docs](self) for who calls
/// what, and under which access.
pub trait Policy: Send + Sync {
    /// Per-entry state, stored in the entry's slot.
    type Meta: Send + Sync;

    /// The state of a newly stored entry (before [`on_insert`](Self::on_insert) links it).
    fn new_meta(&self) -> Self::Meta;

    /// A lookup hit the entry whose state is `meta` and whose key hashes to `hash`. Runs under
    /// the shard's read lock, concurrently with other hits: only atomic updates are allowed
    /// (to the entry's state or to the policy's own atomics, such as a frequency sketch).
    fn on_hit(&self, meta: &Self::Meta, hash: u64);

    /// A hit on entry `id` by an owner with exclusive access (a single-threaded shard, such as
    /// the trace simulator's): policies that reorder on a hit (LRU) do it here. By default the
    /// same as [`on_hit`](Self::on_hit).
    fn on_access(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId) {
        self.on_hit(entries.meta(id), entries.hash(id));
    }

    /// The entry's hit counter, kept in its state; the shard counts hits with it.
    fn hit_counter(meta: &Self::Meta) -> &HitCounter;

    /// A new entry was stored at `id`.
    fn on_insert(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId, info: EntryInfo);

    /// The entry at `id` had its value replaced; its weight went from `old_weight` to
    /// `info.weight` and its priority may have changed. Counts as a use.
    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Self::Meta>,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    );

    /// The entry at `id` is being removed by the user or because it expired (not evicted);
    /// forget it.
    fn on_remove(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId);

    /// Chooses the next victim, forgets it and returns its id, or `None` when the policy holds
    /// no entry it may choose. With `spare_critical`, `Critical` entries may not be chosen.
    /// Expired entries should be chosen before live ones where the policy meets them.
    fn evict(
        &mut self,
        entries: &mut impl Entries<Self::Meta>,
        spare_critical: bool,
    ) -> Option<SlotId>;

    /// A hint that the shard will hold about `entries` entries (the sharded L2 gives it when
    /// it sizes a shard for a capacity that counts entries): a policy may size its history for
    /// them now instead of growing it while the shard fills. By default, nothing.
    fn reserve(&mut self, entries: usize) {
        let _ = entries;
    }

    /// The sharded L2 built this policy for one of its shards after `first`, its first
    /// shard's, before either holds an entry: a policy that learns from requests may pool
    /// what it learns with the table's other shards, so that many small shards learn as fast
    /// as one large one (W-TinyLFU's window sizer does). By default, nothing.
    fn join(&mut self, first: &mut Self) {
        let _ = first;
    }

    /// Forgets every entry (and any history).
    fn clear(&mut self);

    /// Heap bytes the policy holds beside the per-entry state (history such as a ghost set),
    /// for the cache's memory statistics.
    fn heap_bytes(&self) -> usize {
        0
    }
}
