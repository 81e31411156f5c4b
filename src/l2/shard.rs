//! One L2 shard: a hash index into a slot arena, with eviction delegated to a [`Policy`].

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;

use hashbrown::HashTable;

use super::policy::{Entries, EntryInfo, Policy, ProbationClock, SlotId};
use crate::sync::{AtomicU8, Ordering};

/// One entry, with its policy state beside it so a lookup touches one place.
struct Slot<K, V, M> {
    hash: u64,
    weight: u64,
    key: K,
    value: V,
    meta: M,
    /// Hits counted by [`Shard::get_counting`], saturating (the tiered cache promotes to L1
    /// after a number of them).
    hits: AtomicU8,
}

/// The slot arena as the policy sees it.
struct SlotsView<'a, K, V, M>(&'a mut [Option<Slot<K, V, M>>]);

impl<K, V, M> SlotsView<'_, K, V, M> {
    fn slot(&self, id: SlotId) -> &Slot<K, V, M> {
        self.0[id as usize]
            .as_ref()
            .expect("policies only see live slots")
    }
}

impl<K, V, M> Entries<M> for SlotsView<'_, K, V, M> {
    #[inline]
    fn meta(&self, id: SlotId) -> &M {
        &self.slot(id).meta
    }

    #[inline]
    fn meta_mut(&mut self, id: SlotId) -> &mut M {
        &mut self.0[id as usize]
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
        self.slot(id).weight
    }
}

/// An entry that left a shard by eviction, handed out so its owner can pass it on (to a
/// listener, a lower tier) and drop it outside any lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted<K, V> {
    /// The key's hash.
    pub hash: u64,
    /// The entry's key.
    pub key: K,
    /// The entry's value.
    pub value: V,
    /// The entry's weight.
    pub weight: u64,
}

/// A single-threaded cache shard: a hashbrown index over a slot arena, with eviction and
/// admission delegated to a [`Policy`] (by default [`ProbationClock`]).
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
pub struct Shard<K, V, P: Policy = ProbationClock> {
    index: HashTable<SlotId>,
    slots: Vec<Option<Slot<K, V, P::Meta>>>,
    free: Vec<SlotId>,
    policy: P,
    weight: u64,
}

impl<K, V> Shard<K, V, ProbationClock> {
    /// An empty shard with the default policy.
    pub fn new() -> Self {
        Self::with_policy(ProbationClock::new())
    }
}

impl<K, V> Default for Shard<K, V, ProbationClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, P: Policy> Shard<K, V, P> {
    /// An empty shard evicting by `policy`.
    pub fn with_policy(policy: P) -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            policy,
            weight: 0,
        }
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

    /// The key and value for `key`, counted as a use.
    pub fn get_key_value<Q>(&self, hash: u64, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slot = self.slot(self.find(hash, key)?);
        P::on_hit(&slot.meta);
        Some((&slot.key, &slot.value))
    }

    /// The stored key and value for `key`, counted as a use, with the number of hits counted
    /// this way so far (this one included, saturating at 255).
    pub(crate) fn get_counting<Q>(&self, hash: u64, key: &Q) -> Option<(&K, &V, u8)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let slot = self.slot(self.find(hash, key)?);
        P::on_hit(&slot.meta);
        // Relaxed: a hint for promotion; racing hits may count once.
        let seen = slot.hits.load(Ordering::Relaxed);
        if seen == u8::MAX {
            // Saturated: no store, so a hot entry's hits stop writing its cache line.
            return Some((&slot.key, &slot.value, seen));
        }
        slot.hits.store(seen + 1, Ordering::Relaxed);
        Some((&slot.key, &slot.value, seen + 1))
    }

    /// The value for `key`, without counting a use.
    pub fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.find(hash, key).map(|id| &self.slot(id).value)
    }

    /// Stores `value` for `key` with `weight`. Returns the previous value if the key was
    /// present (its stored key is kept, as `HashMap::insert` does). Never evicts: the owner
    /// calls [`evict`](Self::evict) while it is over budget.
    ///
    /// # Panics
    /// If the shard would hold more than `u32::MAX` entries.
    pub fn insert(&mut self, hash: u64, key: K, value: V, weight: u64) -> Option<V>
    where
        K: Eq,
    {
        let info = EntryInfo::new(hash, weight);
        if let Some(id) = self.find(hash, &key) {
            let slot = self.slots[id as usize].as_mut().expect("live slot");
            let old_weight = core::mem::replace(&mut slot.weight, weight);
            self.weight = self.weight - old_weight + weight;
            let old = core::mem::replace(&mut slot.value, value);
            self.policy
                .on_replace(&mut SlotsView(&mut self.slots), id, old_weight, info);
            return Some(old);
        }
        let slot = Slot {
            hash,
            weight,
            key,
            value,
            meta: self.policy.new_meta(),
            hits: AtomicU8::new(0),
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
        let slots = &self.slots;
        self.index.insert_unique(hash, id, |&i| {
            slots[i as usize].as_ref().map_or(0, |s| s.hash)
        });
        self.weight += weight;
        self.policy
            .on_insert(&mut SlotsView(&mut self.slots), id, info);
        None
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
        self.policy.on_remove(&mut SlotsView(&mut self.slots), id);
        let slot = self.release(id);
        Some((slot.key, slot.value))
    }

    /// Evicts the policy's next victim, or returns `None` when the shard is empty.
    pub fn evict(&mut self) -> Option<Evicted<K, V>> {
        let id = self.policy.evict(&mut SlotsView(&mut self.slots))?;
        let hash = self.slot(id).hash;
        self.index
            .find_entry(hash, |&i| i == id)
            .expect("the victim is indexed")
            .remove();
        let slot = self.release(id);
        Some(Evicted {
            hash: slot.hash,
            key: slot.key,
            value: slot.value,
            weight: slot.weight,
        })
    }

    fn release(&mut self, id: SlotId) -> Slot<K, V, P::Meta> {
        let slot = self.slots[id as usize].take().expect("live slot");
        self.free.push(id);
        self.weight -= slot.weight;
        slot
    }

    /// Removes every entry and returns them, so the caller can drop them outside its lock.
    pub fn take_all(&mut self) -> impl Iterator<Item = (K, V)> + use<K, V, P> {
        let slots = core::mem::take(&mut self.slots);
        self.index.clear();
        self.free.clear();
        self.policy.clear();
        self.weight = 0;
        slots.into_iter().flatten().map(|s| (s.key, s.value))
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
