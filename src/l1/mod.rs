//! L1: a fixed-capacity, lock-free-read, epoch-reclaimed, set-associative table.
//!
//! A key hashes to one set of `WAYS` slots (7 on 64-bit targets, where a set is one 64-byte
//! cache line; 3 on 32-bit targets). [`Guard::get`] probes exactly that set:
//!
//! - **wait-free**: one control-word load, a fingerprint match across all ways at once, and at
//!   most `WAYS` slot loads; no lock, no retry loop, no allocation;
//! - **no shared write on a hit** once the way's CLOCK reference bit is set;
//! - **zero copy**: the `&V` it returns borrows the node for as long as the [`Guard`] lives.
//!
//! Writers ([`Guard::insert`], [`Guard::replace`], [`Guard::remove`]) compare keys outside any
//! lock, then publish under a one-bit lock of the one set they change, held for a handful of
//! loads and stores (no user code, allocation or freeing inside). When a set is full, its
//! CLOCK hand evicts a way whose reference bit is clear. The table never resizes, so there is
//! never a rehash pause; and since a probe is bounded by the set, no key distribution can make
//! lookups slow (a hash flood only evicts).
//!
//! # Handles, guards and reclamation
//! Replaced and removed nodes are retired to this table's own crossbeam-epoch collector and
//! freed once no guard that could see them remains. A thread takes part through a [`Handle`]
//! (`!Send`, one per thread, works without `std`); [`Handle::pin`] gives a [`Guard`] through
//! which every operation runs. Under the `std` feature, [`L1::pin`] and the plain methods on
//! [`L1`] use a per-thread handle kept by the table.
//!
//! **Reclamation runs at quiet points, bounded, driven by the caller.** A pin never drops a
//! key or a value: once no guard can see a retired node, the collector only moves it to a
//! ready list. Its key and value are dropped, and its memory freed, in [`Guard::flush`] /
//! [`Handle::collect`] (at most [`COLLECT_BATCH`] nodes per call) and at the end of each write
//! through a guard (at most 64). `get` never frees anything. A game loop pins once per frame,
//! reads all frame long, and calls [`Handle::collect`] between frames.
//!
//! Keys and values are dropped exactly once: evicted, replaced and removed entries when the
//! collector frees them, entries still present when the table is dropped, and retired ones no
//! later than the table's drop.
//!
//! # Example
//! ```
//! use stratacache::l1::{L1, Placement};
//!
//! let table: L1<u64, String> = L1::with_capacity(1024)?;
//! let handle = table.handle();
//! let guard = handle.pin();
//! assert_eq!(guard.insert(7, "seven".to_string()), Placement::Vacant);
//! assert_eq!(guard.get(&7).map(String::as_str), Some("seven"));
//! assert_eq!(guard.insert(7, "SEVEN".to_string()), Placement::Replaced);
//! assert!(guard.remove(&7));
//! assert_eq!(guard.get(&7), None);
//! drop(guard);
//! handle.collect(); // free what was retired, e.g. between frames
//! # Ok::<(), stratacache::BuildError>(())
//! ```

mod raw;
#[cfg(test)]
mod tests;

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crate::error::{Absent, BuildError};
use crate::hash::DefaultHashBuilder;

pub use raw::Placement;
use raw::{RawGuard, RawHandle, RawTable};

/// Ways per set on this target: 7 where `usize` is 64 bits, 3 where it is 32.
pub const WAYS: usize = raw::WAYS;

/// The most retired entries one [`Handle::collect`] or [`Guard::flush`] frees (and drops).
pub const COLLECT_BATCH: usize = 512;

/// The most retired entries a write through a [`Guard`] frees after its change.
const WRITE_BATCH: usize = 64;

/// A fixed-capacity concurrent table with wait-free reads. See the [module docs](self).
pub struct L1<K, V, S = DefaultHashBuilder> {
    raw: RawTable<K, V>,
    hash_builder: S,
}

impl<K, V> L1<K, V, DefaultHashBuilder> {
    /// A table holding at least `capacity` entries, with the default hasher.
    ///
    /// The capacity is rounded up to a power-of-two number of sets of [`WAYS`] entries
    /// ([`capacity`](Self::capacity) tells the result).
    ///
    /// # Errors
    /// [`BuildError::ZeroCapacity`] for 0, [`BuildError::CapacityOverflow`] when the rounded
    /// size does not fit the address space, [`BuildError::AllocationFailed`] when the
    /// allocator refuses the memory.
    pub fn with_capacity(capacity: usize) -> Result<Self, BuildError> {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }
}

impl<K, V, S> L1<K, V, S> {
    /// A table holding at least `capacity` entries, hashing with `hash_builder`
    /// (for instance `foldhash::fast::FixedState::with_seed(42)` for a seed chosen without an
    /// OS random source).
    ///
    /// # Errors
    /// As [`with_capacity`](L1::with_capacity).
    pub fn with_capacity_and_hasher(capacity: usize, hash_builder: S) -> Result<Self, BuildError> {
        Ok(Self {
            raw: RawTable::with_capacity(capacity)?,
            hash_builder,
        })
    }

    /// The number of entries the table can hold (the requested capacity rounded up).
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The number of entries present. Scans every set: `O(capacity)`, and under concurrent
    /// writes only a moment's view.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Heap bytes the table holds (sets, and a node per entry present; same cost as
    /// [`len`](Self::len)).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.raw.heap_bytes()
    }

    /// Whether no entry is present (same cost as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's hasher.
    pub fn hasher(&self) -> &S {
        &self.hash_builder
    }

    /// Registers the calling thread as a participant. Keep one handle per thread for as long as
    /// the thread uses the table; registering is not free (it allocates).
    pub fn handle(&self) -> Handle<'_, K, V, S> {
        self.handle_on(0)
    }

    /// A handle reading replica `replica` (modulo the replica count).
    pub(crate) fn handle_on(&self, replica: usize) -> Handle<'_, K, V, S> {
        Handle {
            raw: self.raw.register(replica),
            hash_builder: &self.hash_builder,
        }
    }

    /// `replicas` copies of a table of `capacity` entries each, sharing one collector: for the
    /// tiered cache's per-socket L1. Each reader reads its handle's replica; removals act on
    /// all, and the caller serialises writes to one key (see `raw::RawGuard`).
    pub(crate) fn with_replicas(
        capacity: usize,
        replicas: usize,
        hash_builder: S,
    ) -> Result<Self, BuildError> {
        Ok(Self {
            raw: RawTable::with_replicas(capacity, replicas)?,
            hash_builder,
        })
    }

    /// How many replicas the table keeps.
    pub(crate) fn replicas(&self) -> usize {
        self.raw.replicas()
    }

    /// Drops and frees up to `max` retired entries no guard can see any more (see
    /// [`Handle::collect`]); returns how many.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        self.raw.reclaim(max)
    }

    /// Whether retired entries are ready to be freed (a hint).
    pub(crate) fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Entries retired and not freed yet.
    pub(crate) fn retired(&self) -> usize {
        self.raw.retired()
    }

    /// Allocates replica `replica`'s nodes from `arena` (on `lane`), and frees them there,
    /// including the frees the epoch collector defers. Only on a table not used yet.
    pub(crate) fn nodes_in(
        &mut self,
        replica: usize,
        arena: alloc::sync::Arc<stratacache_alloc::Arena>,
        lane: usize,
    ) {
        self.raw
            .set_node_memory(replica, raw::ReplicaMemory::arena::<K, V>(arena, lane));
    }

    /// The layout of one copy's node, for reserving room (see `Arena::reserve`).
    pub(crate) fn node_layout() -> core::alloc::Layout {
        raw::node_layout::<K, V>()
    }

    /// The memory of replica `replica`'s sets.
    #[cfg(all(feature = "std", target_os = "linux", not(loom)))]
    pub(crate) fn replica_sets(&self, replica: usize) -> &[impl Sized] {
        self.raw.replica_sets(replica)
    }

    /// Lets thread-local handles ask which replica their thread reads.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) fn set_replica_of_thread(&mut self, f: raw::ReplicaOfThread) {
        self.raw.set_replica_of_thread(f);
    }

    /// Pins the calling thread through its thread-local handle (registered on first use).
    #[cfg(all(feature = "std", not(loom)))]
    #[inline]
    pub fn pin(&self) -> Guard<'_, K, V, S> {
        Guard {
            raw: self.raw.pin(),
            hash_builder: &self.hash_builder,
        }
    }
}

#[cfg(all(feature = "std", not(loom)))]
impl<K, V, S> L1<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// A clone of the value for `key`, pinning the thread for the lookup.
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        self.pin().get(key).cloned()
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().contains_key(key)
    }

    /// Inserts or replaces `key`'s value. See [`Guard::insert`].
    pub fn insert(&self, key: K, value: V) -> Placement {
        self.pin().insert(key, value)
    }

    /// Replaces the value of a present key. See [`Guard::replace`].
    ///
    /// # Errors
    /// [`Absent`] with the key and value when the key is not present.
    pub fn replace(&self, key: K, value: V) -> Result<(), Absent<K, V>> {
        self.pin().replace(key, value)
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().remove(key)
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.pin().clear();
    }
}

impl<K, V, S> fmt::Debug for L1<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L1")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// One thread's participation in an [`L1`]'s reclamation. `!Send`: create one per thread.
pub struct Handle<'t, K, V, S = DefaultHashBuilder> {
    raw: RawHandle<'t, K, V>,
    hash_builder: &'t S,
}

impl<'t, K, V, S> Handle<'t, K, V, S> {
    /// Pins the thread. Values read through the guard stay valid until it is dropped; keep
    /// guards short (a frame), since nothing retired after a guard was pinned is freed while
    /// it lives.
    #[inline]
    pub fn pin(&self) -> Guard<'t, K, V, S> {
        Guard {
            raw: self.raw.pin(),
            hash_builder: self.hash_builder,
        }
    }

    /// Frees retired entries that no pinned guard can still see: at most [`COLLECT_BATCH`]
    /// per call. Call it at a quiet point, such as between frames.
    pub fn collect(&self) {
        self.pin().flush();
    }
}

impl<K, V, S> Handle<'_, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// A clone of the value for `key`, pinning for the lookup.
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        self.pin().get(key).cloned()
    }

    /// Inserts or replaces `key`'s value. See [`Guard::insert`].
    pub fn insert(&self, key: K, value: V) -> Placement {
        self.pin().insert(key, value)
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().remove(key)
    }
}

/// A pinned thread: every operation runs through one, and values it returns borrow the table's
/// nodes for as long as it lives. `!Send`.
pub struct Guard<'t, K, V, S = DefaultHashBuilder> {
    raw: RawGuard<'t, K, V>,
    hash_builder: &'t S,
}

impl<K, V, S> Guard<'_, K, V, S> {
    /// Frees retired entries that no pinned guard can still see (at most
    /// [`COLLECT_BATCH`] of them), after moving this thread's own retired entries to the
    /// collector. Their keys' and values' `Drop` runs here.
    pub fn flush(&self) {
        self.raw.flush();
        self.raw.table().reclaim(COLLECT_BATCH);
    }

    /// Unpins and re-pins, so that entries retired since this guard was pinned can be freed.
    /// Takes `&mut self`: no value read through the guard outlives it.
    pub fn repin(&mut self) {
        self.raw.repin();
    }
}

/// Operations with the hash computed by the caller (the tiered cache hashes once for both
/// tiers).
impl<K, V, S> Guard<'_, K, V, S> {
    /// The epoch guard this pin holds (the tiered cache runs its L2 under it).
    #[inline]
    pub(crate) fn epoch(&self) -> &crate::sync::epoch::Guard {
        self.raw.epoch()
    }

    #[inline]
    pub(crate) fn get_hashed<Q>(&self, hash: u64, key: &Q, touch: bool) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.raw.find(hash, key, touch).map(|(_, v)| v)
    }

    /// Whether `key`'s copy was read since its CLOCK reference bit was last cleared; clears
    /// it (the tiered cache's L2 hand counts L1 use this way).
    #[inline]
    pub(crate) fn take_reference_hashed<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.raw.take_reference(hash, key)
    }

    /// Whether the hash's set takes a newcomer now: no unless it has an empty way or the way
    /// under its CLOCK hand was not used since the hand last passed (that way then loses its
    /// second chance). A promotion asks before it copies anything or takes a lock.
    #[inline]
    pub(crate) fn admits_hashed(&self, hash: u64) -> bool {
        self.raw.admits(hash)
    }

    /// Inserts into this thread's replica (a promotion [`admits_hashed`](Self::admits_hashed)
    /// let in).
    ///
    /// # Errors
    /// The key and value, when the replica's memory could not hold them: the caller drops them
    /// outside its locks.
    pub(crate) fn insert_hashed(&self, hash: u64, key: K, value: V) -> Result<Placement, (K, V)>
    where
        K: Eq,
    {
        self.raw.insert(hash, key, value)
    }

    /// Inserts into replica `replica` (the tiered cache copies `Critical` entries into every
    /// socket's).
    ///
    /// # Errors
    /// The key and value, when the replica's memory could not hold them; the key's older copy
    /// in that replica is gone then too. The caller drops them outside its locks.
    pub(crate) fn insert_at_hashed(
        &self,
        replica: usize,
        hash: u64,
        key: K,
        value: V,
    ) -> Result<Placement, (K, V)>
    where
        K: Eq,
    {
        self.raw.insert_at(replica, hash, key, value)
    }

    pub(crate) fn remove_hashed<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.raw.remove(hash, key)
    }
}

impl<K, V, S> Guard<'_, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: ?Sized + Hash>(&self, key: &Q) -> u64 {
        self.hash_builder.hash_one(key)
    }

    /// The value for `key`, borrowed for as long as this guard. Wait-free; no allocation; on a
    /// hit, writes shared memory only to set a clear CLOCK reference bit.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw.find(self.hash(key), key, true).map(|(_, v)| v)
    }

    /// The stored key and value for `key`, borrowed for as long as this guard.
    #[inline]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw.find(self.hash(key), key, true)
    }

    /// Like [`get`](Self::get) but leaves the CLOCK reference bit alone: a look that does not
    /// count as a use.
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw.find(self.hash(key), key, false).map(|(_, v)| v)
    }

    /// Whether `key` is present (does not count as a use).
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.peek(key).is_some()
    }

    /// Inserts `key` with `value`, replacing its previous value if present; when the key's set
    /// is full, the set's CLOCK hand evicts an entry not used since its last pass. Allocates one
    /// node; the displaced entry (if any) is retired and dropped later by the collector.
    pub fn insert(&self, key: K, value: V) -> Placement {
        let placement = match self.raw.insert(self.hash(&key), key, value) {
            Ok(placement) => placement,
            // The entry is dropped here, under no lock of the table's.
            Err(_entry) => Placement::Declined,
        };
        self.raw.table().reclaim(WRITE_BATCH);
        placement
    }

    /// Replaces the value of `key` only if it is present.
    ///
    /// # Errors
    /// [`Absent`] carrying the key and value back when the key is not present.
    pub fn replace(&self, key: K, value: V) -> Result<(), Absent<K, V>> {
        let replaced = self
            .raw
            .replace(self.hash(&key), key, value)
            .map_err(|(key, value)| Absent { key, value });
        self.raw.table().reclaim(WRITE_BATCH);
        replaced
    }

    /// Removes `key`; returns whether it was present. The entry is dropped later, when no
    /// guard can see it any more, by a later write, [`flush`](Self::flush) or
    /// [`Handle::collect`].
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let removed = self.raw.remove(self.hash(key), key);
        self.raw.table().reclaim(WRITE_BATCH);
        removed
    }

    /// Removes every entry, one set at a time.
    pub fn clear(&self) {
        self.raw.clear();
        self.raw.table().reclaim(WRITE_BATCH);
    }
}
