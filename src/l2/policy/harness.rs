//! A single-threaded table driving one [`Policy`]: what the trace simulator measures policies
//! with, and what their unit tests use.

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::fmt;

use hashbrown::HashTable;

use super::{DefaultPolicy, Entries, EntryInfo, HitReports, Policy, Priority, SlotId};
use crate::entry::RemovalCause;

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// One entry.
struct Slot<K, V> {
    hash: u64,
    /// When the entry expires ([`NEVER`] if it does not).
    expires: u64,
    weight: u64,
    /// Used without the policy being told (see [`Harness::mark_used`]).
    referenced: bool,
    key: K,
    value: V,
}

/// The slots and the policy's per-entry state, as the policy sees them.
struct View<'a, K, V, M> {
    slots: &'a mut [Option<Slot<K, V>>],
    metas: &'a mut [M],
    now: u64,
}

impl<K, V, M> View<'_, K, V, M> {
    fn slot(&self, id: SlotId) -> &Slot<K, V> {
        self.slots[id as usize]
            .as_ref()
            .expect("policies only see live slots")
    }
}

impl<K, V, M> Entries<M> for View<'_, K, V, M> {
    #[inline]
    fn meta(&self, id: SlotId) -> &M {
        &self.metas[id as usize]
    }

    #[inline]
    fn meta_mut(&mut self, id: SlotId) -> &mut M {
        &mut self.metas[id as usize]
    }

    #[inline]
    fn hash(&self, id: SlotId) -> u64 {
        self.slot(id).hash
    }

    #[inline]
    fn weight(&self, id: SlotId) -> u64 {
        self.slot(id).weight
    }

    #[inline]
    fn is_expired(&self, id: SlotId) -> bool {
        self.slot(id).expires <= self.now
    }

    fn referenced(&mut self, id: SlotId) -> bool {
        let slot = self.slots[id as usize]
            .as_mut()
            .expect("policies only see live slots");
        core::mem::take(&mut slot.referenced)
    }
}

/// An entry that left the harness by eviction.
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
}

/// A single-threaded table of entries evicted by a [`Policy`], each hit told to the policy at
/// once ([`get`](Self::get)): the trace simulator replays traces through it to compare
/// policies exactly, with no concurrency in between.
///
/// The harness keeps no capacity of its own: its owner asks for victims with
/// [`evict`](Self::evict) while it is over budget.
///
/// ```
/// use stratacache::policy::Harness;
///
/// let mut table: Harness<&str, u32> = Harness::new();
/// table.insert(11, "hp", 100, 1);
/// assert_eq!(table.get(11, "hp"), Some(&100));
/// let victim = table.evict().expect("one entry to evict");
/// assert_eq!((victim.key, victim.value), ("hp", 100));
/// assert!(table.is_empty());
/// ```
pub struct Harness<K, V, P: Policy = DefaultPolicy> {
    index: HashTable<SlotId>,
    slots: Vec<Option<Slot<K, V>>>,
    metas: Vec<P::Meta>,
    free: Vec<SlotId>,
    policy: P,
    weight: u64,
    /// The hash `get` last missed, until the next insertion ([`EntryInfo::follows_miss`]).
    last_miss: Option<u64>,
}

impl<K, V> Harness<K, V, DefaultPolicy> {
    /// An empty table with the default policy.
    pub fn new() -> Self {
        Self::with_policy(DefaultPolicy::new())
    }
}

impl<K, V> Default for Harness<K, V, DefaultPolicy> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, P: Policy> Harness<K, V, P> {
    /// An empty table evicting by `policy`.
    pub fn with_policy(policy: P) -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            metas: Vec::new(),
            free: Vec::new(),
            last_miss: None,
            policy,
            weight: 0,
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table holds no entry.
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

    /// Makes room for `additional` more entries and tells the policy how many the table will
    /// hold ([`Policy::reserve`]).
    pub fn reserve(&mut self, additional: usize) {
        let slots = &self.slots;
        self.index.reserve(additional, |&id| {
            slots[id as usize].as_ref().map_or(0, |s| s.hash)
        });
        self.slots.reserve(additional);
        self.metas.reserve(additional);
        self.policy.reserve(self.len() + additional);
    }

    /// The policy and its view of the entries at clock `now`.
    fn split(&mut self, now: u64) -> (&mut P, View<'_, K, V, P::Meta>) {
        (
            &mut self.policy,
            View {
                slots: &mut self.slots,
                metas: &mut self.metas,
                now,
            },
        )
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

    /// The value for `key`, its use marked, and told to the policy at once if it asks to be
    /// ([`Policy::hit_reports`]), as a concurrent table whose record was not lost would.
    pub fn get<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let Some(id) = self.find(hash, key) else {
            self.last_miss = Some(hash);
            return None;
        };
        let reports = self.policy.hit_reports();
        // A policy told of every hit needs no mark (the concurrent table's replay consumes
        // it); one told of some or none reads it.
        if reports != HitReports::All
            && let Some(slot) = self.slots[id as usize].as_mut()
        {
            slot.referenced = true;
        }
        if reports.wants(hash) {
            let (policy, mut view) = self.split(0);
            policy.on_access(&mut view, id);
        }
        Some(&self.slot(id).value)
    }

    /// Marks `key` used without telling the policy (as a concurrent table's lost hit record,
    /// or a use of the entry's copy in L1): the policy learns of it only when it asks
    /// ([`Entries::referenced`]). Returns whether the key is present.
    pub fn mark_used<Q>(&mut self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let Some(id) = self.find(hash, key) else {
            return false;
        };
        if let Some(slot) = self.slots[id as usize].as_mut() {
            slot.referenced = true;
        }
        true
    }

    /// The value for `key`, without counting a use.
    pub fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.find(hash, key).map(|id| &self.slot(id).value)
    }

    /// Stores `value` for `key` with `weight`, at `High` priority and without expiry. Returns
    /// the previous value if the key was present (its stored key is kept, as
    /// `HashMap::insert` does). Never evicts: the owner calls [`evict`](Self::evict) while it
    /// is over budget.
    pub fn insert(&mut self, hash: u64, key: K, value: V, weight: u64) -> Option<V>
    where
        K: Eq,
    {
        self.insert_with(
            key,
            value,
            EntryInfo::new(hash, weight, Priority::High),
            NEVER,
        )
    }

    /// Stores an entry described by `info` that expires at `expires` (`u64::MAX` for never),
    /// as [`insert`](Self::insert). An insertion of the key [`get`](Self::get) last missed
    /// (with nothing stored between) [follows that miss](EntryInfo::follows_miss), as the
    /// tiered cache tells its policy.
    pub fn insert_with(&mut self, key: K, value: V, info: EntryInfo, expires: u64) -> Option<V>
    where
        K: Eq,
    {
        let hash = info.hash;
        let info = info.following_miss(info.follows_miss || self.last_miss.take() == Some(hash));
        let slots = &self.slots;
        let entry = self.index.entry(
            hash,
            |&id| slots[id as usize].as_ref().is_some_and(|s| s.key == key),
            |&id| slots[id as usize].as_ref().map_or(0, |s| s.hash),
        );
        let vacant = match entry {
            hashbrown::hash_table::Entry::Occupied(occupied) => {
                let id = *occupied.get();
                let slot = self.slots[id as usize].as_mut().expect("live slot");
                let old_weight = core::mem::replace(&mut slot.weight, info.weight);
                self.weight = self.weight - old_weight + info.weight;
                let old = core::mem::replace(&mut slot.value, value);
                slot.expires = expires;
                let (policy, mut view) = self.split(0);
                policy.on_replace(&mut view, id, id, old_weight, info);
                return Some(old);
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => vacant,
        };
        let slot = Slot {
            hash,
            expires,
            weight: info.weight,
            referenced: false,
            key,
            value,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                self.metas[id as usize] = P::Meta::default();
                id
            }
            None => {
                let id = SlotId::try_from(self.slots.len())
                    .expect("a table holds at most u32::MAX entries");
                self.slots.push(Some(slot));
                self.metas.push(P::Meta::default());
                id
            }
        };
        vacant.insert(id);
        self.weight += info.weight;
        let (policy, mut view) = self.split(0);
        policy.on_insert(&mut view, id, info);
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
        let (policy, mut view) = self.split(0);
        policy.on_remove(&mut view, id);
        let slot = self.release(id);
        Some((slot.key, slot.value))
    }

    /// Evicts the policy's next victim (of any priority, with no entry considered expired),
    /// or returns `None` when the table is empty.
    pub fn evict(&mut self) -> Option<Evicted<K, V>> {
        self.evict_at(0, false)
    }

    /// Evicts the policy's next victim with the clock at `now` (entries whose deadline is at
    /// or before it have expired, and go first); with `spare_critical`, never a `Critical`
    /// entry.
    pub fn evict_at(&mut self, now: u64, spare_critical: bool) -> Option<Evicted<K, V>> {
        let (policy, mut view) = self.split(now);
        let id = policy.evict(&mut view, spare_critical)?;
        let hash = self.slot(id).hash;
        self.index
            .find_entry(hash, |&i| i == id)
            .expect("the victim is indexed")
            .remove();
        let slot = self.release(id);
        Some(Evicted {
            hash: slot.hash,
            cause: if slot.expires <= now {
                RemovalCause::Expired
            } else {
                RemovalCause::Capacity
            },
            key: slot.key,
            value: slot.value,
            weight: slot.weight,
        })
    }

    fn release(&mut self, id: SlotId) -> Slot<K, V> {
        let slot = self.slots[id as usize].take().expect("live slot");
        self.metas[id as usize] = P::Meta::default();
        self.free.push(id);
        self.weight -= slot.weight;
        slot
    }

    /// Removes every entry and returns them.
    pub fn take_all(&mut self) -> impl Iterator<Item = (K, V)> + use<K, V, P> {
        let slots = core::mem::take(&mut self.slots);
        self.metas.clear();
        self.free.clear();
        self.index.clear();
        self.policy.clear();
        self.weight = 0;
        slots.into_iter().flatten().map(|s| (s.key, s.value))
    }
}

impl<K, V, P: Policy> fmt::Debug for Harness<K, V, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("len", &self.index.len())
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
