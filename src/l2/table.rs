//! The L2 table: power-of-two shards, with capacity enforced over the whole table.
//!
//! - Lookups take no lock: a shard's readers probe its index and read its slots in place
//!   under the caller's epoch ([`Table::get`]).
//! - Insertions and removals take one shard's writer lock. An insertion adds its weight to a
//!   table-wide total and evicts until the total is within the capacity again: first from its
//!   own shard (while that shard holds anything besides the new entry), then from the others.
//!   So the table exceeds its capacity by at most one in-flight entry per inserting thread, and
//!   an entry may weigh as much as the whole capacity, not one shard's share.
//! - What leaves (evicted, replaced, removed) stays readable for the operation's epoch, so its
//!   caller can show it to a listener after the locks are released; it is dropped later, at a
//!   quiet point ([`Table::reclaim`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::borrow::Borrow;

use crossbeam_utils::CachePadded;
use stratacache_alloc::Arena;

use super::policy::{EntryInfo, Policy, Priority};
use super::raw::{Epoch, Found, OutOfMemory, Retired, retired_wait_for_drop};
use super::shard::{Replaced, Shard, ShardWriter, Victim, info};
use super::tiers::Tiers;
use super::weigher::Weigher;
use crate::entry::RemovalCause;
use crate::error::InsertError;
use crate::sync::{AtomicUsize, Ordering};

pub(crate) use super::raw::NEVER;

/// How an entry is stored, beyond its key and value.
#[derive(Clone, Copy)]
pub(crate) struct StoreAs {
    /// Its weight, or `None` to ask the weigher.
    pub(crate) weight: Option<u64>,
    pub(crate) priority: Priority,
    /// Its deadline on the cache's clock ([`NEVER`] for none).
    pub(crate) expires: u64,
    /// Its idle deadline ([`NEVER`] for none), in a table built to keep them.
    pub(crate) idle: u64,
    /// Its refresh time ([`NEVER`] for none), in a table built to keep them.
    pub(crate) refresh: u64,
    /// The clock now (0 when no entry can expire), for choosing expired victims first.
    pub(crate) now: u64,
    /// Whether the caller had just missed the key ([`EntryInfo::follows_miss`]).
    ///
    /// [`EntryInfo::follows_miss`]: crate::policy::EntryInfo::follows_miss
    pub(crate) follows_miss: bool,
}

/// Victims listed without allocating: an insertion usually evicts one, a heavy entry among
/// light ones more, listed beyond these on the global allocator. (Few, so that what an
/// insertion hands back stays small enough to move in registers and a few stores.)
const INLINE_VICTIMS: usize = 2;

/// Entries an insertion refused for want of memory evicts, so that later ones find room.
const RESERVE: usize = 16;

/// A victim: the shard it left, its retired slot and why it left (16 bytes).
struct Listed<'g, K, V, P: Policy> {
    shard: &'g Shard<K, V, P>,
    retired: Retired<'g>,
    cause: RemovalCause,
}

/// Entries one insertion evicted, each with its shard: readable for the insertion's epoch.
pub(crate) struct Victims<'g, K, V, P: Policy> {
    first: [Option<Listed<'g, K, V, P>>; INLINE_VICTIMS],
    more: Vec<Listed<'g, K, V, P>>,
}

impl<'g, K, V, P: Policy> Victims<'g, K, V, P> {
    fn new() -> Self {
        Self {
            first: [const { None }; INLINE_VICTIMS],
            more: Vec::new(),
        }
    }

    fn push(&mut self, shard: &'g Shard<K, V, P>, victim: Victim<'g>) {
        let listed = Listed {
            shard,
            retired: victim.retired,
            cause: victim.cause,
        };
        match self.first.iter_mut().find(|place| place.is_none()) {
            Some(place) => *place = Some(listed),
            None => self.more.push(listed),
        }
    }

    /// Each victim's key, value and why it left.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'g K, &'g V, RemovalCause)> + '_ {
        self.first
            .iter()
            .map_while(Option::as_ref)
            .chain(self.more.iter())
            .map(|listed| {
                let (key, value) = listed.shard.retired_entry(&listed.retired);
                (key, value, listed.cause)
            })
    }
}

/// What an insertion did: the entry replaced (if any), the entries evicted, or the entry
/// refused when its shard's memory could not hold it even after evicting everything else.
pub(crate) struct Inserted<'g, K, V, P: Policy> {
    /// The replaced entry's key and value (readable for the epoch) and its deadline.
    pub(crate) replaced: Option<(&'g K, &'g V, u64)>,
    pub(crate) victims: Victims<'g, K, V, P>,
    pub(crate) refused: Option<(K, V)>,
    /// An entry retired earlier whose slot this insertion reused: dropped with this, outside
    /// every lock.
    pub(crate) _leftover: Option<(K, V)>,
}

/// One shard on cache lines of its own.
type Padded<K, V, P> = CachePadded<Shard<K, V, P>>;

/// The sharded L2 table. See the [module docs](self).
pub(crate) struct Table<K, V, W, P: Policy> {
    shards: Box<[Padded<K, V, P>]>,
    shard_mask: usize,
    weigher: W,
    capacity: u64,
    weight: CachePadded<AtomicUsize>,
    arenas: Vec<Arc<Arena>>,
    promote_after: u8,
    /// The entries a shard is expected to hold, when the capacity counts entries.
    per_shard: Option<u64>,
    /// The slots a shard's index is sized for when the table is made (on a memory budget).
    index_ahead: Option<usize>,
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
    /// A change of weight not added to the table's total yet.
    pending: i64,
}

/// An entry a lookup found, and the shard it is in.
pub(crate) type Hit<'g, K, V, P> = (Found<'g, K, V>, &'g Shard<K, V, P>);

impl<K, V, W, P: Policy> Table<K, V, W, P> {
    /// A table of `shards` (a non-empty power of two, each made already) of `capacity` weight.
    pub(crate) fn new(
        shards: Box<[Padded<K, V, P>]>,
        weigher: W,
        capacity: u64,
        arenas: Vec<Arc<Arena>>,
        promote_after: u8,
        per_shard: Option<u64>,
        index_ahead: Option<usize>,
    ) -> Self {
        debug_assert!(shards.len().is_power_of_two());
        Self {
            shard_mask: shards.len() - 1,
            shards,
            weigher,
            capacity,
            weight: CachePadded::new(AtomicUsize::new(0)),
            arenas,
            promote_after,
            per_shard,
            index_ahead,
        }
    }

    /// Sizes every shard's index for the slots its share of a memory budget can hold (nothing
    /// to do without a budget).
    ///
    /// # Errors
    /// When the budget refuses an index; the shards that got theirs keep them.
    pub(crate) fn size_indexes(&self, epoch: &Epoch<'_>) -> Result<(), OutOfMemory> {
        let Some(slots) = self.index_ahead else {
            return Ok(());
        };
        for shard in self.shards.iter() {
            shard.lock(self.promote_after).size_index(slots, epoch)?;
        }
        Ok(())
    }

    /// Allocates every shard's room for its share of a capacity that counts entries now, so
    /// a full cache never grows a shard (nothing to do for a weighted one).
    ///
    /// # Errors
    /// When the memory refuses; shards got what it gave.
    pub(crate) fn reserve_each(&self, epoch: &Epoch<'_>) -> Result<(), OutOfMemory> {
        let Some(entries) = self.per_shard else {
            return Ok(());
        };
        let entries = usize::try_from(entries).map_err(|_| OutOfMemory)?;
        for shard in self.shards.iter() {
            shard.lock(self.promote_after).reserve(entries, epoch)?;
        }
        Ok(())
    }

    /// The capacity (the most the entries may weigh together).
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The entries' total weight now.
    pub(crate) fn weighted_size(&self) -> u64 {
        // Relaxed: a moment's view.
        self.weight.load(Ordering::Relaxed) as u64
    }

    /// The arenas the shards allocate from (shard `i` from arena `i % len`); empty for the
    /// global allocator.
    pub(crate) fn arenas(&self) -> &[Arc<Arena>] {
        &self.arenas
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of a key of `hash`: bits 32 and up (L1 sets and the shards' indexes use the
    /// low 32).
    #[inline]
    pub(crate) fn shard_of(&self, hash: u64) -> &Shard<K, V, P> {
        &self.shards[(hash >> 32) as usize & self.shard_mask]
    }

    /// The number of entries (takes every shard's lock in turn: a moment's view).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock(self.promote_after).len())
            .sum()
    }

    /// Heap bytes the table holds (takes every shard's lock in turn).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shards.len() * core::mem::size_of::<Padded<K, V, P>>()
            + self.shards.iter().map(|s| s.heap_bytes()).sum::<usize>()
    }

    /// Entries retired and not reclaimed yet, in every shard.
    pub(crate) fn retired(&self) -> usize {
        self.shards.iter().map(|s| s.retired()).sum()
    }

    /// Whether retired entries of this table can wait to be dropped at all (only if keys or
    /// values have drop glue: see `raw`).
    pub(crate) const fn may_wait_for_drop() -> bool {
        retired_wait_for_drop::<K, V>()
    }

    /// Drops up to `max` retired entries no reader can see any more, from every shard (their
    /// `Drop` runs here: hold no lock). Returns how many.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        // Nothing waits to be dropped (see `raw`): every write's end need not look at every
        // shard.
        if !Self::may_wait_for_drop() {
            return 0;
        }
        let mut freed = 0;
        for shard in self.shards.iter() {
            if freed == max {
                break;
            }
            freed += shard.reclaim(max - freed);
        }
        freed
    }

    /// Every entry shard `shard` indexes, as a reader sees them: no lock, each entry live at
    /// some moment of the walk (expired or not: the caller decides).
    pub(crate) fn for_each_live_in<'g>(
        &'g self,
        shard: usize,
        epoch: &Epoch<'g>,
        f: impl FnMut(Found<'g, K, V>),
    ) {
        self.shards[shard].for_each_live(epoch, f);
    }

    /// A quiet point's hand-over: every shard's retired entries waiting in limbo go to the
    /// collector (see `raw`), so that a cache written no more still frees them.
    pub(crate) fn hand_over(&self, epoch: &Epoch<'_>) {
        for shard in self.shards.iter() {
            shard.hand_over(epoch);
        }
    }

    /// Whether the table is over budget once `pending` (a change not yet added to the total)
    /// is counted.
    fn over_budget_with(&self, pending: i64) -> bool {
        // Relaxed: the total is a budget, not a synchronisation point; the shard locks order
        // the entries themselves.
        let weight = self.weight.load(Ordering::Relaxed) as u64;
        match u64::try_from(pending) {
            Ok(more) => weight
                .checked_add(more)
                .is_none_or(|total| total > self.capacity),
            Err(_) => weight.saturating_sub(pending.unsigned_abs()) > self.capacity,
        }
    }

    fn over_budget(&self) -> bool {
        self.over_budget_with(0)
    }

    /// Adds `pending` to the table's total: one read-modify-write, none when it is zero (an
    /// insertion into a full cache that evicts one entry of the same weight writes nothing
    /// shared).
    fn apply(&self, pending: i64) {
        // Relaxed: see `over_budget_with`.
        if pending > 0 {
            self.weight.fetch_add(pending as usize, Ordering::Relaxed);
        } else if pending < 0 {
            self.weight
                .fetch_sub(pending.unsigned_abs() as usize, Ordering::Relaxed);
        }
    }

    /// Evicts from `shard` (locked as `writer`) while the table, counting the pass's pending
    /// weight, is over budget (or the shard short of slots) and the shard holds more than
    /// `keep` entries; then adds the net change to the total (before the shard is unlocked).
    fn evict_from<'g>(
        &self,
        shard: &'g Shard<K, V, P>,
        writer: &mut ShardWriter<'_, K, V, P>,
        evict: Evict,
        victims: &mut Victims<'g, K, V, P>,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) {
        // The first victim in line, the rest (rare: a heavier entry, a shard short of slots)
        // in a loop of their own: a loop here would set up its every iteration's addresses
        // before the first, on the stack, for a pass that usually evicts one entry.
        let mut pending = evict.pending;
        if self.evicts_more(writer, &evict, pending)
            && Self::evict_one(shard, writer, &evict, &mut pending, victims, (epoch, tiers))
            && self.evicts_more(writer, &evict, pending)
        {
            pending = self.evict_rest(shard, writer, &evict, pending, victims, (epoch, tiers));
        }
        self.apply(pending);
    }

    /// Takes one victim from `writer`'s shard for a pass `evict`, counting its weight off
    /// `pending`; whether there was one.
    #[inline(always)]
    fn evict_one<'g>(
        shard: &'g Shard<K, V, P>,
        writer: &mut ShardWriter<'_, K, V, P>,
        evict: &Evict,
        pending: &mut i64,
        victims: &mut Victims<'g, K, V, P>,
        (epoch, tiers): (&Epoch<'g>, &mut impl Tiers<K, V>),
    ) -> bool {
        let Some(victim) = writer.evict(evict.now, evict.spare_critical, epoch, tiers) else {
            return false;
        };
        *pending -= victim.weight as i64;
        victims.push(shard, victim);
        true
    }

    /// Whether a pass `evict` with `pending` weight still to count takes another victim from
    /// `writer`'s shard.
    #[inline(always)]
    fn evicts_more(&self, writer: &ShardWriter<'_, K, V, P>, evict: &Evict, pending: i64) -> bool {
        (self.over_budget_with(pending) || writer.short_of_slots()) && writer.len() > evict.keep
    }

    /// [`evict_from`](Self::evict_from)'s victims after the first: the pending weight left.
    #[inline(never)]
    fn evict_rest<'g>(
        &self,
        shard: &'g Shard<K, V, P>,
        writer: &mut ShardWriter<'_, K, V, P>,
        evict: &Evict,
        mut pending: i64,
        victims: &mut Victims<'g, K, V, P>,
        (epoch, tiers): (&Epoch<'g>, &mut impl Tiers<K, V>),
    ) -> i64 {
        while self.evicts_more(writer, evict, pending)
            && Self::evict_one(shard, writer, evict, &mut pending, victims, (epoch, tiers))
        {
        }
        pending
    }

    /// Gets the shard of a key of `hash` ready for an insertion: if the memory limits it, moves
    /// this thread's retirements on and drops what is reclaimable, so that the insertion finds
    /// a free slot. Runs user code (`Drop`): call it where that may run, holding no lock and no
    /// flight.
    pub(crate) fn prepare_insert(&self, hash: u64, epoch: &Epoch<'_>) {
        let shard = self.shard_of(hash);
        if shard.is_limited() {
            shard.hand_over(epoch);
            epoch.flush();
            shard.reclaim(usize::MAX);
        }
    }

    /// The entry for `key` (of `hash`) and its shard, if present (expired or not: the caller
    /// decides). Takes no lock. Always inlined: a lookup's callers are few and hot (the plain
    /// lookup finds its shard itself, with [`shard_of`](Self::shard_of), to prefetch there
    /// on a miss).
    #[inline(always)]
    pub(crate) fn get<'g, Q>(
        &'g self,
        hash: u64,
        key: &Q,
        epoch: &Epoch<'g>,
    ) -> Option<Hit<'g, K, V, P>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let shard = self.shard_of(hash);
        shard
            .get(hash as u32, key, epoch)
            .map(|found| (found, shard))
    }

    /// Stores `value` for `key` (of `hash`), then evicts until the table is within its
    /// capacity. `after_store` runs with the key's shard still locked, right after the entry
    /// is stored, with its id; `tiers` drops its copies of what leaves (and is asked whether
    /// a candidate was used above L2).
    ///
    /// Eviction spares `Critical` entries as long as anything else can go: first from the
    /// key's shard (keeping the new entry), then from the others, then the new entry itself;
    /// only then, the same passes taking `Critical` entries too.
    ///
    /// # Errors
    /// [`InsertError::TooHeavy`], with the key and value, when the entry alone weighs more
    /// than the capacity (or than `u32::MAX`, the most one entry may weigh).
    #[inline(always)]
    pub(crate) fn insert<'g>(
        &'g self,
        hash: u64,
        (key, value): (K, V),
        how: StoreAs,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
        (after_store, admit): (
            impl FnOnce(&mut ShardWriter<'_, K, V, P>, u32),
            Option<&dyn Fn(bool) -> bool>,
        ),
    ) -> Result<Inserted<'g, K, V, P>, InsertError<K, V>>
    where
        K: Eq,
        W: Weigher<K, V>,
    {
        let weight = match how.weight {
            Some(weight) => weight,
            None => self.weigher.weigh(&key, &value),
        }
        // A zero weight counts as one: nothing may be free of the capacity.
        .max(1);
        let limit = self.capacity.min(u64::from(u32::MAX));
        if weight > limit {
            return Err(InsertError::TooHeavy {
                key,
                value,
                weight,
                limit,
            });
        }
        let home = self.shard_of(hash);
        let h32 = hash as u32;
        let mut victims = Victims::new();
        let pass = |keep, spare_critical, pending| Evict {
            keep,
            spare_critical,
            now: how.now,
            pending,
        };
        let replaced = {
            let mut writer = home.lock(self.promote_after);
            writer.replay(tiers);
            // A conditional store (a value read back from a tier below) asks, under the lock,
            // given whether the key is present; refused, the entry goes back.
            if let Some(admit) = admit
                && !admit(writer.contains(h32, &key))
            {
                return Ok(Inserted {
                    replaced: None,
                    victims,
                    refused: Some((key, value)),
                    _leftover: writer.take_leftover(),
                });
            }
            let before = writer.weight();
            let info = info(h32, weight, how.priority).following_miss(how.follows_miss);
            let deadlines = (how.expires, how.idle, how.refresh);
            let stored = match writer.store(h32, (key, value), info, deadlines, epoch, tiers) {
                Ok(stored) => Ok(stored),
                Err(back) => self.store_spent(
                    (home, &mut writer),
                    (h32, back, info, deadlines),
                    before,
                    how.now,
                    &mut victims,
                    (epoch, tiers),
                ),
            };
            let (id, replaced) = match stored {
                Ok(stored) => stored,
                Err(refused) => {
                    return Ok(Inserted {
                        replaced: None,
                        victims,
                        refused: Some(refused),
                        _leftover: writer.take_leftover(),
                    });
                }
            };
            let added = writer.weight() as i64 - before as i64;
            after_store(&mut writer, id);
            // Keep the new entry if its shard has nothing else to give: others can.
            self.evict_from(
                home,
                &mut writer,
                pass(1, true, added),
                &mut victims,
                epoch,
                tiers,
            );
            (replaced, writer.take_leftover())
        };
        let (replaced, leftover) = replaced;
        // Usually the home shard's pass left the table within budget: nothing more to ask.
        if self.over_budget() {
            self.evict_elsewhere(home, hash, how.now, &mut victims, epoch, tiers);
        }
        Ok(Inserted {
            replaced: replaced.map(|Replaced { retired, expires }| {
                let (key, value) = home.retired_entry(&retired);
                (key, value, expires)
            }),
            victims,
            refused: None,
            _leftover: leftover,
        })
    }

    /// An insertion's store refused for want of memory (the shard's arena is spent): slots
    /// retired earlier come back once their readers are gone and a quiet point reclaims them,
    /// so this thread's retirements move on to the collector and the store is tried once more.
    /// Refused again, the entry comes back and, for a new key, a reserve is evicted so later
    /// insertions find room once it is reclaimed (a replacement refused leaves the key as it
    /// was: the evictions might take it). Out of line: seldom run, and it would lengthen every
    /// insertion's code.
    #[cold]
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn store_spent<'g>(
        &'g self,
        (home, writer): (&'g Shard<K, V, P>, &mut ShardWriter<'_, K, V, P>),
        (h32, entry, info, deadlines): (u32, (K, V), EntryInfo, (u64, u64, u64)),
        before: u64,
        now: u64,
        victims: &mut Victims<'g, K, V, P>,
        (epoch, tiers): (&Epoch<'g>, &mut impl Tiers<K, V>),
    ) -> Result<(u32, Option<Replaced<'g>>), (K, V)>
    where
        K: Eq,
    {
        writer.hand_over(epoch);
        epoch.flush();
        let entry = match writer.store(h32, entry, info, deadlines, epoch, tiers) {
            Ok(stored) => return Ok(stored),
            Err(entry) => entry,
        };
        let present = writer.contains(h32, &entry.0);
        for _ in 0..if present { 0 } else { RESERVE } {
            let Some(victim) = writer.evict(now, false, epoch, tiers) else {
                break;
            };
            victims.push(home, victim);
        }
        self.apply(writer.weight() as i64 - before as i64);
        Err(entry)
    }

    /// The passes after an insertion whose home shard could not bring the table within
    /// budget: evicts from the other shards, then the home shard down to the new entry,
    /// sparing `Critical` entries as long as anything else can go, then not. Out of line:
    /// seldom run.
    #[inline(never)]
    fn evict_elsewhere<'g>(
        &'g self,
        home: &'g Shard<K, V, P>,
        hash: u64,
        now: u64,
        victims: &mut Victims<'g, K, V, P>,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) {
        let pass = |keep, spare_critical| Evict {
            keep,
            spare_critical,
            now,
            pending: 0,
        };
        for spare_critical in [true, false] {
            if !spare_critical && self.over_budget() {
                let mut writer = home.lock(self.promote_after);
                self.evict_from(home, &mut writer, pass(1, false), victims, epoch, tiers);
            }
            for step in 1..self.shards.len() {
                if !self.over_budget() {
                    break;
                }
                let shard = &self.shards[(self.shard_index(hash) + step) & self.shard_mask];
                let mut writer = shard.lock(self.promote_after);
                self.evict_from(
                    shard,
                    &mut writer,
                    pass(0, spare_critical),
                    victims,
                    epoch,
                    tiers,
                );
            }
            if self.over_budget() {
                // Only the new entry (and entries racing in) are left: the budget wins.
                let mut writer = home.lock(self.promote_after);
                self.evict_from(
                    home,
                    &mut writer,
                    pass(0, spare_critical),
                    victims,
                    epoch,
                    tiers,
                );
            }
        }
    }

    fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.shard_mask
    }

    /// Removes `key` and returns its key and value, readable for the epoch; with `only`, only
    /// if the key still lives in that slot (see `Found::id`).
    pub(crate) fn remove<'g, Q>(
        &'g self,
        hash: u64,
        key: &Q,
        only: Option<u32>,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Option<(&'g K, &'g V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let shard = self.shard_of(hash);
        let victim = {
            let mut writer = shard.lock(self.promote_after);
            let Some(victim) = writer.remove(hash as u32, key, only, epoch, tiers) else {
                // Not here: a tier below may still hold the key (under this lock, in order
                // with the key's other writes).
                if only.is_none() {
                    tiers.absent(hash, key);
                }
                return None;
            };
            self.apply(-(victim.weight as i64));
            victim
        };
        Some(shard.retired_entry(&victim.retired))
    }

    /// Removes `key` if it has expired by `now`.
    pub(crate) fn remove_expired<'g, Q>(
        &'g self,
        hash: u64,
        key: &Q,
        now: u64,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Option<(&'g K, &'g V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let shard = self.shard_of(hash);
        let victim = {
            let mut writer = shard.lock(self.promote_after);
            let victim = writer.remove_expired(hash as u32, key, now, epoch, tiers)?;
            self.apply(-(victim.weight as i64));
            victim
        };
        Some(shard.retired_entry(&victim.retired))
    }

    /// Removes every entry that has expired by `now`, one shard at a time; `after` sees each
    /// shard's once its lock is released.
    pub(crate) fn drain_expired<'g>(
        &'g self,
        now: u64,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
        mut after: impl FnMut(&'g K, &'g V),
    ) {
        let mut expired: Vec<Retired<'g>> = Vec::new();
        for shard in self.shards.iter() {
            {
                let mut writer = shard.lock(self.promote_after);
                let mut weight = 0;
                writer.drain_expired(now, epoch, tiers, |victim| {
                    weight += victim.weight;
                    expired.push(victim.retired);
                });
                self.apply(-(weight as i64));
            }
            for retired in expired.drain(..) {
                let (key, value) = shard.retired_entry(&retired);
                after(key, value);
            }
        }
    }

    /// Shows every entry (key, value, deadline) to `f` under its shard's lock, one shard at a
    /// time: `f` runs no user code (the persistent tier's write-back of memory).
    #[cfg(feature = "persistent")]
    pub(crate) fn for_each_locked(&self, mut f: impl FnMut(&K, &V, u64)) {
        for shard in self.shards.iter() {
            shard.lock(self.promote_after).for_each_entry(&mut f);
        }
    }

    /// Removes every entry, one shard at a time; `after` sees each shard's once its lock is
    /// released.
    pub(crate) fn clear<'g>(
        &'g self,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
        mut after: impl FnMut(&'g K, &'g V),
    ) {
        for shard in self.shards.iter() {
            let taken = {
                let mut writer = shard.lock(self.promote_after);
                let before = writer.weight();
                let taken = writer.clear(epoch, tiers);
                self.apply(-(before as i64));
                taken
            };
            for retired in &taken {
                let (key, value) = shard.retired_entry(retired);
                after(key, value);
            }
        }
    }
}
