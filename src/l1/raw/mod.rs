//! The unsafe layer of L1: sets of epoch-protected nodes, the collector that retires them, and
//! the guards that make reading them sound. Everything above this module is safe code.
//!
//! Soundness rests on one rule: a node is only dereferenced under a guard pinned on **this
//! table's** collector. The raw table owns its [`Collector`]; the only ways to obtain a
//! [`RawGuard`] are [`RawHandle::pin`] (a handle registered on that collector) and, under
//! `std`, [`RawTable::pin`] (a thread-local handle registered on it). Because the table owns
//! its collector and every handle and guard borrows the table, all retired nodes are freed by
//! the time the table's memory is: the last `Collector` reference drops its global queue,
//! which runs every deferred destruction.

mod set;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;

use crate::error::BuildError;
use crate::sync::AtomicU8;
use crate::sync::epoch::{self, Collector, LocalHandle, Owned};

pub use set::Placement;
pub(crate) use set::WAYS;
use set::{Node, Set, retire};

/// The sets, their CLOCK hands and the collector that reclaims their nodes.
pub(crate) struct RawTable<K, V> {
    sets: Box<[Set<K, V>]>,
    /// One CLOCK hand per set, only touched under that set's lock; kept apart so a set stays
    /// one cache line.
    hands: Box<[AtomicU8]>,
    set_mask: usize,
    #[cfg(all(feature = "std", not(loom)))]
    thread_handles: thread_local::ThreadLocal<ThreadHandle>,
    /// Declared last so it is dropped last: the table's reference must be the last one to the
    /// collector's global state. If a participant (a thread handle) held the last reference,
    /// dropping it would free that participant's record from inside its own `finalize`, which
    /// Miri (Tree Borrows) reports as a deallocation under a live borrow.
    collector: Collector,
}

impl<K, V> RawTable<K, V> {
    /// A table of at least `capacity` entries: `capacity / WAYS` sets rounded up to a power
    /// of two.
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, BuildError> {
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        let sets = capacity
            .div_ceil(WAYS)
            .checked_next_power_of_two()
            .filter(|&n| {
                n.checked_mul(core::mem::size_of::<Set<K, V>>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or(BuildError::CapacityOverflow {
                requested: capacity,
            })?;
        let bytes = sets * core::mem::size_of::<Set<K, V>>();
        let mut set_vec = Vec::new();
        set_vec
            .try_reserve_exact(sets)
            .map_err(|_| BuildError::AllocationFailed { bytes })?;
        set_vec.extend((0..sets).map(|_| Set::new()));
        let mut hand_vec = Vec::new();
        hand_vec
            .try_reserve_exact(sets)
            .map_err(|_| BuildError::AllocationFailed { bytes: sets })?;
        hand_vec.extend((0..sets).map(|_| AtomicU8::new(0)));
        Ok(Self {
            sets: set_vec.into_boxed_slice(),
            hands: hand_vec.into_boxed_slice(),
            set_mask: sets - 1,
            #[cfg(all(feature = "std", not(loom)))]
            thread_handles: thread_local::ThreadLocal::new(),
            collector: Collector::new(),
        })
    }

    /// Entries the table can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Entries present (a scan of every set's tags: `O(capacity)`, a moment's view).
    pub(crate) fn len(&self) -> usize {
        self.sets.iter().map(Set::occupied).sum()
    }

    /// Heap bytes the table holds: its sets and hands, and one node per entry present (what
    /// keys and values own themselves, and retired nodes awaiting reclamation, not counted).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.sets.len() * (core::mem::size_of::<Set<K, V>>() + core::mem::size_of::<AtomicU8>())
            + self.len() * core::mem::size_of::<Node<K, V>>()
    }

    /// Registers a new participant on this table's collector.
    pub(crate) fn register(&self) -> RawHandle<'_, K, V> {
        RawHandle {
            table: self,
            local: self.collector.register(),
        }
    }

    /// Pins the calling thread with its thread-local handle, registering one on first use.
    #[cfg(all(feature = "std", not(loom)))]
    #[inline]
    pub(crate) fn pin(&self) -> RawGuard<'_, K, V> {
        let handle = self
            .thread_handles
            .get_or(|| ThreadHandle(self.collector.register()));
        RawGuard {
            table: self,
            guard: handle.0.pin(),
        }
    }

    #[inline]
    fn set_of(&self, hash: u64) -> (&Set<K, V>, &AtomicU8) {
        let index = hash as usize & self.set_mask;
        (&self.sets[index], &self.hands[index])
    }
}

impl<K, V> Drop for RawTable<K, V> {
    fn drop(&mut self) {
        // Live nodes are owned by their slots; retired ones by the collector, whose global
        // queue runs their destructors when the last reference (this table's `collector`
        // field, after the thread handles) is dropped. Every handle and guard borrows the
        // table, so none is alive here.
        for set in self.sets.iter_mut() {
            set.drop_nodes();
        }
    }
}

/// A thread's epoch participant, kept in the table's per-thread storage.
#[cfg(all(feature = "std", not(loom)))]
struct ThreadHandle(LocalHandle);

// SAFETY: a `LocalHandle` is `!Send` because its participant record must not be used by two
// threads at once. `ThreadLocal` hands a value only to the thread that created it, or, once
// that thread has exited, to a later thread that reuses its id (the handover is ordered by
// `thread_local`'s id allocator); the table drops the handles only with `&mut self`, when no
// thread can be using them. So the participant is never used concurrently.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Send for ThreadHandle {}

/// A participant of one table's collector, owned by one thread (`!Send`).
pub(crate) struct RawHandle<'t, K, V> {
    table: &'t RawTable<K, V>,
    local: LocalHandle,
}

impl<'t, K, V> RawHandle<'t, K, V> {
    /// Pins the participant: nodes read through the guard stay allocated until it drops.
    #[inline]
    pub(crate) fn pin(&self) -> RawGuard<'t, K, V> {
        RawGuard {
            table: self.table,
            guard: self.local.pin(),
        }
    }
}

/// A pinned participant of one table's collector: reads through it are zero-copy.
pub(crate) struct RawGuard<'t, K, V> {
    table: &'t RawTable<K, V>,
    guard: epoch::Guard,
}

impl<K, V> RawGuard<'_, K, V> {
    /// The entry for `key`, borrowed for as long as this guard. Wait-free.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q, touch: bool) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (set, _) = self.table.set_of(hash);
        set.find(hash, key, touch, &self.guard)
            .map(|node| (&node.key, &node.value))
    }

    /// Whether `key` was used since its reference bit was last cleared; clears it.
    #[inline]
    pub(crate) fn take_reference<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (set, _) = self.table.set_of(hash);
        set.take_reference(hash, key, &self.guard)
    }

    /// Inserts or replaces; never fails (a full set evicts by CLOCK).
    pub(crate) fn insert(&self, hash: u64, key: K, value: V) -> Placement
    where
        K: Eq,
    {
        let (set, hand) = self.table.set_of(hash);
        let node = Owned::new(Node { hash, key, value });
        loop {
            let snap = set.snapshot(hash, &node.key, &self.guard);
            let lock = set.lock();
            if !lock.validate(&snap, &self.guard) {
                continue;
            }
            let (way, placement) = match snap.found() {
                Some(way) => (way, Placement::Replaced),
                None => {
                    let way = lock.choose_way(&snap, hand);
                    let evicts = snap.occupied().any(|(w, _)| w == way);
                    (
                        way,
                        if evicts {
                            Placement::Evicted
                        } else {
                            Placement::Vacant
                        },
                    )
                }
            };
            let old = lock.publish(&snap, way, node, &self.guard);
            drop(lock);
            // SAFETY: `old` was unlinked from `way` under the lock just released, by this
            // thread only; `self.guard` pins this table's collector.
            unsafe { retire(old, &self.guard) };
            return placement;
        }
    }

    /// Inserts the entry `make` builds unless the set declines a newcomer (see
    /// `Set::admits`). `make` runs only when admitted. Returns whether the entry was inserted.
    pub(crate) fn insert_admitted(&self, hash: u64, make: impl FnOnce() -> (K, V)) -> bool
    where
        K: Eq,
    {
        let (set, hand) = self.table.set_of(hash);
        if !set.admits(hand) {
            return false;
        }
        let (key, value) = make();
        self.insert(hash, key, value);
        true
    }

    /// Replaces the value of a present key; hands key and value back if it is absent.
    pub(crate) fn replace(&self, hash: u64, key: K, value: V) -> Result<(), (K, V)>
    where
        K: Eq,
    {
        let (set, _) = self.table.set_of(hash);
        let node = Owned::new(Node { hash, key, value });
        loop {
            let snap = set.snapshot(hash, &node.key, &self.guard);
            let Some(way) = snap.found() else {
                let node = *node.into_box();
                return Err((node.key, node.value));
            };
            let lock = set.lock();
            if !lock.validate(&snap, &self.guard) {
                continue;
            }
            let old = lock.publish(&snap, way, node, &self.guard);
            drop(lock);
            // SAFETY: unlinked under the lock by this thread; the guard pins this table's
            // collector.
            unsafe { retire(old, &self.guard) };
            return Ok(());
        }
    }

    /// Removes `key`; returns whether it was present.
    pub(crate) fn remove<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (set, _) = self.table.set_of(hash);
        // Most removals (the tiered cache's invalidations) find nothing: answer those from the
        // tags, as a reader would, without loading the whole set.
        if set.find(hash, key, false, &self.guard).is_none() {
            return false;
        }
        loop {
            let snap = set.snapshot(hash, key, &self.guard);
            let Some(way) = snap.found() else {
                return false;
            };
            let lock = set.lock();
            if !lock.validate(&snap, &self.guard) {
                continue;
            }
            let old = lock.unlink(&snap, way);
            drop(lock);
            // SAFETY: unlinked under the lock by this thread; the guard pins this table's
            // collector.
            unsafe { retire(old, &self.guard) };
            return true;
        }
    }

    /// Removes every entry, one set at a time (concurrent inserts may land in sets already
    /// cleared).
    pub(crate) fn clear(&self) {
        for set in self.table.sets.iter() {
            loop {
                let snap = set.snapshot_slots(&self.guard);
                let lock = set.lock();
                if !lock.validate(&snap, &self.guard) {
                    continue;
                }
                let mut unlinked = [epoch::Shared::null(); WAYS];
                for (way, _) in snap.occupied() {
                    unlinked[way] = lock.unlink(&snap, way);
                }
                drop(lock);
                for old in unlinked {
                    // SAFETY: each was unlinked under the lock by this thread; the guard pins
                    // this table's collector.
                    unsafe { retire(old, &self.guard) };
                }
                break;
            }
        }
    }

    /// Moves this thread's retired nodes to the collector and frees what every pinned
    /// participant has moved past (at most 8 batches of 64 nodes).
    pub(crate) fn flush(&self) {
        self.guard.flush();
    }

    /// Unpins and re-pins, letting the epoch advance past this guard's reads.
    pub(crate) fn repin(&mut self) {
        self.guard.repin();
    }
}
