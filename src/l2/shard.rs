//! One L2 shard: a hash index into a slot arena, with eviction delegated to a [`Policy`].

use core::borrow::Borrow;
use core::fmt;

use allocator_api2::vec::Vec;
use hashbrown::HashTable;
use stratacache_alloc::MemoryHandle;

use super::policy::{DefaultPolicy, Entries, EntryInfo, Policy, Priority, SlotId};
use crate::entry::RemovalCause;

/// What storing over a present key hands back: the new key (the stored one is kept), the old
/// value and the old deadline.
pub(crate) type Replaced<K, V> = (K, V, u64);

/// The shard's memory refused to grow.
#[derive(Debug)]
struct OutOfMemory;

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// One entry, with its policy state beside it so a lookup touches one place
/// (48 bytes for `u64 → u64` with the default policy).
struct Slot<K, V, M> {
    hash: u64,
    /// When the entry expires, in the cache clock's nanoseconds ([`NEVER`] if it does not).
    expires: u64,
    weight: u32,
    key: K,
    value: V,
    meta: M,
}

/// The size of a slot for `K`, `V` and policy state `M` (for a layout test).
#[cfg(test)]
pub(crate) const fn slot_size<K, V, M>() -> usize {
    core::mem::size_of::<Option<Slot<K, V, M>>>()
}

/// Asks a tier above the shard whether an entry (hash, key, counted hits) was used there
/// since it was last asked.
pub(crate) type UsedElsewhere<'a, K> = &'a mut dyn FnMut(u64, &K, u8) -> bool;

/// The slot arena as the policy sees it, at one moment of the cache's clock.
struct SlotsView<'a, 'u, K, V, P: Policy> {
    slots: &'a mut [Option<Slot<K, V, P::Meta>>],
    now: u64,
    elsewhere: Option<UsedElsewhere<'u, K>>,
}

impl<'a, K, V, P: Policy> SlotsView<'a, '_, K, V, P> {
    fn new(slots: &'a mut [Option<Slot<K, V, P::Meta>>], now: u64) -> Self {
        Self {
            slots,
            now,
            elsewhere: None,
        }
    }

    fn slot(&self, id: SlotId) -> &Slot<K, V, P::Meta> {
        self.slots[id as usize]
            .as_ref()
            .expect("policies only see live slots")
    }
}

impl<K, V, P: Policy> Entries<P::Meta> for SlotsView<'_, '_, K, V, P> {
    #[inline]
    fn meta(&self, id: SlotId) -> &P::Meta {
        &self.slot(id).meta
    }

    #[inline]
    fn meta_mut(&mut self, id: SlotId) -> &mut P::Meta {
        &mut self.slots[id as usize]
            .as_mut()
            .expect("policies only see live slots")
            .meta
    }

    #[inline]
    fn hash(&self, id: SlotId) -> u64 {
        self.slot(id).hash
    }

    #[inline]
    fn weight(&self, id: SlotId) -> u64 {
        u64::from(self.slot(id).weight)
    }

    #[inline]
    fn is_expired(&self, id: SlotId) -> bool {
        self.slot(id).expires <= self.now
    }

    fn used_elsewhere(&mut self, id: SlotId) -> bool {
        let Some(elsewhere) = self.elsewhere.as_mut() else {
            return false;
        };
        let slot = self.slots[id as usize]
            .as_ref()
            .expect("policies only see live slots");
        elsewhere(slot.hash, &slot.key, P::hit_counter(&slot.meta).get())
    }
}

/// What a counted lookup found.
pub(crate) struct Found<'a, K, V> {
    pub(crate) key: &'a K,
    pub(crate) value: &'a V,
    /// The entry's deadline ([`NEVER`] if it has none).
    pub(crate) expires: u64,
    /// Hits so far, this one included (saturating).
    pub(crate) hits: u8,
}

/// An entry that left a shard by eviction, handed out so its owner can pass it on (to a
/// listener, a lower tier) and drop it outside any lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evicted<K, V> {
    /// The key's hash.
    pub hash: u64,
    /// The entry's key.
    pub key: K,
    /// The entry's value.
    pub value: V,
    /// The entry's weight.
    pub weight: u64,
    /// Why it left: [`RemovalCause::Capacity`], or [`RemovalCause::Expired`] when its time to
    /// live had run out.
    pub cause: RemovalCause,
    /// Its counted hits (the tiered cache counts up to its promotion threshold, and saturates
    /// the count of an entry it copies into L1 when storing it).
    pub hits: u8,
}

/// A single-threaded cache shard: a hashbrown index over a slot arena, with eviction and
/// admission delegated to a [`Policy`] (by default [`DefaultPolicy`], W-TinyLFU).
///
/// The shard keeps no capacity of its own: its owner asks for victims with
/// [`evict`](Self::evict) while it is over budget. Lookups ([`get`](Self::get)) take `&self`,
/// so a sharded owner serves them under a read lock; the policy's hit hook only touches atomics.
/// Evictions find the victim in the index by hash and slot id, so they run no user code.
///
/// ```
/// use stratacache::l2::Shard;
///
/// let mut shard: Shard<&str, u32> = Shard::new();
/// shard.insert(11, "hp", 100, 1);
/// assert_eq!(shard.get(11, "hp"), Some(&100));
/// let victim = shard.evict().expect("one entry to evict");
/// assert_eq!((victim.key, victim.value), ("hp", 100));
/// assert!(shard.is_empty());
/// ```
pub struct Shard<K, V, P: Policy = DefaultPolicy> {
    index: HashTable<SlotId, MemoryHandle>,
    slots: Vec<Option<Slot<K, V, P::Meta>>, MemoryHandle>,
    /// Released slots. Its capacity is kept at least the number of slots, so releasing one
    /// never allocates (an eviction must not fail for want of memory).
    free: Vec<SlotId, MemoryHandle>,
    /// Entries the index has room for: kept at least twice the live ones (see
    /// [`try_reserve`](Self::try_reserve)).
    index_room: usize,
    policy: P,
    weight: u64,
}

impl<K, V> Shard<K, V, DefaultPolicy> {
    /// An empty shard with the default policy.
    pub fn new() -> Self {
        Self::with_policy(DefaultPolicy::new())
    }
}

impl<K, V> Default for Shard<K, V, DefaultPolicy> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, P: Policy> Shard<K, V, P> {
    /// An empty shard evicting by `policy`, on the global allocator.
    pub fn with_policy(policy: P) -> Self {
        Self::with_policy_in(policy, MemoryHandle::global())
    }

    /// An empty shard evicting by `policy`, its index and slots allocated from `memory` (the
    /// policy's own history stays on the global allocator).
    pub fn with_policy_in(policy: P, memory: MemoryHandle) -> Self {
        Self {
            index: HashTable::new_in(memory.clone()),
            slots: Vec::new_in(memory.clone()),
            free: Vec::new_in(memory),
            index_room: 0,
            policy,
            weight: 0,
        }
    }

    /// The blocks reserving room for `entries` allocates (see
    /// [`try_reserve`](Self::try_reserve)): the slot array, the free list and the index.
    /// hashbrown's index layout is estimated: a power of two of buckets for the room at its
    /// load factor of 7/8, each with its id and a control byte, plus a group of trailing
    /// control bytes.
    pub(crate) fn reserved_layouts(entries: usize) -> [(core::alloc::Layout, usize); 3] {
        use core::alloc::Layout;
        let id = core::mem::size_of::<SlotId>();
        let room = entries.saturating_mul(2);
        let buckets = match room {
            0..4 => 4,
            4..8 => 8,
            _ => (room.saturating_mul(8) / 7).next_power_of_two(),
        };
        let layout = |size: usize, align: usize| {
            Layout::from_size_align(size, align).unwrap_or(Layout::new::<[u8; 0]>())
        };
        let slots = Layout::array::<Option<Slot<K, V, P::Meta>>>(entries)
            .unwrap_or(layout(usize::MAX / 2, 1));
        [
            (slots, 1),
            (layout(entries.saturating_mul(id), id), 1),
            (
                layout(buckets.saturating_mul(id + 1).saturating_add(16), 16),
                1,
            ),
        ]
    }

    /// Where the shard's index and slots are allocated.
    pub fn memory(&self) -> &MemoryHandle {
        self.slots.allocator()
    }

    /// Makes sure storing one more entry allocates nothing: one more index bucket and, without
    /// a released slot to reuse, one more slot (and room to release it later).
    fn reserve_one(&mut self) -> Result<(), OutOfMemory> {
        let slots = &self.slots;
        let live = self.index.len();
        // Twice the live entries, so the index's tombstones can always be cleared in place
        // (see `try_reserve`): past that, the room doubles.
        let room = if 2 * (live + 1) > self.index_room {
            (2 * (live + 1)).max(2 * self.index_room)
        } else {
            live + 1
        };
        self.index
            .try_reserve(room - live, |&id| {
                slots[id as usize].as_ref().map_or(0, |s| s.hash)
            })
            .map_err(|_| OutOfMemory)?;
        self.index_room = self.index_room.max(room);
        if self.free.is_empty() {
            // A new slot, and room to release it later: the free list holds every slot.
            if self.slots.len() == self.slots.capacity() {
                self.slots.try_reserve(1).map_err(|_| OutOfMemory)?;
            }
            let slots = self.slots.len() + 1;
            if self.free.capacity() < slots {
                self.free
                    .try_reserve(slots - self.free.len())
                    .map_err(|_| OutOfMemory)?;
            }
        }
        Ok(())
    }

    /// Keeps the free list able to hold every slot.
    fn reserve_free(&mut self) -> Result<(), OutOfMemory> {
        let wanted = self.slots.capacity().saturating_sub(self.free.len());
        self.free.try_reserve_exact(wanted).map_err(|_| OutOfMemory)
    }

    /// Makes room for `additional` more entries, so that storing them allocates nothing (the
    /// sharded L2 does this at build time when it knows how many entries a shard will hold,
    /// so a full cache never resizes a shard under its lock).
    ///
    /// The index gets room for twice as many. Removals leave tombstones in it that use up its
    /// room; hashbrown clears them by rehashing in place only while at most half its capacity
    /// is live, and otherwise doubles the table. So a shard churning near a tighter index
    /// would double it once, under its lock, mid-run (or, on a spent memory budget, could not
    /// store at all).
    ///
    /// # Errors
    /// When the allocator refuses; the shard is unchanged (but may have grown partly).
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), hashbrown::TryReserveError> {
        let slots = &self.slots;
        let live = self.index.len();
        let room = live.saturating_add(additional).saturating_mul(2);
        self.index.try_reserve(room.saturating_sub(live), |&id| {
            slots[id as usize].as_ref().map_or(0, |s| s.hash)
        })?;
        self.index_room = self.index_room.max(room);
        self.slots
            .try_reserve(additional)
            .map_err(|_| hashbrown::TryReserveError::CapacityOverflow)?;
        self.reserve_free()
            .map_err(|_| hashbrown::TryReserveError::CapacityOverflow)?;
        self.policy.reserve(self.len() + additional);
        Ok(())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the shard holds no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The sum of the entries' weights.
    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// The eviction policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The eviction policy, for the table to [`join`](Policy::join) its shards' policies
    /// before they hold entries.
    pub(crate) fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    fn find<Q>(&self, hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| {
                slots[id as usize]
                    .as_ref()
                    .is_some_and(|s| s.key.borrow() == key)
            })
            .copied()
    }

    fn slot(&self, id: SlotId) -> &Slot<K, V, P::Meta> {
        self.slots[id as usize]
            .as_ref()
            .expect("the index only holds live slots")
    }

    /// The value for `key`, counted as a use by the policy.
    #[inline]
    pub fn get<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.get_key_value(hash, key).map(|(_, v)| v)
    }

    /// The value for `key`, counted as a use with exclusive access: policies that reorder on a
    /// hit (LRU) do so at once, where [`get`](Self::get), which may run under a shared lock,
    /// only marks the entry.
    pub fn access<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let id = self.find(hash, key)?;
        self.policy
            .on_access(&mut SlotsView::<K, V, P>::new(&mut self.slots, 0), id);
        Some(&self.slot(id).value)
    }

    /// The key and value for `key`, counted as a use.
    pub fn get_key_value<Q>(&self, hash: u64, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slot = self.slot(self.find(hash, key)?);
        self.policy.on_hit(&slot.meta, hash);
        Some((&slot.key, &slot.value))
    }

    /// The entry for `key`, counted as a use, with its deadline and hits so far (counted up
    /// to `count_up_to`). Expired entries are found too: the caller, which has the clock,
    /// decides.
    #[inline]
    pub(crate) fn lookup<Q>(&self, hash: u64, key: &Q, count_up_to: u8) -> Option<Found<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slot = self.slot(self.find(hash, key)?);
        self.policy.on_hit(&slot.meta, hash);
        let hits = P::hit_counter(&slot.meta).record(count_up_to);
        Some(Found {
            key: &slot.key,
            value: &slot.value,
            expires: slot.expires,
            hits,
        })
    }

    /// The value for `key`, without counting a use.
    pub fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.find(hash, key).map(|id| &self.slot(id).value)
    }

    /// The value for `key` and its deadline, without counting a use.
    pub(crate) fn peek_entry<Q>(&self, hash: u64, key: &Q) -> Option<(&V, u64)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.find(hash, key).map(|id| {
            let slot = self.slot(id);
            (&slot.value, slot.expires)
        })
    }

    /// Stores `value` for `key` with `weight`, at `High` priority and without expiry. Returns
    /// the previous value if the key was present (its stored key is kept, as
    /// `HashMap::insert` does). Never evicts: the owner calls [`evict`](Self::evict) while it
    /// is over budget.
    ///
    /// # Panics
    /// If `weight` exceeds `u32::MAX`, the shard would hold more than `u32::MAX` entries, or
    /// its memory refuses to grow ([`try_insert`](Self::try_insert) hands the entry back
    /// instead).
    pub fn insert(&mut self, hash: u64, key: K, value: V, weight: u64) -> Option<V>
    where
        K: Eq,
    {
        self.try_insert(hash, key, value, weight)
            .unwrap_or_else(|_| panic!("the shard's memory refused to grow"))
    }

    /// [`insert`](Self::insert), but when the shard's memory (an arena's budget) cannot grow,
    /// the key and value are handed back and the shard is unchanged.
    ///
    /// # Errors
    /// The key and value, when the memory refused.
    ///
    /// # Panics
    /// If `weight` exceeds `u32::MAX` or the shard would hold more than `u32::MAX` entries.
    pub fn try_insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
    ) -> Result<Option<V>, (K, V)>
    where
        K: Eq,
    {
        assert!(
            weight <= u64::from(u32::MAX),
            "an entry weighs at most u32::MAX"
        );
        self.store(
            key,
            value,
            EntryInfo::new(hash, weight, Priority::High),
            NEVER,
        )
        .map(|replaced| replaced.map(|(_, old, _)| old))
    }

    /// Stores an entry described by `info` that expires at `expires` ([`NEVER`] for never).
    /// When the key was present, its stored key and policy state are kept and the new key, the
    /// old value and the old deadline are returned, for the caller to drop outside its lock.
    ///
    /// Room is made first, so nothing after it can fail: when the memory refuses, the key and
    /// value are handed back and the shard is unchanged.
    ///
    /// # Panics
    /// If the shard would hold more than `u32::MAX` entries.
    pub(crate) fn store(
        &mut self,
        key: K,
        value: V,
        info: EntryInfo,
        expires: u64,
    ) -> Result<Option<Replaced<K, V>>, (K, V)>
    where
        K: Eq,
    {
        if self.reserve_one().is_err() {
            return Err((key, value));
        }
        let hash = info.hash;
        let weight = u32::try_from(info.weight).expect("the caller checked the weight");
        let slots = &self.slots;
        // One probe for both outcomes (the table grows, if it must, before the slot is chosen).
        let entry = self.index.entry(
            hash,
            |&id| slots[id as usize].as_ref().is_some_and(|s| s.key == key),
            |&id| slots[id as usize].as_ref().map_or(0, |s| s.hash),
        );
        let vacant = match entry {
            hashbrown::hash_table::Entry::Occupied(occupied) => {
                let id = *occupied.get();
                let slot = self.slots[id as usize].as_mut().expect("live slot");
                let old_weight = u64::from(core::mem::replace(&mut slot.weight, weight));
                self.weight = self.weight - old_weight + info.weight;
                let old = core::mem::replace(&mut slot.value, value);
                let old_expires = core::mem::replace(&mut slot.expires, expires);
                self.policy.on_replace(
                    &mut SlotsView::<K, V, P>::new(&mut self.slots, 0),
                    id,
                    old_weight,
                    info,
                );
                return Ok(Some((key, old, old_expires)));
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => vacant,
        };
        let slot = Slot {
            hash,
            expires,
            weight,
            key,
            value,
            meta: self.policy.new_meta(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                let id = SlotId::try_from(self.slots.len())
                    .expect("a shard holds at most u32::MAX entries");
                self.slots.push(Some(slot));
                id
            }
        };
        vacant.insert(id);
        self.weight += info.weight;
        self.policy
            .on_insert(&mut SlotsView::<K, V, P>::new(&mut self.slots, 0), id, info);
        Ok(None)
    }

    /// Saturates the hit counter of `key`'s entry, if present (the tiered cache does this for
    /// an entry it copies into L1 at insertion).
    pub(crate) fn saturate_hits<Q>(&self, hash: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        if let Some(id) = self.find(hash, key) {
            P::hit_counter(&self.slot(id).meta).saturate();
        }
    }

    /// Removes `key`, returning its key and value.
    pub fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash, |&id| {
                slots[id as usize]
                    .as_ref()
                    .is_some_and(|s| s.key.borrow() == key)
            })
            .ok()?;
        let (id, _) = entry.remove();
        self.policy
            .on_remove(&mut SlotsView::<K, V, P>::new(&mut self.slots, 0), id);
        let slot = self.release(id);
        Some((slot.key, slot.value))
    }

    /// Removes `key` if its entry has expired by `now`, returning its key and value.
    pub(crate) fn remove_expired<Q>(&mut self, hash: u64, key: &Q, now: u64) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let id = self.find(hash, key)?;
        if self.slot(id).expires > now {
            return None;
        }
        self.remove(hash, key)
    }

    /// Evicts the policy's next victim (of any priority, with no entry considered expired),
    /// or returns `None` when the shard is empty.
    pub fn evict(&mut self) -> Option<Evicted<K, V>> {
        self.evict_at(0, false, None)
    }

    /// Evicts the policy's next victim with the clock at `now` (expired entries go first);
    /// with `spare_critical`, never a `Critical` entry; `elsewhere` says whether an entry was
    /// used in L1.
    pub(crate) fn evict_at(
        &mut self,
        now: u64,
        spare_critical: bool,
        elsewhere: Option<UsedElsewhere<'_, K>>,
    ) -> Option<Evicted<K, V>> {
        let mut view = SlotsView::<K, V, P>::new(&mut self.slots, now);
        view.elsewhere = elsewhere;
        let id = self.policy.evict(&mut view, spare_critical)?;
        Some(self.take_victim(id, now))
    }

    /// Unindexes and releases the victim at `id`, which the policy has already forgotten.
    fn take_victim(&mut self, id: SlotId, now: u64) -> Evicted<K, V> {
        let hash = self.slot(id).hash;
        self.index
            .find_entry(hash, |&i| i == id)
            .expect("the victim is indexed")
            .remove();
        let slot = self.release(id);
        Evicted {
            hits: P::hit_counter(&slot.meta).get(),
            hash: slot.hash,
            cause: if slot.expires <= now {
                RemovalCause::Expired
            } else {
                RemovalCause::Capacity
            },
            key: slot.key,
            value: slot.value,
            weight: u64::from(slot.weight),
        }
    }

    /// Removes every entry that has expired by `now` (a sweep of the arena) and hands them out.
    pub(crate) fn drain_expired(&mut self, now: u64, out: &mut alloc::vec::Vec<Evicted<K, V>>) {
        for id in 0..self.slots.len() {
            let expired = self.slots[id].as_ref().is_some_and(|s| s.expires <= now);
            if expired {
                let id = id as SlotId;
                self.policy
                    .on_remove(&mut SlotsView::<K, V, P>::new(&mut self.slots, now), id);
                out.push(self.take_victim(id, now));
            }
        }
    }

    fn release(&mut self, id: SlotId) -> Slot<K, V, P::Meta> {
        let slot = self.slots[id as usize].take().expect("live slot");
        debug_assert!(self.free.len() < self.free.capacity(), "room was kept");
        self.free.push(id);
        self.weight -= u64::from(slot.weight);
        slot
    }

    /// Heap bytes the shard holds: its arena, index, free list and policy history.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Option<Slot<K, V, P::Meta>>>()
            + self.index.allocation_size()
            + self.free.capacity() * core::mem::size_of::<SlotId>()
            + self.policy.heap_bytes()
    }

    /// Removes every entry and returns them, so the caller can drop them outside its lock.
    pub fn take_all(&mut self) -> impl Iterator<Item = (K, V)> + use<K, V, P> {
        self.take_all_hashed().map(|(_, key, value)| (key, value))
    }

    /// [`take_all`](Self::take_all) with each entry's stored hash, so the caller need not
    /// hash keys (user code) while it holds its lock.
    pub(crate) fn take_all_hashed(&mut self) -> impl Iterator<Item = (u64, K, V)> + use<K, V, P> {
        let memory = self.memory().clone();
        let slots = core::mem::replace(&mut self.slots, Vec::new_in(memory.clone()));
        self.free = Vec::new_in(memory);
        self.index.clear();
        self.free.clear();
        self.policy.clear();
        self.weight = 0;
        slots
            .into_iter()
            .flatten()
            .map(|s| (s.hash, s.key, s.value))
    }
}

impl<K, V, P: Policy> fmt::Debug for Shard<K, V, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("len", &self.index.len())
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
