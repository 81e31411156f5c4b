//! One L2 shard: a hash index into a slot arena, with eviction delegated to a [`Policy`].

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;

use hashbrown::HashTable;

use super::policy::{EntryInfo, Policy, ProbationClock, SlotId};
use crate::sync::{AtomicU8, Ordering};

struct Slot<K, V> {
    hash: u64,
    weight: u64,
    /// Hits counted by [`Shard::get_counting`], saturating (the tiered cache promotes to L1
    /// after a number of them).
    hits: AtomicU8,
    key: K,
    value: V,
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
pub struct Shard<K, V, P = ProbationClock> {
    index: HashTable<SlotId>,
    slots: Vec<Option<Slot<K, V>>>,
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

    fn slot(&self, id: SlotId) -> &Slot<K, V> {
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
        let id = self.find(hash, key)?;
        self.policy.on_hit(id);
        let slot = self.slot(id);
        Some((&slot.key, &slot.value))
    }

    /// The stored key and value for `key`, counted as a use, with the number of hits counted
    /// this way so far (this one included, saturating at 255).
    pub(crate) fn get_counting<Q>(&self, hash: u64, key: &Q) -> Option<(&K, &V, u8)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let id = self.find(hash, key)?;
        self.policy.on_hit(id);
        let slot = self.slot(id);
        // Relaxed: a hint for promotion; racing hits may count once.
        let hits = slot.hits.load(Ordering::Relaxed).saturating_add(1);
        slot.hits.store(hits, Ordering::Relaxed);
        Some((&slot.key, &slot.value, hits))
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
            self.policy.on_replace(id, old_weight, info);
            return Some(old);
        }
        let slot = Slot {
            hash,
            weight,
            hits: AtomicU8::new(0),
            key,
            value,
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
        self.policy.on_insert(id, info);
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
        self.policy.on_remove(id);
        let slot = self.release(id);
        Some((slot.key, slot.value))
    }

    /// Evicts the policy's next victim, or returns `None` when the shard is empty.
    pub fn evict(&mut self) -> Option<Evicted<K, V>> {
        let slots = &self.slots;
        let id = self.policy.evict(&|id| {
            slots[id as usize]
                .as_ref()
                .expect("policies only hold live slots")
                .hash
        })?;
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

    fn release(&mut self, id: SlotId) -> Slot<K, V> {
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

impl<K, V, P> fmt::Debug for Shard<K, V, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("len", &self.index.len())
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
