//! How the L2 table is made: its shard count, each shard's memory, policy and segment size.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crossbeam_utils::CachePadded;
use stratacache_alloc::{Arena, MemoryHandle};

use super::policy::Policy;
use super::raw::Shape;
use super::shard::Shard;
use super::table::Table;
use super::weigher::Weigher;

/// Entries a default shard is given at least (counting entries): the default policy's window,
/// sketch and window sizing need a few hundred entries to judge well, and a small cache gains
/// nothing from more locks than it has hot entries.
const MIN_SHARD_ENTRIES: usize = 256;

/// The default shard count: four per CPU, rounded up to a power of two; when the capacity
/// counts entries, no more than leave each shard [`MIN_SHARD_ENTRIES`].
pub(crate) fn default_shards(cpus: usize, entries: Option<u64>) -> usize {
    let by_cpus = (cpus * 4).next_power_of_two().min(1 << 12);
    match entries {
        Some(entries) => {
            let most = usize::try_from(entries / MIN_SHARD_ENTRIES as u64)
                .unwrap_or(usize::MAX)
                .max(1);
            // The largest power of two not above `most`.
            by_cpus.min(1 << most.ilog2())
        }
        None => by_cpus,
    }
}

/// The segment size (log2) of a shard expecting about `entries`: an eighth of them a segment,
/// so a growing shard holds at most an eighth more slots than entries, between 32 and 4 096
/// slots a segment (a weighted shard, whose entries are unknown, takes 256). On a memory
/// budget, a segment takes at most a sixty-fourth of the shard's share of it (`room` bytes),
/// so a small budget is spent on entries, not on one half-empty segment (at least 4 slots).
pub(crate) fn segment_shift(entries: Option<u64>, room: Option<usize>, slot_bytes: usize) -> u32 {
    let shift = match entries {
        Some(entries) => (entries / 8).max(1).ilog2().clamp(5, 12),
        None => 8,
    };
    match room {
        Some(room) => {
            let slots = (room / 64 / slot_bytes.max(1)).max(4);
            shift.min(slots.ilog2()).max(2)
        }
        None => shift,
    }
}

/// What a table is made of.
pub(crate) struct TableBuilder<W, P> {
    pub(crate) capacity: u64,
    pub(crate) shards: usize,
    pub(crate) arenas: Vec<Arc<Arena>>,
    pub(crate) weigher: W,
    pub(crate) make_policy: fn() -> P,
    pub(crate) promote_after: u8,
    /// Read-buffer stripes per shard.
    pub(crate) stripes: usize,
    /// Whether entries have idle deadlines (a time to idle), which reads move.
    pub(crate) idling: bool,
    /// Whether entries have refresh times (refresh after write), which readers claim.
    pub(crate) refreshing: bool,
}

impl<W, P: Policy> TableBuilder<W, P> {
    /// Makes the table, its shards empty (see [`Table::reserve_each`] to allocate them now).
    pub(crate) fn build<K, V>(self) -> Table<K, V, W, P>
    where
        W: Weigher<K, V>,
    {
        let per_shard = W::UNIT.then(|| {
            let share = self.capacity.div_ceil(self.shards as u64);
            // A margin for uneven hashing.
            share + share / 16 + 8
        });
        // Each arena serves every `arenas.len()`-th shard: a shard's share of the tightest.
        let room = self
            .arenas
            .iter()
            .filter_map(|arena| arena.limit())
            .min()
            .map(|limit| limit / self.shards.div_ceil(self.arenas.len().max(1)));
        let slot_bytes = Shard::<K, V, P>::slot_bytes()
            + if self.idling { 8 } else { 0 }
            + if self.refreshing { 8 } else { 0 };
        let shift = segment_shift(per_shard, room, slot_bytes);
        // On a budget, the most slots a shard's share can hold (L1 takes about an eighth; an
        // index bucket about eight bytes a slot), with a margin for uneven hashing: the index
        // is sized for them once, so it never regrows and leaves the blocks it outgrew to
        // their size classes, holding budget no entry can use.
        let index_ahead = room.map(|room| {
            let slots = room / 8 * 7 / (slot_bytes + 8);
            let slots = slots + slots / 16;
            per_shard.map_or(slots, |entries| {
                slots.min(usize::try_from(entries).unwrap_or(usize::MAX))
            })
        });
        let shape = Shape {
            budgeted: room.is_some(),
            ..Shape::new(
                shift,
                index_ahead.or(per_shard.and_then(|e| usize::try_from(e).ok())),
            )
        };
        let memory = |shard: usize| match self.arenas.len() {
            0 => MemoryHandle::global(),
            n => MemoryHandle::arena(&self.arenas[shard % n], shard),
        };
        let policies = P::for_table(self.shards, self.make_policy);
        let shards: Box<[CachePadded<Shard<K, V, P>>]> = policies
            .into_iter()
            .enumerate()
            .map(|(at, mut policy)| {
                // The policy learns the size it is for (a hint: it allocates little for it).
                if let Some(entries) = per_shard {
                    policy.reserve(usize::try_from(entries).unwrap_or(usize::MAX));
                }
                CachePadded::new(Shard::new(
                    policy,
                    !W::UNIT,
                    shape,
                    memory(at),
                    self.stripes,
                    self.idling,
                    self.refreshing,
                ))
            })
            .collect();
        Table::new(
            shards,
            self.weigher,
            self.capacity,
            self.arenas,
            self.promote_after,
            per_shard,
            index_ahead,
        )
    }
}
