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

mod memory;
mod set;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;

use crate::error::BuildError;
use crate::sync::AtomicU8;
use crate::sync::epoch::{self, Collector, LocalHandle};

pub(crate) use memory::NodeMemory as ReplicaMemory;
use memory::NodeMemory;
pub use set::Placement;
pub(crate) use set::WAYS;
use set::{Node, Set};

/// The layout of a node of `K` and `V`.
pub(crate) fn node_layout<K, V>() -> core::alloc::Layout {
    core::alloc::Layout::new::<Node<K, V>>()
}

/// One copy of the table's sets: the tiered cache keeps one per socket.
struct Replica<K, V> {
    sets: Box<[Set<K, V>]>,
    /// One CLOCK hand per set, only touched under that set's lock; kept apart so a set stays
    /// one cache line.
    hands: Box<[AtomicU8]>,
}

/// Picks the replica a thread reads (the tiered cache: its socket's).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) type ReplicaOfThread = Box<dyn Fn() -> usize + Send + Sync>;

/// The sets (in one or more replicas), their CLOCK hands and the collector that reclaims their
/// nodes. Every replica shares the collector, so one guard protects reads and writes in all.
pub(crate) struct RawTable<K, V> {
    replicas: Box<[Replica<K, V>]>,
    set_mask: usize,
    /// Which replica a thread's thread-local handle reads, asked again every
    /// [`REPLICA_REFRESH`] pins (threads migrate rarely).
    #[cfg(all(feature = "std", not(loom)))]
    replica_of_thread: Option<ReplicaOfThread>,
    #[cfg(all(feature = "std", not(loom)))]
    thread_handles: thread_local::ThreadLocal<ThreadHandle>,
    /// This table's number, which no other table of the process ever has: a thread's
    /// [`LAST_HANDLE`] names the table its handle belongs to by it.
    #[cfg(all(feature = "std", not(loom)))]
    serial: u64,
    /// Declared last so it is dropped last: the table's reference must be the last one to the
    /// collector's global state. If a participant (a thread handle) held the last reference,
    /// dropping it would free that participant's record from inside its own `finalize`, which
    /// Miri (Tree Borrows) reports as a deallocation under a live borrow.
    collector: Collector,
    /// Each replica's node memory. After the collector: the collector's last deferred frees
    /// run into these arenas as it drops.
    node_memory: Box<[NodeMemory]>,
}

/// Pins of a thread-local handle between two askings of its replica.
#[cfg(all(feature = "std", not(loom)))]
const REPLICA_REFRESH: u32 = 1024;

impl<K, V> RawTable<K, V> {
    /// A table of at least `capacity` entries: `capacity / WAYS` sets rounded up to a power
    /// of two.
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, BuildError> {
        Self::with_replicas(capacity, 1)
    }

    /// `replicas` (at least one) copies of a table of at least `capacity` entries each.
    pub(crate) fn with_replicas(capacity: usize, replicas: usize) -> Result<Self, BuildError> {
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        let sets = capacity
            .div_ceil(WAYS)
            .checked_next_power_of_two()
            .filter(|&n| {
                n.checked_mul(core::mem::size_of::<Set<K, V>>())
                    .and_then(|b| b.checked_mul(replicas.max(1)))
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or(BuildError::CapacityOverflow {
                requested: capacity,
            })?;
        let bytes = sets * core::mem::size_of::<Set<K, V>>();
        let mut list = Vec::new();
        list.try_reserve_exact(replicas.max(1))
            .map_err(|_| BuildError::AllocationFailed { bytes })?;
        for _ in 0..replicas.max(1) {
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
            list.push(Replica {
                sets: set_vec.into_boxed_slice(),
                hands: hand_vec.into_boxed_slice(),
            });
        }
        let mut node_memory = Vec::new();
        node_memory
            .try_reserve_exact(replicas.max(1))
            .map_err(|_| BuildError::AllocationFailed { bytes })?;
        node_memory.extend((0..replicas.max(1)).map(|_| NodeMemory::global::<K, V>()));
        Ok(Self {
            node_memory: node_memory.into_boxed_slice(),
            replicas: list.into_boxed_slice(),
            set_mask: sets - 1,
            #[cfg(all(feature = "std", not(loom)))]
            replica_of_thread: None,
            #[cfg(all(feature = "std", not(loom)))]
            thread_handles: thread_local::ThreadLocal::new(),
            #[cfg(all(feature = "std", not(loom)))]
            serial: table_serial(),
            collector: Collector::new(),
        })
    }

    /// Lets thread-local handles ask `replica_of_thread` which replica their thread reads.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) fn set_replica_of_thread(&mut self, replica_of_thread: ReplicaOfThread) {
        self.replica_of_thread = Some(replica_of_thread);
    }

    /// Allocates replica `replica`'s nodes from `memory` from now on. Only before any node
    /// exists (the table is built but unused), so every node is freed where it was made.
    pub(crate) fn set_node_memory(&mut self, replica: usize, memory: NodeMemory) {
        debug_assert_eq!(self.len(), 0, "nodes would be freed to the wrong memory");
        self.node_memory[replica] = memory;
    }

    /// How many replicas the table keeps.
    pub(crate) fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// The memory of replica `replica`'s sets (to place it on its socket's node).
    #[cfg(all(feature = "std", target_os = "linux", not(loom)))]
    pub(crate) fn replica_sets(&self, replica: usize) -> &[impl Sized] {
        &self.replicas[replica].sets
    }

    /// Entries one replica can hold.
    pub(crate) fn capacity(&self) -> usize {
        (self.set_mask + 1) * WAYS
    }

    /// Entries present in the fullest replica (a scan of every set's tags:
    /// `O(capacity × replicas)`, a moment's view).
    pub(crate) fn len(&self) -> usize {
        self.replicas
            .iter()
            .map(|r| r.sets.iter().map(Set::occupied).sum::<usize>())
            .max()
            .unwrap_or(0)
    }

    /// Heap bytes the table holds: its sets and hands, and one node per entry present (what
    /// keys and values own themselves, and retired nodes awaiting reclamation, not counted).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.replicas
            .iter()
            .map(|r| {
                r.sets.len()
                    * (core::mem::size_of::<Set<K, V>>() + core::mem::size_of::<AtomicU8>())
                    + r.sets.iter().map(Set::occupied).sum::<usize>()
                        * core::mem::size_of::<Node<K, V>>()
            })
            .sum()
    }

    /// Registers a new participant on this table's collector, reading `replica` (taken
    /// modulo the replica count).
    pub(crate) fn register(&self, replica: usize) -> RawHandle<'_, K, V> {
        let replica = replica % self.replicas.len();
        RawHandle {
            table: self,
            local: self.collector.register(),
            _collector: self.collector.clone(),
            replica,
            home: &self.replicas[replica],
        }
    }

    /// Pins the calling thread with its thread-local handle, registering one on first use.
    #[cfg(all(feature = "std", not(loom)))]
    #[inline(always)]
    pub(crate) fn pin(&self) -> RawGuard<'_, K, V> {
        let (guard, replica, home) = match (self.thread_handle(), &*self.replicas) {
            (Some(handle), [only]) => (handle.local.pin(), 0, only),
            (Some(handle), replicas) => {
                let replica = self.replica_of(handle);
                (handle.local.pin(), replica, &replicas[replica])
            }
            (None, replicas) => (self.pin_late(), 0, &replicas[0]),
        };
        RawGuard {
            table: self,
            guard,
            replica,
            home,
        }
    }

    /// A pin for a thread whose thread-locals are being destroyed (a value's `Drop` in
    /// another thread-local calling the cache as its thread exits): `thread_local` can no
    /// longer say which handle is the thread's (it panics, and a panic there aborts), so the
    /// pin registers a participant of its own, released with it, and reads the first replica.
    /// Slow, and only then.
    #[cfg(all(feature = "std", not(loom)))]
    #[cold]
    #[inline(never)]
    fn pin_late(&self) -> epoch::Guard {
        // The handle goes at once: crossbeam-epoch keeps a participant whose last handle is
        // dropped while pinned until its last guard unpins, and releases it then.
        self.collector.register().pin()
    }

    /// The replica `handle`'s thread reads, asked again every [`REPLICA_REFRESH`] pins and
    /// when the handle passes to a new thread.
    #[cfg(all(feature = "std", not(loom)))]
    fn replica_of(&self, handle: &ThreadHandle) -> usize {
        let pins = handle.pins.get();
        handle.pins.set(pins.wrapping_add(1));
        // A handle passes to a new thread when its thread exits: ask again then too.
        let thread = thread_serial();
        let new_thread = handle.thread.get() != thread;
        if (new_thread || pins.is_multiple_of(REPLICA_REFRESH))
            && let Some(replica_of_thread) = &self.replica_of_thread
        {
            handle.thread.set(thread);
            handle
                .replica
                .set(replica_of_thread() % self.replicas.len());
        }
        handle.replica.get()
    }

    /// The calling thread's handle, registered on first use; `None` once the thread's
    /// thread-locals are being destroyed (see [`pin_late`](Self::pin_late)). The handle of the
    /// table the thread pinned last is remembered in a plain thread-local ([`LAST_HANDLE`]),
    /// so a thread that keeps calling one cache finds it without `ThreadLocal`'s lookup.
    #[cfg(all(feature = "std", not(loom)))]
    #[inline]
    fn thread_handle(&self) -> Option<&ThreadHandle> {
        let (serial, last) = LAST_HANDLE.with(core::cell::Cell::get);
        if serial == self.serial {
            // SAFETY: `last` was stored below, on this thread (the thread-local is the
            // thread's own), from this very table: serials are never reused, and `&self`
            // keeps the table alive. `ThreadLocal` keeps each value at one heap address until
            // it is dropped, which only `&mut self` (or the table's drop) can do. The value is
            // this thread's while the thread holds its `ThreadLocal` id, and `FORGET_LAST`
            // empties `LAST_HANDLE` before the thread gives its id up (see there), so no
            // other thread can be handed the same value meanwhile.
            return Some(unsafe { &*last });
        }
        self.thread_handle_slow(serial)
    }

    #[cfg(all(feature = "std", not(loom)))]
    #[cold]
    #[inline(never)]
    fn thread_handle_slow(&self, last_serial: u64) -> Option<&ThreadHandle> {
        // `last_serial`, the remembered serial the fast path read, tells whether the thread's
        // thread-locals are going. Not `FORGET_LAST` asked directly: on a thread's first pin
        // that would register it before `thread_local`'s guard (see there).
        if last_serial == LEFT {
            return None;
        }
        let handle = self.thread_handles.get_or(|| ThreadHandle {
            local: self.collector.register(),
            replica: core::cell::Cell::new(0),
            pins: core::cell::Cell::new(0),
            thread: core::cell::Cell::new(0),
        });
        // Remembered only while `FORGET_LAST` lives (its first access registers it, after
        // `get_or` registered `thread_local`'s own guard of the thread's id).
        if FORGET_LAST.try_with(|_| ()).is_ok() {
            LAST_HANDLE.with(|last| last.set((self.serial, core::ptr::from_ref(handle))));
        }
        Some(handle)
    }

    /// Whether any replica's memory holds retired nodes ready to be freed (a hint).
    pub(crate) fn has_ready(&self) -> bool {
        self.node_memory.iter().any(NodeMemory::has_ready)
    }

    /// Drops and frees up to `max` retired nodes whose grace period is over, in every
    /// replica's memory (their keys' and values' `Drop` runs here). Returns how many.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        let mut freed = 0;
        for memory in self.node_memory.iter() {
            freed += memory.reclaim(max - freed);
            if freed == max {
                break;
            }
        }
        freed
    }

    /// Nodes retired and not freed yet (waiting for readers, or for [`reclaim`](Self::reclaim)).
    pub(crate) fn retired(&self) -> usize {
        self.node_memory.iter().map(NodeMemory::pending).sum()
    }

    #[inline]
    fn set_of(&self, replica: usize, hash: u64) -> (&Set<K, V>, &AtomicU8) {
        let index = hash as usize & self.set_mask;
        let replica = &self.replicas[replica];
        (&replica.sets[index], &replica.hands[index])
    }
}

impl<K, V> Drop for RawTable<K, V> {
    fn drop(&mut self) {
        // Live nodes are owned by their slots; retired ones by the collector, whose global
        // queue runs their deferred pushes when the last reference (this table's `collector`
        // field, after the thread handles) is dropped, and then by the ready lists of
        // `node_memory`, dropped last, which free them. Every handle and guard borrows the
        // table, so none is alive here.
        for (replica, memory) in self.replicas.iter_mut().zip(self.node_memory.iter()) {
            for set in replica.sets.iter_mut() {
                set.drop_nodes(memory);
            }
        }
    }
}

/// A thread's epoch participant, kept in the table's per-thread storage, with the replica its
/// thread reads and how often it has pinned.
#[cfg(all(feature = "std", not(loom)))]
struct ThreadHandle {
    local: LocalHandle,
    replica: core::cell::Cell<usize>,
    pins: core::cell::Cell<u32>,
    /// The [`thread_serial`] of the thread that last asked for the replica.
    thread: core::cell::Cell<usize>,
}

/// A number for the calling thread that no other thread of the process ever has (from 1;
/// unlike thread-local addresses or `thread_local`'s ids, never reused after a thread exits).
#[cfg(all(feature = "std", not(loom)))]
fn thread_serial() -> usize {
    use crate::sync::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    std::thread_local! {
        // Relaxed: a counter handing out distinct numbers orders nothing else.
        static SERIAL: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SERIAL.with(|serial| *serial)
}

/// A number for a new table, which no other table of the process ever has (from 1: a
/// thread's [`LAST_HANDLE`] starts at 0, naming no table, and [`LEFT`] is never reached).
#[cfg(all(feature = "std", not(loom)))]
fn table_serial() -> u64 {
    use crate::sync::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // Relaxed: a counter handing out distinct numbers orders nothing else.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(all(feature = "std", not(loom)))]
std::thread_local! {
    /// The serial of the table the calling thread pinned last through its thread-local handle,
    /// and that handle (see [`RawTable::thread_handle`]). No destructor: readable while the
    /// thread's other thread-locals are destroyed.
    static LAST_HANDLE: core::cell::Cell<(u64, *const ThreadHandle)> =
        const { core::cell::Cell::new((0, core::ptr::null())) };
    /// Empties [`LAST_HANDLE`] as the thread exits. `thread_local` gives the thread's id up
    /// (and with it the values a later thread reusing the id is handed) in a destructor
    /// registered when the thread first got an id; this one is registered after that (see
    /// `thread_handle_slow`), and thread-local destructors run in the reverse order of their
    /// registration (glibc's `__cxa_thread_atexit_impl` and the standard library's own list
    /// both run the last registered first), so it runs first. It leaves [`LEFT`] behind: a
    /// destructor that calls the cache after it pins with a participant of its own (see
    /// [`RawTable::pin_late`]).
    static FORGET_LAST: ForgetLast = const { ForgetLast };
}

/// [`LAST_HANDLE`]'s serial once [`FORGET_LAST`] is destroyed: the thread's thread-locals are
/// going, and with them, perhaps already, `thread_local`'s id (after which it panics when asked
/// for one). A thread whose first pin comes from a destructor that late has no `FORGET_LAST`
/// yet, and meets `thread_local`'s panic as before.
#[cfg(all(feature = "std", not(loom)))]
const LEFT: u64 = u64::MAX;

/// See [`FORGET_LAST`].
#[cfg(all(feature = "std", not(loom)))]
struct ForgetLast;

#[cfg(all(feature = "std", not(loom)))]
impl Drop for ForgetLast {
    fn drop(&mut self) {
        LAST_HANDLE.with(|last| last.set((LEFT, core::ptr::null())));
    }
}

// SAFETY: a `LocalHandle` is `!Send` because its participant record must not be used by two
// threads at once (and the `Cell`s beside it likewise). `ThreadLocal` hands a value only to the thread that created it, or, once
// that thread has exited, to a later thread that reuses its id (the handover is ordered by
// `thread_local`'s id allocator); the table drops the handles only with `&mut self`, when no
// thread can be using them. So the participant is never used concurrently.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Send for ThreadHandle {}

/// A participant of one table's collector, owned by one thread (`!Send`).
pub(crate) struct RawHandle<'t, K, V> {
    table: &'t RawTable<K, V>,
    local: LocalHandle,
    /// The collector, dropped after `local`: a handle may outlive its table (it borrows it
    /// only while used), and when the last reference to the collector is a participant's,
    /// crossbeam-epoch frees the collector's state from inside that participant's release,
    /// while a reference to the participant is still live (Miri flags this).
    _collector: Collector,
    /// The replica this participant reads.
    replica: usize,
    home: &'t Replica<K, V>,
}

impl<'t, K, V> RawHandle<'t, K, V> {
    /// Pins the participant: nodes read through the guard stay allocated until it drops.
    #[inline]
    pub(crate) fn pin(&self) -> RawGuard<'t, K, V> {
        RawGuard {
            table: self.table,
            guard: self.local.pin(),
            replica: self.replica,
            home: self.home,
        }
    }
}

/// A pinned participant of one table's collector: reads through it are zero-copy.
///
/// Reads, promotions and single-key replacements act on the guard's own replica; removals,
/// reference checks and clears on every replica. Callers serialise writes to one key across
/// replicas themselves (the tiered cache does so under the key's L2 shard lock).
pub(crate) struct RawGuard<'t, K, V> {
    table: &'t RawTable<K, V>,
    guard: epoch::Guard,
    replica: usize,
    /// `table.replicas[replica]`, kept so a read indexes one array, not two.
    home: &'t Replica<K, V>,
}

impl<K, V> RawGuard<'_, K, V> {
    /// Whether this guard pins the collector of the table it reads (the one its nodes are
    /// retired to).
    #[cfg(test)]
    pub(crate) fn pins_its_tables_collector(&self) -> bool {
        self.guard.collector() == Some(&self.table.collector)
    }

    /// The entry for `key`, borrowed for as long as this guard. Wait-free.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q, touch: bool) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let set = &self.home.sets[hash as usize & self.table.set_mask];
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
        // Used on any socket counts; every replica's bit is cleared.
        let mut used = false;
        for replica in 0..self.table.replicas.len() {
            let (set, _) = self.table.set_of(replica, hash);
            used |= set.take_reference(hash, key, &self.guard);
        }
        used
    }

    /// Inserts or replaces in the guard's replica (a full set evicts by CLOCK). See
    /// [`insert_at`](Self::insert_at) for when the entry is handed back.
    pub(crate) fn insert(&self, hash: u64, key: K, value: V) -> Result<Placement, (K, V)>
    where
        K: Eq,
    {
        self.insert_at(self.replica, hash, key, value)
    }

    /// Inserts or replaces in replica `replica`.
    ///
    /// # Errors
    /// When the replica's memory (an arena) cannot make the node: nothing is stored, the key's
    /// copy in that replica, if any, is removed (so no reader finds an older value once this
    /// returns), and the key and value are handed back, for the caller to drop where user code
    /// may run (outside its locks).
    pub(crate) fn insert_at(
        &self,
        replica: usize,
        hash: u64,
        key: K,
        value: V,
    ) -> Result<Placement, (K, V)>
    where
        K: Eq,
    {
        let (set, hand) = self.table.set_of(replica, hash);
        let memory = &self.table.node_memory[replica];
        let node = match memory.make(Node { hash, key, value }) {
            Ok(node) => node,
            Err(node) => {
                // L1 holds copies only: declining loses nothing, but an older copy must go.
                self.remove_at(replica, hash, &node.key);
                return Err((node.key, node.value));
            }
        };
        loop {
            let snap = set.snapshot(hash, &node.node().key, &self.guard);
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
            // SAFETY: `old` was made by this replica's memory and unlinked from `way` under
            // the lock just released, by this thread only; `self.guard` pins this table's
            // collector.
            unsafe { memory.retire(old, &self.guard) };
            return Ok(placement);
        }
    }

    /// Whether the hash's set in this guard's replica takes a newcomer now (see
    /// `Set::admits`, a hint decided without the set's lock: a refusal costs the way under the
    /// hand its second chance).
    #[inline]
    pub(crate) fn admits(&self, hash: u64) -> bool {
        let (set, hand) = self.table.set_of(self.replica, hash);
        set.admits(hand)
    }

    /// Replaces the value of a present key; hands key and value back if it is absent.
    pub(crate) fn replace(&self, hash: u64, key: K, value: V) -> Result<(), (K, V)>
    where
        K: Eq,
    {
        let (set, _) = self.table.set_of(self.replica, hash);
        let memory = &self.table.node_memory[self.replica];
        let node = match memory.make(Node { hash, key, value }) {
            Ok(node) => node,
            Err(node) => {
                // No memory for the new node: the old copy goes, so no reader sees it after
                // this returns (L1 holds copies only).
                self.remove_at(self.replica, hash, &node.key);
                return Ok(());
            }
        };
        loop {
            let snap = set.snapshot(hash, &node.node().key, &self.guard);
            let Some(way) = snap.found() else {
                let node = node.into_inner();
                return Err((node.key, node.value));
            };
            let lock = set.lock();
            if !lock.validate(&snap, &self.guard) {
                continue;
            }
            let old = lock.publish(&snap, way, node, &self.guard);
            drop(lock);
            // SAFETY: made by this replica's memory, unlinked under the lock by this thread;
            // the guard pins this table's collector.
            unsafe { memory.retire(old, &self.guard) };
            return Ok(());
        }
    }

    /// Removes `key` from every replica; returns whether it was present in any.
    pub(crate) fn remove<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut removed = false;
        for replica in 0..self.table.replicas.len() {
            removed |= self.remove_at(replica, hash, key);
        }
        removed
    }

    fn remove_at<Q>(&self, replica: usize, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (set, _) = self.table.set_of(replica, hash);
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
            // SAFETY: made by this replica's memory, unlinked under the lock by this thread;
            // the guard pins this table's collector.
            unsafe { self.table.node_memory[replica].retire(old, &self.guard) };
            return true;
        }
    }

    /// Removes every entry, one set at a time (concurrent inserts may land in sets already
    /// cleared).
    pub(crate) fn clear(&self) {
        let replicas = self
            .table
            .replicas
            .iter()
            .zip(self.table.node_memory.iter());
        for (set, memory) in replicas.flat_map(|(r, m)| r.sets.iter().map(move |s| (s, m))) {
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
                    // SAFETY: each was made by this replica's memory and unlinked under the
                    // lock by this thread; the guard pins this table's collector.
                    unsafe { memory.retire(old, &self.guard) };
                }
                break;
            }
        }
    }

    /// Moves this thread's retired nodes to the collector and moves what every pinned
    /// participant has moved past to the ready lists (see `memory`).
    pub(crate) fn flush(&self) {
        self.guard.flush();
    }

    /// Unpins and re-pins, letting the epoch advance past this guard's reads.
    pub(crate) fn repin(&mut self) {
        self.guard.repin();
    }

    /// The table this guard pins.
    pub(crate) fn table(&self) -> &RawTable<K, V> {
        self.table
    }

    /// The epoch guard itself.
    #[inline]
    pub(crate) fn epoch(&self) -> &epoch::Guard {
        &self.guard
    }
}
