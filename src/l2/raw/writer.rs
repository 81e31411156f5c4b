//! A shard's writer: the lock's holder, the only one that takes, fills, publishes, replaces
//! and retires slots (see the [parent module](super) for a slot's life).

use core::borrow::Borrow;
use core::ptr::NonNull;

use super::index::{Index, Table};
use super::segments::OutOfMemory;
use super::slot::{Deadline, Moving, Slot, Uses};
use super::{
    Chain, Epoch, NEVER, NIL, RawShard, Retired, TIMED, WriterState, batch_for,
    retired_wait_for_drop,
};
use crate::sync::Ordering;

/// A shard's writer: holds its lock, so it alone changes the index and the slots.
pub(crate) struct RawWriter<'a, K, V, W> {
    pub(super) shard: &'a RawShard<K, V, W>,
    pub(super) state: crate::sync::MutexGuard<'a, WriterState<W>>,
}

/// A slot [`RawWriter::fill`] could not fill, with the entry it was given.
pub(crate) type Unfilled<K, V> = (NewSlot, K, V);

/// A slot id the writer took for a new entry; dropped unused, it goes back to the free stack.
pub(crate) struct NewSlot {
    pub(super) id: u32,
}

impl<'a, K, V, W> RawWriter<'a, K, V, W> {
    /// The writer's own state.
    pub(crate) fn state(&mut self) -> &mut W {
        &mut self.state.state
    }

    /// The writer's own state, shared.
    pub(crate) fn state_ref(&self) -> &W {
        &self.state.state
    }

    /// Entries in the shard.
    pub(crate) fn len(&self) -> usize {
        self.state.counts.live
    }

    /// Slots allocated: live, retired or free (the policy's per-slot state must cover them).
    pub(crate) fn slot_capacity(&self) -> usize {
        self.shard.slots.capacity()
    }

    /// Whether the memory refused the shard more slots.
    pub(crate) fn is_limited(&self) -> bool {
        self.shard.is_limited()
    }

    /// The bucket and id of `key` (of hash `hash`), if present.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u32, key: &Q) -> Option<(usize, u32)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // SAFETY: the writer holds the lock: the current table is its own.
        let table = unsafe { self.shard.index.table() }?;
        table.find(hash, |id| {
            // SAFETY: a full bucket's slot is live; only this writer could retire it.
            unsafe { self.shard.slots.get(id as usize).key() }.borrow() == key
        })
    }

    /// Whether slot `id` is indexed under `hash` (a reader's find is still current).
    pub(crate) fn holds(&self, hash: u32, id: u32) -> bool {
        self.shard.index.bucket_of(hash, id).is_some()
    }

    /// The id of the live entry whose hash is `hash` (the first, if several share it): for
    /// replaying a reader's record of a hit, which names the entry only by hash.
    pub(crate) fn find_hash(&self, hash: u32) -> Option<u32> {
        // SAFETY: as in `find`.
        let table = unsafe { self.shard.index.table() }?;
        table
            .find(hash, |id| {
                // SAFETY: a full bucket's slot is live (see `find`).
                unsafe { self.shard.slots.get(id as usize) }
                    .tag
                    .load(Ordering::Relaxed)
                    == hash
            })
            .map(|(_, id)| id)
    }

    /// The writer's own state and, beside it, a view of the live slots (what a policy sees).
    pub(crate) fn split(&mut self) -> (&mut W, Slots<'_, K, V, W>) {
        (&mut self.state.state, Slots { shard: self.shard })
    }

    /// A view of the live slots.
    pub(crate) fn slots(&self) -> Slots<'_, K, V, W> {
        Slots { shard: self.shard }
    }

    /// Takes a slot for a new entry: a free one, or one of a new segment (`grown` is told how
    /// many slots there are now).
    ///
    /// # Errors
    /// When the memory refuses a new segment.
    #[inline]
    pub(crate) fn take_slot(&mut self, epoch: &Epoch<'_>) -> Result<NewSlot, OutOfMemory> {
        // Relaxed: a look before the swap, which orders what it takes.
        if self.state.spare == NIL && self.shard.free.load(Ordering::Relaxed) != NIL {
            // Acquire pairs with the Release of the pushes (`push_chain`): the links, and the
            // slots' dropped contents, are visible here. The writer is the stack's only
            // popper, and takes it whole.
            self.state.spare = self.shard.free.swap(NIL, Ordering::Acquire);
        }
        if self.state.spare != NIL {
            let id = self.state.spare;
            // SAFETY: a free slot, allocated; its tag links the writer's chain.
            let next = unsafe { self.shard.slots.get(id as usize) }
                .tag
                .load(Ordering::Relaxed);
            self.state.spare = next;
            return Ok(NewSlot { id });
        }
        if self.state.high as usize >= self.state.max_slots {
            // Relaxed: a hint (see `is_limited`).
            self.shard.limited.store(true, Ordering::Relaxed);
            return Err(OutOfMemory);
        }
        if self.state.high as usize == self.shard.slots.capacity()
            && let Err(refused) = self.grow(epoch)
        {
            // Relaxed: a hint (see `is_limited`).
            self.shard.limited.store(true, Ordering::Relaxed);
            return Err(refused);
        }
        let id = self.state.high;
        self.state.high += 1;
        Ok(NewSlot { id })
    }

    /// Takes a slot whose readers are gone but whose key and value no quiet point has dropped
    /// yet: they are moved out and handed back, for the caller to drop where user code may
    /// run. `None` if there is none, or another thread is reclaiming.
    pub(crate) fn take_ready_slot(&mut self) -> Option<(NewSlot, K, V)> {
        // Acquire: as in `reclaim` (this is a reclaimer too).
        if self.shard.reclaiming.swap(true, Ordering::Acquire) {
            return None;
        }
        let taken = self.shard.pop(&self.shard.ready).map(|id| {
            // SAFETY: a ready slot's epoch has passed (no reader can hold it) and popping it
            // made this thread its only owner: its key and value are moved out once, and the
            // slot is reused as a free one.
            let (key, value) = unsafe {
                let slot = self.shard.slots.get(id as usize);
                (
                    (*slot.key.get()).assume_init_read(),
                    (*slot.value.get()).assume_init_read(),
                )
            };
            (NewSlot { id }, key, value)
        });
        // Release pairs with the Acquire in `reclaim`.
        self.shard.reclaiming.store(false, Ordering::Release);
        if taken.is_some() {
            // Relaxed: a count.
            self.shard.retired.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }

    /// Adds a segment of slots (and of deadlines, if timed), after making the index room for
    /// every slot: a shard whose memory runs out has the index its slots need already.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, epoch: &Epoch<'_>) -> Result<(), OutOfMemory> {
        let slots = self.shard.slots.capacity() + self.shard.slots.segment_len();
        if u32::try_from(slots).is_err() {
            return Err(OutOfMemory);
        }
        let groups = self.shard.index.groups();
        if groups < Index::groups_for(slots) {
            // Half as much again at least: a shard growing a segment at a time rebuilds its
            // index a logarithmic number of times, not once a segment.
            let grown = (Index::groups_for(slots)).max(groups + groups / 2);
            self.size_index_groups(grown, epoch)?;
        }
        if self.shard.is_timed() {
            self.grow_expiry()?;
        }
        if self.shard.idling {
            // SAFETY: only the holder of the writer's lock grows the idle deadlines.
            unsafe { self.shard.idle.grow(|_| Moving::never()) }?;
        }
        if self.shard.refreshing {
            // SAFETY: only the holder of the writer's lock grows the refresh times.
            unsafe { self.shard.refresh.grow(|_| Moving::never()) }?;
        }
        // SAFETY: only the holder of the writer's lock grows the slots.
        unsafe { self.shard.slots.grow(|_| Slot::vacant()) }
    }

    fn grow_expiry(&mut self) -> Result<(), OutOfMemory> {
        // SAFETY: only the holder of the writer's lock grows the deadlines.
        unsafe { self.shard.expiry.grow(|_| Deadline::never()) }
    }

    /// Gives up a slot [`take_slot`](Self::take_slot) took and that was never filled.
    pub(crate) fn return_slot(&mut self, slot: NewSlot) {
        if slot.id + 1 == self.state.high {
            // The newest id goes back to the count, not to the front of the free chain: a slot
            // the shard could not use (its policy state could not be allocated on a spent
            // budget) would otherwise be taken again first, every time, ahead of free slots
            // that can be used.
            self.state.high -= 1;
            return;
        }
        // SAFETY: an allocated slot, free (taken and never filled).
        let cell = unsafe { self.shard.slots.get(slot.id as usize) };
        // Relaxed: the writer's own chain.
        cell.tag.store(self.state.spare, Ordering::Relaxed);
        self.state.spare = slot.id;
    }

    /// Fills a taken slot with an entry (not visible yet: see [`publish`](Self::publish) and
    /// [`replace`](Self::replace)), its deadline `expires` and, in a shard that keeps them, its
    /// idle deadline `idle` and its refresh time `refresh`. `uses` starts its hits and
    /// referenced bit.
    ///
    /// # Errors
    /// When the entry has a deadline and the memory refuses the shard's deadlines; the slot
    /// and the entry are handed back.
    #[inline(always)]
    pub(crate) fn fill(
        &mut self,
        slot: NewSlot,
        hash: u32,
        (key, value): (K, V),
        (expires, idle, refresh): (u64, u64, u64),
        uses: u8,
    ) -> Result<u32, Unfilled<K, V>> {
        if expires != NEVER && !self.shard.is_timed() {
            // The first deadline: allocate the deadlines of every slot so far.
            while self.shard.expiry.capacity() < self.shard.slots.capacity() {
                if self.grow_expiry().is_err() {
                    return Err((slot, key, value));
                }
            }
            // Relaxed load: the writer's own flags. Release pairs with the Acquire in `found`:
            // the deadlines are allocated.
            let deadlines = self.shard.deadlines.load(Ordering::Relaxed);
            self.shard
                .deadlines
                .store(deadlines | TIMED, Ordering::Release);
        }
        let id = slot.id;
        // SAFETY: a taken slot is allocated; the writer's view of it.
        let cell = unsafe { self.shard.slots.get(id as usize) };
        // SAFETY: a taken slot is free: no reader can reach it (it is in no index, and any
        // reader that saw it before its retirement has unpinned), so the writer owns it.
        unsafe {
            (*cell.key.get()).write(key);
            (*cell.value.get()).write(value);
        }
        // Relaxed: published with the index's Release store.
        cell.tag.store(hash, Ordering::Relaxed);
        cell.uses.store(uses, Ordering::Relaxed);
        if self.shard.is_timed() {
            // SAFETY: allocated in step with the slots; the slot is free (see above): the
            // deadline is published with it.
            unsafe { self.shard.expiry.get(id as usize).set(expires) };
        }
        if self.shard.moving {
            if self.shard.idling {
                // SAFETY: allocated in step with the slots (see `grow`). Readers of the slot's
                // earlier life may still move it: they are done with that entry, and this
                // store is published with the new one.
                unsafe { self.shard.idle.get(id as usize) }.set(idle);
            }
            if self.shard.refreshing {
                // SAFETY: as for the idle deadline.
                unsafe { self.shard.refresh.get(id as usize) }.set(refresh);
            }
        }
        Ok(id)
    }

    /// Makes sure the index has room for one more entry of `hash`, rebuilding it if not.
    ///
    /// # Errors
    /// When the memory refuses the rebuild.
    #[inline(always)]
    pub(crate) fn reserve_index(
        &mut self,
        hash: u32,
        epoch: &Epoch<'_>,
    ) -> Result<(), OutOfMemory> {
        let old =
            self.shard
                .index
                .reserve_one(&mut self.state.counts, hash, self.shard.tag_of())?;
        self.retire_table(old, epoch);
        Ok(())
    }

    fn retire_table(&self, old: Option<NonNull<Table>>, epoch: &Epoch<'_>) {
        if let Some(old) = old {
            let index: *const Index = &self.shard.index;
            // SAFETY: unreachable for new readers; freed once the readers that may hold it are
            // gone; freeing runs no user code, and the shard outlives the collector.
            unsafe { epoch.defer(move || (*index).free(old)) };
            // A table is large and retired seldom: hand it to the collector now, or it waits
            // in this thread's bag until 63 more retirements fill it (in a cache filling up
            // without evicting, that is never).
            epoch.flush();
        }
    }

    /// Publishes filled slot `id` under `hash` (the key is absent; room was reserved).
    pub(crate) fn publish(&mut self, hash: u32, id: u32) {
        self.shard.index.insert(&mut self.state.counts, hash, id);
    }

    /// Points `bucket` (holding `old`) at filled slot `new`, and retires `old`.
    pub(crate) fn replace<'g>(
        &mut self,
        bucket: usize,
        old: u32,
        new: u32,
        epoch: &Epoch<'g>,
    ) -> Retired<'g> {
        self.shard.index.replace(bucket, new);
        self.retire(old, epoch)
    }

    /// Removes live slot `id` (of 32-bit hash `hash`; in `bucket`, if known) from the index
    /// and retires it.
    #[inline(always)]
    pub(crate) fn remove<'g>(
        &mut self,
        id: u32,
        hash: u32,
        bucket: Option<usize>,
        epoch: &Epoch<'g>,
    ) -> Retired<'g> {
        let bucket = bucket.or_else(|| self.shard.index.bucket_of(hash, id));
        let bucket = bucket.expect("a live slot is indexed");
        self.shard.index.erase(&mut self.state.counts, bucket);
        self.retire(id, epoch)
    }

    /// Puts unlinked slot `id` in limbo, and hands the limbo to the epoch once it holds a
    /// batch (see the module docs).
    #[inline(always)]
    fn retire<'g>(&mut self, id: u32, epoch: &Epoch<'g>) -> Retired<'g> {
        // SAFETY: an allocated slot, unlinked: readers pinned before now may still read its
        // key and value, never its tag.
        let slot = unsafe { self.shard.slots.get(id as usize) };
        let limbo = &mut self.state.limbo;
        // Relaxed: the writer's own link (published by the hand-over's compare-and-swap).
        slot.tag.store(limbo.head, Ordering::Relaxed);
        if limbo.len == 0 {
            limbo.tail = id;
        }
        limbo.head = id;
        limbo.len += 1;
        // Relaxed: a count, written only under the lock (see `has_limbo`); a store, not a
        // read-modify-write.
        self.shard.limbo.store(limbo.len, Ordering::Relaxed);
        // A shard the memory refused more slots lives on the ones it retires: at once.
        if limbo.len >= batch_for(self.state.counts.live) || self.shard.is_limited() {
            self.hand_over(epoch);
        }
        Retired {
            id,
            _epoch: core::marker::PhantomData,
        }
    }

    /// Hands the limbo to the epoch: one deferred function that pushes the whole chain onto
    /// the ready stack (onto the free stack when nothing needs dropping) once no reader
    /// pinned before now can be running.
    pub(crate) fn hand_over(&mut self, epoch: &Epoch<'_>) {
        let Chain { head, tail, len } = core::mem::replace(&mut self.state.limbo, Chain::EMPTY);
        if len == 0 {
            return;
        }
        // Relaxed: counts (see `retire`); the total seen between the two stores may miss
        // the batch for a moment, never count it twice.
        self.shard.limbo.store(0, Ordering::Relaxed);
        self.shard
            .retired
            .fetch_add(len as usize, Ordering::Relaxed);
        let shard: *const RawShard<K, V, W> = self.shard;
        let drops = retired_wait_for_drop::<K, V>();
        // SAFETY: every slot of the chain is unlinked (only readers pinned before now can
        // hold it) and handed over once; the deferred push runs no user code, and the shard
        // outlives the collector (the epoch's rule).
        unsafe {
            epoch.defer(move || {
                let shard = &*shard;
                if drops {
                    shard.push_chain(&shard.ready, head, tail);
                } else {
                    // Nothing to drop: free at once.
                    shard.push_chain(&shard.free, head, tail);
                    // Relaxed: a count.
                    shard.retired.fetch_sub(len as usize, Ordering::Relaxed);
                }
            });
        }
    }

    /// Removes every entry: each (its id, key and value) is shown to `seen` under the lock,
    /// then retired. Allocates nothing, so it cannot fail.
    pub(crate) fn clear<'g>(&mut self, epoch: &Epoch<'g>) -> alloc::vec::Vec<Retired<'g>> {
        // SAFETY: the writer's own current table.
        let live: alloc::vec::Vec<u32> = unsafe { self.shard.index.table() }
            .map(|table| table.full_ids().collect())
            .unwrap_or_default();
        self.shard.index.erase_all(&mut self.state.counts);
        let retired = live.into_iter().map(|id| self.retire(id, epoch)).collect();
        self.hand_over(epoch);
        retired
    }

    /// Every live slot's id (for a sweep).
    pub(crate) fn live_ids(&self) -> alloc::vec::Vec<u32> {
        // SAFETY: the writer's own current table.
        unsafe { self.shard.index.table() }
            .map(|table| table.full_ids().collect())
            .unwrap_or_default()
    }

    /// Sizes the index for `slots` slots now.
    ///
    /// # Errors
    /// When the memory refuses.
    pub(crate) fn size_index(
        &mut self,
        slots: usize,
        epoch: &Epoch<'_>,
    ) -> Result<(), OutOfMemory> {
        self.size_index_groups(Index::groups_for(slots), epoch)
    }

    /// Rebuilds the index into `groups` groups.
    fn size_index_groups(&mut self, groups: usize, epoch: &Epoch<'_>) -> Result<(), OutOfMemory> {
        let old = self
            .shard
            .index
            .rebuild(&mut self.state.counts, groups, self.shard.tag_of())?;
        self.retire_table(old, epoch);
        Ok(())
    }

    /// Allocates slots up to at least `slots` now.
    ///
    /// # Errors
    /// When the memory refuses.
    pub(crate) fn size_slots(
        &mut self,
        slots: usize,
        epoch: &Epoch<'_>,
    ) -> Result<(), OutOfMemory> {
        while self.shard.slots.capacity() < slots {
            self.grow(epoch)?;
        }
        Ok(())
    }
}

/// What [`Slots::leaving`] reads of an entry that leaves.
pub(crate) struct Leaving<'w, K, V> {
    pub(crate) key: &'w K,
    pub(crate) value: &'w V,
    pub(crate) hash: u32,
    pub(crate) hits: u8,
}

/// The writer's view of its shard's live slots: their keys, values, hashes, hits and deadlines.
/// Borrowed from a [`RawWriter`], so the lock is held while it lives.
pub(crate) struct Slots<'w, K, V, W> {
    shard: &'w RawShard<K, V, W>,
}

impl<'w, K, V, W> Slots<'w, K, V, W> {
    /// Whether any entry of the shard may have a deadline: one was stored with one, or the
    /// shard keeps idle deadlines. If not, none can have expired.
    #[inline]
    pub(crate) fn may_expire(&self) -> bool {
        // Relaxed: the writer's own flags.
        self.shard.deadlines.load(Ordering::Relaxed) != 0
    }

    fn live(&self, id: u32) -> &'w Slot<K, V> {
        assert!((id as usize) < self.shard.slots.capacity(), "slot {id}");
        // SAFETY: allocated (checked), and only the lock's holder (who lent this view) changes
        // which slots are live.
        unsafe { self.shard.slots.get(id as usize) }
    }

    /// The key and value of live slot `id`.
    pub(crate) fn entry(&self, id: u32) -> (&'w K, &'w V) {
        let slot = self.live(id);
        // SAFETY: a live slot holds its key and value; only the lock's holder could change
        // that, and it lent this view.
        unsafe { (slot.key(), slot.value()) }
    }

    /// Live slot `id`, read once for an entry that leaves: its key, value, 32-bit hash and
    /// hits.
    #[inline(always)]
    pub(crate) fn leaving(&self, id: u32) -> Leaving<'w, K, V> {
        let slot = self.live(id);
        Leaving {
            // SAFETY: as in `entry`.
            key: unsafe { slot.key() },
            // SAFETY: as in `entry`.
            value: unsafe { slot.value() },
            // Relaxed: the writer's own store.
            hash: slot.tag.load(Ordering::Relaxed),
            hits: Uses(&slot.uses).hits(),
        }
    }

    /// The 32-bit hash of live slot `id`.
    pub(crate) fn hash(&self, id: u32) -> u32 {
        // Relaxed: the writer's own store.
        self.live(id).tag.load(Ordering::Relaxed)
    }

    /// The hits and referenced bit of live slot `id`.
    pub(crate) fn uses(&self, id: u32) -> Uses<'w> {
        Uses(&self.live(id).uses)
    }

    /// The deadline of live slot `id`: the earlier of the one it was stored with and its idle
    /// deadline. Inlined: the policy asks it of each entry its hand passes.
    #[inline]
    pub(crate) fn expires(&self, id: u32) -> u64 {
        // The flags and the deadlines are the writer's own stores.
        let expires = if self.shard.is_timed() {
            // SAFETY: allocated in step with the slots once timed; a live slot's deadline is
            // only written while it was free.
            unsafe { self.shard.expiry.get(id as usize).get() }
        } else {
            NEVER
        };
        if self.shard.idling {
            // SAFETY: allocated in step with the slots.
            expires.min(unsafe { self.shard.idle.get(id as usize) }.get())
        } else {
            expires
        }
    }
}

impl NewSlot {
    /// The slot's id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

impl Table {
    /// The ids of every full bucket (the writer's view of its own table).
    pub(super) fn full_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.full_buckets().map(|(_, id)| id)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use stratacache_alloc::MemoryHandle;

    use super::super::Shape;
    use super::*;
    use crate::sync::epoch;

    #[test]
    fn a_returned_newest_slot_goes_back_to_the_count_behind_the_free_ones() {
        let collector = epoch::Collector::new();
        let participant = collector.register();
        let guard = participant.pin();
        // SAFETY: the shard is used with this collector's guards only and dropped first.
        let epoch = unsafe { Epoch::new(&guard) };
        let shard: RawShard<u64, u64, ()> = RawShard::new(
            (),
            Shape::new(2, Some(16)),
            MemoryHandle::global(),
            1 << 20,
            false,
            false,
        );
        let mut writer = shard.lock();
        let ids: alloc::vec::Vec<NewSlot> =
            (0..3).map(|_| writer.take_slot(&epoch).unwrap()).collect();
        let [_first, second, newest] = <[NewSlot; 3]>::try_from(ids).ok().unwrap();
        assert_eq!((_first.id(), second.id(), newest.id()), (0, 1, 2));
        // A slot that could not be used (say its policy state could not be allocated) goes
        // back: an older one to the free chain, the newest to the count.
        writer.return_slot(second);
        writer.return_slot(newest);
        assert_eq!(
            writer.take_slot(&epoch).unwrap().id(),
            1,
            "a free slot first"
        );
        assert_eq!(
            writer.take_slot(&epoch).unwrap().id(),
            2,
            "then the newest again"
        );
        assert_eq!(writer.take_slot(&epoch).unwrap().id(), 3);
        drop(writer);
        drop(shard);
    }
}
