//! Eviction and admission policies for the shards of the L2 tier.
//!
//! A policy sees entries only as [`SlotId`]s (indices into the shard's arena) and keeps its
//! per-entry state (its [`Meta`](Policy::Meta)) in an array the shard keeps beside the
//! entries. Every call has exclusive access: readers of a concurrent shard never touch the
//! policy. They mark the entry they hit and, for the hits the policy asks to hear of
//! ([`Policy::hit_reports`]), record the key's hash in a lossy per-thread buffer; the shard's
//! next writer replays the records through [`Policy::on_access`]. A use the policy was not
//! told of (one it did not ask for, a lost record, or a hit on the entry's L1 copy) shows as
//! [`Entries::referenced`] when the policy asks, typically before evicting.
//!
//! The shard never decides what to evict: it asks [`evict`](Policy::evict) for a victim when
//! its owner is over budget. Policies are told each entry's [`Priority`]: with
//! `spare_critical` set they must not choose a `Critical` entry, and they should choose an
//! entry that [has expired](Entries::is_expired) before any other.
//!
//! [`Harness`] drives one policy single-threaded, each hit told at once: the trace simulator
//! measures policies with it.

mod clock;
mod harness;
mod list;
mod wtinylfu;
// The policies beside the default and CLOCK (the `policies` feature).
#[cfg(feature = "policies")]
mod arc;
#[cfg(feature = "policies")]
mod lfu;
#[cfg(feature = "policies")]
mod lru;
#[cfg(feature = "policies")]
mod predictive;
#[cfg(feature = "policies")]
mod probation_clock;
#[cfg(feature = "policies")]
mod s3fifo;
#[cfg(feature = "policies")]
mod sieve;

pub use clock::{ClockPolicy, Meta as ClockMeta};
pub use harness::{Evicted, Harness};
pub use wtinylfu::{Adaptation, Meta as WTinyLfuMeta, WTinyLfu, WindowTuning};

#[cfg(feature = "policies")]
pub use arc::{ArcPolicy, Meta as ArcMeta};
#[cfg(feature = "policies")]
pub use lfu::{Lfu, Meta as LfuMeta};
#[cfg(feature = "policies")]
pub use lru::{Lru, Meta as LruMeta};
#[cfg(feature = "policies")]
pub use predictive::{Meta as PredictiveMeta, Predictive};
#[cfg(feature = "policies")]
pub use probation_clock::{Meta as ProbationMeta, ProbationClock};
#[cfg(feature = "policies")]
pub use s3fifo::{Meta as S3FifoMeta, S3Fifo};
#[cfg(feature = "policies")]
pub use sieve::{Meta as SieveMeta, Sieve};

pub use crate::entry::Priority;

#[cfg(all(test, feature = "policies"))]
mod compared_tests;
#[cfg(test)]
mod tests;

/// Where a policy keeps per-key state in blocks of 64 bytes, for a reader to prefetch
/// ([`Policy::key_hint`]). Only an address: it is never read through.
#[derive(Clone, Copy, Debug)]
pub struct KeyHint {
    pub(crate) base: usize,
    pub(crate) mask: usize,
    pub(crate) block_of: fn(u64) -> usize,
}

impl KeyHint {
    /// No state worth prefetching.
    pub const NONE: Self = Self {
        base: 0,
        mask: 0,
        block_of: |_| 0,
    };

    /// Blocks of 64 bytes from address `base`, `mask + 1` of them (a power of two); `hash`'s
    /// is `block_of(hash) & mask`.
    pub(crate) fn new(base: usize, mask: usize, block_of: fn(u64) -> usize) -> Self {
        Self {
            base,
            mask,
            block_of,
        }
    }
}

/// The policy a [`Cache`](crate::Cache) and a [`Harness`] use unless told otherwise: W-TinyLFU with an adaptive window,
/// chosen on the shared traces (`benches/HIT_RATIO.md`) as the one that is never far from the
/// best policy on any of them.
pub type DefaultPolicy = WTinyLfu;

/// Which hits a policy is told of through [`Policy::on_access`] ([`Policy::hit_reports`]).
///
/// Telling costs the reader a record and the writer a replay for every hit; a policy that
/// learns enough from the mark a hit leaves ([`Entries::referenced`], asked when its hand
/// reaches the entry) can ask for none, or only for a sample of keys it models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitReports {
    /// Every hit; a hit told consumes the entry's mark.
    All,
    /// Hits on the keys whose [`EntryInfo::hash`] has its `shift` bits from bit 40 up all
    /// zero (one key in `2^shift`). They are told for the policy's model of itself: the mark
    /// stays for the hand.
    Sampled {
        /// The sample's size: one key in `2^shift`.
        shift: u8,
    },
    /// None: the policy reads the marks only.
    Nothing,
}

impl HitReports {
    /// Whether a hit on a key of `hash` is told.
    #[inline]
    pub fn wants(self, hash: u64) -> bool {
        match self {
            Self::All => true,
            Self::Sampled { shift } => (hash >> 40) & ((1 << shift) - 1) == 0,
            Self::Nothing => false,
        }
    }
}

/// The index of an entry in a shard's arena. Ids are reused after an entry leaves.
pub type SlotId = u32;

/// What a policy learns about an entry when it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The key's hash (admission policies remember hashes of evicted keys).
    pub hash: u64,
    /// The entry's weight (1 per entry when the cache counts entries).
    pub weight: u64,
    /// How much the entry matters.
    pub priority: Priority,
    /// Whether the caller storing it had just missed the same key (a read-through: `get`,
    /// miss, `insert`), as far as the cache could tell: a policy that models its callers
    /// learns from it whether they store what they miss.
    pub follows_miss: bool,
}

impl EntryInfo {
    /// Information for an entry of `hash`, `weight` and `priority`, stored without a miss
    /// before it.
    pub const fn new(hash: u64, weight: u64, priority: Priority) -> Self {
        Self {
            hash,
            weight,
            priority,
            follows_miss: false,
        }
    }

    /// Whether the entry is `Critical` (policies keep those apart).
    pub const fn is_critical(&self) -> bool {
        matches!(self.priority, Priority::Critical)
    }

    /// The same, stored by a caller that had just missed the key (or not).
    #[must_use]
    pub const fn following_miss(mut self, follows_miss: bool) -> Self {
        self.follows_miss = follows_miss;
        self
    }
}

/// The policy's view of a shard's entries: each entry's policy state (kept by the shard in an
/// array beside the entries, which only the shard's writer touches), hash, weight, whether it
/// has expired, and whether it was used since the policy last asked.
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
    /// Whether entry `id` was used since this was last asked, in a way the policy has not been
    /// told of through [`Policy::on_access`]: a hit it did not ask to hear of, a hit whose
    /// record was lost, or a use of its copy in the tiered cache's L1. Asking consumes the
    /// use: a CLOCK hand asks before evicting an entry and gives it a second chance if so.
    fn referenced(&mut self, id: SlotId) -> bool;
}

/// A shard-level eviction and admission policy. See the [module docs](self) for who calls
/// what.
///
/// Every method runs with exclusive access: in a concurrent table, under its shard's writer
/// lock. Hits do not call the policy as they happen: the table records them and replays them
/// through [`on_access`](Self::on_access) in batches (a use whose record was lost shows as
/// [`Entries::referenced`]).
pub trait Policy: Send + Sized {
    /// Per-entry state, kept by the shard beside the entry (`Default` for a new entry).
    type Meta: Default + Send;

    /// The most entries one shard of this policy may hold: slot ids stay below it (a policy
    /// may pack bits beside the ids in its state). A shard refuses more as out of memory.
    const MAX_SLOTS: usize = u32::MAX as usize;

    /// A new entry was stored at `id`.
    fn on_insert(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId, info: EntryInfo);

    /// Where the policy keeps the state an insertion of a key reads first (W-TinyLFU: its
    /// frequency counters), published for readers, which cannot see the policy: a lookup that
    /// misses prefetches it, so the insertion that usually follows finds it in cache.
    fn key_hint(&self) -> KeyHint {
        KeyHint::NONE
    }

    /// Entry `id` was used (a hit), one of those [`hit_reports`](Self::hit_reports) asks for.
    fn on_access(&mut self, entries: &mut impl Entries<Self::Meta>, id: SlotId);

    /// Which hits the policy is told of through [`on_access`](Self::on_access) (asked after
    /// each exclusive call, so it may change). By default, all.
    fn hit_reports(&self) -> HitReports {
        HitReports::All
    }

    /// The entry at `old` had its value replaced and now lives at `new` (the same id in a
    /// single-threaded table; a new one in a concurrent table, whose readers may still see
    /// the old value at `old`). `new`'s state is `old`'s, moved; the policy updates what
    /// points at `old`. Its weight went from `old_weight` to `info.weight` and its priority may
    /// have changed. Counts as a use.
    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Self::Meta>,
        old: SlotId,
        new: SlotId,
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

    /// A hint that the shard will hold about `entries` entries: a policy may size its history
    /// for them now instead of growing it while the shard fills. By default, nothing.
    fn reserve(&mut self, entries: usize) {
        let _ = entries;
    }

    /// The policies of a table of `shards` shards, each made by `make`: a policy that learns
    /// from requests may link them here, so that many small shards learn as fast as one large
    /// one (W-TinyLFU's window sizer does). By default, each its own.
    fn for_table(shards: usize, mut make: impl FnMut() -> Self) -> alloc::vec::Vec<Self> {
        (0..shards).map(|_| make()).collect()
    }

    /// Forgets every entry (and any history).
    fn clear(&mut self);

    /// Heap bytes the policy holds beside the per-entry state (history such as a ghost set),
    /// for the cache's memory statistics.
    fn heap_bytes(&self) -> usize {
        0
    }
}
