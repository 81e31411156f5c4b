//! Eviction and admission policies for an L2 [`Shard`](super::Shard).
//!
//! A policy sees entries only as [`SlotId`]s (indices into the shard's arena) and keeps its own
//! per-entry state. The shard calls it:
//!
//! - [`on_hit`](Policy::on_hit) with **shared** access, from a lookup that holds only the
//!   shard's read lock: implementations may only touch atomics (a CLOCK counter bump);
//! - everything else with exclusive access (the shard's write lock).
//!
//! The shard never decides what to evict: it asks [`evict`](Policy::evict) for a victim when
//! its owner (the sharded L2) is over budget.

mod probation_clock;

pub use probation_clock::{Meta as ProbationMeta, ProbationClock};

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
}

impl EntryInfo {
    /// Information for an entry of `hash` and `weight`.
    pub const fn new(hash: u64, weight: u64) -> Self {
        Self { hash, weight }
    }
}

/// The policy's view of a shard's entries: each entry's policy state (kept inside the entry's
/// slot, so a lookup touches one place), hash and weight.
pub trait Entries<M> {
    /// The state of entry `id`.
    fn meta(&self, id: SlotId) -> &M;
    /// The state of entry `id`, for changing.
    fn meta_mut(&mut self, id: SlotId) -> &mut M;
    /// The hash of entry `id`'s key.
    fn hash(&self, id: SlotId) -> u64;
    /// The weight of entry `id`.
    fn weight(&self, id: SlotId) -> u64;
}

/// A shard-level eviction and admission policy. See the [module docs](self) for who calls
/// what, and under which access.
pub trait Policy: Send + Sync {
    /// Per-entry state, stored in the entry's slot.
    type Meta: Send + Sync;

    /// The state of a newly stored entry (before [`on_insert`](Self::on_insert) links it).
    fn new_meta(&self) -> Self::Meta;

    /// A lookup hit the entry whose state is `meta`. Runs under the shard's read lock,
    /// concurrently with other hits: only atomic updates are allowed.
    fn on_hit(meta: &Self::Meta);

    /// A new entry was stored at `id`.
    fn on_insert(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId, info: EntryInfo);

    /// The entry at `id` had its value replaced; its weight went from `old_weight` to
    /// `info.weight`. Counts as a use.
    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Self::Meta>,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    );

    /// The entry at `id` is being removed by the user (not evicted); forget it.
    fn on_remove(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId);

    /// Chooses the next victim, forgets it and returns its id, or `None` when the policy holds
    /// no entry.
    fn evict(&mut self, entries: &mut impl Entries<Self::Meta>) -> Option<SlotId>;

    /// Forgets every entry (and any history).
    fn clear(&mut self);
}
