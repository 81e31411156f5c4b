//! The unsafe layer of L2: a shard's entries in slots that never move, an index readers probe
//! without a lock, and the epoch that keeps a retired slot readable until no reader can hold
//! it. Everything above this module is safe code.
//!
//! # A slot's life
//! 1. *Free*: on the free stack (or never used). Only the writer takes one.
//! 2. *Live*: the writer writes its key and value, then publishes its id in the index
//!    (Release). Readers find it through the index (Acquire) and read the key and value in
//!    place, cloning the value; nothing writes them while the slot is live.
//! 3. *Retired*: the writer unlinked it from the index (removal, eviction, replacement). A
//!    reader pinned before that may still read it, so its key and value stay. The writer
//!    chains it to the shard's *limbo* (its own, under its lock) and hands the limbo to the
//!    epoch collector in batches (a sixteenth of the shard's entries, 1 to 64 slots: one
//!    deferred function per batch, not per slot). The deferred function pushes the whole
//!    batch, with one compare-and-swap, onto the *ready* stack once every reader pinned
//!    before the hand-over has unpinned (so every reader pinned before each retirement); for
//!    keys and values without drop glue, straight onto the free stack. It runs no user code.
//!    Quiet points ([`RawWriter::hand_over`], through `Table::hand_over`) hand over a partial
//!    batch, so that a shard written no more still frees what it retired.
//! 4. *Ready*: [`RawShard::reclaim`], called where user code may run (never inside a lookup or
//!    under a lock), drops the key and value in place and pushes the id onto the free stack.
//!
//! The stacks and the limbo link through the slot's `tag` field, which holds the key's hash
//! while the slot is live (readers never read it: they compare keys). Each stack has one
//! popper at a time (the writer for the free stack, which takes it whole into a chain of its
//! own and pops from there without atomics; the reclaimer holding `reclaiming` for the ready
//! stack), so a pop's compare-and-swap never meets an id popped and pushed again in between
//! (no ABA).
//!
//! # Soundness rests on one rule
//! Every operation that reads a slot or the index, or retires one, runs under an [`Epoch`],
//! which can only be made (unsafely) by the owner that pins one collector for every shard it
//! uses and drops the shards after that collector (whose drop runs every deferred function).
//! The tiered cache makes them from its L1 table's guards.

mod index;
mod segments;

use core::borrow::Borrow;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use stratacache_alloc::MemoryHandle;

pub(crate) use index::Counts;
use index::{Index, Table};
pub(crate) use segments::OutOfMemory;
use segments::Segments;
pub(crate) use segments::{SegmentVec, Shape};

use crate::sync::epoch;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Mutex, Ordering};

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;
/// No slot: the end of a stack.
const NIL: u32 = u32::MAX;

/// A pin on the epoch a shard's retired slots and tables wait in.
#[derive(Clone, Copy)]
pub(crate) struct Epoch<'g> {
    guard: &'g epoch::Guard,
}

impl<'g> Epoch<'g> {
    /// Uses `guard` as the epoch of the shards it is passed to.
    ///
    /// # Safety
    /// Every shard an epoch made here is used with is only ever used with guards of this
    /// guard's collector, and is dropped only after that collector has dropped.
    #[inline]
    pub(crate) unsafe fn new(guard: &'g epoch::Guard) -> Self {
        Self { guard }
    }

    /// Moves this thread's retirements on to the collector, and runs the deferred functions
    /// whose readers are gone (none runs user code).
    pub(crate) fn flush(&self) {
        self.guard.flush();
    }

    /// Runs `f` once no reader pinned before now can be running.
    ///
    /// # Safety
    /// `f` may run on any thread, inside any later pin or flush of the collector or at its
    /// drop: it must run no user code, and what it touches must outlive the collector.
    unsafe fn defer(&self, f: impl FnOnce()) {
        // SAFETY: the caller's guarantee, and this epoch's (`new`): the collector is the one
        // every reader of the shard pins.
        unsafe { self.guard.defer_unchecked(f) };
    }
}

/// Asks the processor to bring the cache line at `at` closer (a hint: nothing is read, no
/// address is checked; a no-op where the architecture offers no stable prefetch).
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: SSE is enabled (the cfg); a prefetch neither faults nor changes what the program
    // can observe, whatever the address.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = at;
}

/// Hits (the low 7 bits, saturating) and the referenced bit of a slot.
const REFERENCED: u8 = 0x80;
const HITS: u8 = 0x7F;

/// One entry's storage (see the module docs for its life).
#[repr(C)]
pub(crate) struct Slot<K, V> {
    key: UnsafeCell<MaybeUninit<K>>,
    value: UnsafeCell<MaybeUninit<V>>,
    /// The key's 32-bit hash while live; the stack link otherwise.
    tag: AtomicU32,
    /// Hits counted by readers and the referenced bit (see [`Uses`]).
    uses: AtomicU8,
}

// SAFETY: a slot owns its key and value; readers share them as `&K` and `&V` (so `Sync` needs
// `K: Sync, V: Sync`), the writer and the reclaimer move and drop them (so `Send` both ways).
unsafe impl<K: Send, V: Send> Send for Slot<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Slot<K, V> {}

impl<K, V> Slot<K, V> {
    fn vacant() -> Self {
        Self {
            key: UnsafeCell::new(MaybeUninit::uninit()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            tag: AtomicU32::new(NIL),
            uses: AtomicU8::new(0),
        }
    }

    /// The key of a live or retired slot.
    ///
    /// # Safety
    /// The slot holds a key (live, or retired and not reclaimed) and nothing writes it
    /// meanwhile (see the module docs).
    unsafe fn key(&self) -> &K {
        // SAFETY: the caller's guarantee: initialised and not written.
        unsafe { (*self.key.get()).assume_init_ref() }
    }

    /// The value, as [`key`](Self::key).
    ///
    /// # Safety
    /// As `key`.
    unsafe fn value(&self) -> &V {
        // SAFETY: as `key`.
        unsafe { (*self.value.get()).assume_init_ref() }
    }
}

/// The readers' count of an entry's hits and its referenced bit: one byte, written by a hit
/// only until the count saturates and the bit is set.
pub(crate) struct Uses<'a>(&'a AtomicU8);

impl Uses<'_> {
    /// Counts a hit (up to `cap`, at most 127; a count already beyond stays) and marks the
    /// entry referenced; returns the hits so far, this one included. Writes nothing once the
    /// count has reached `cap` and the mark is set.
    #[inline]
    pub(crate) fn record(&self, cap: u8) -> u8 {
        let cap = cap.min(HITS);
        // Relaxed: a hint for promotion and the policy; the promotion itself is ordered by the
        // shard's lock.
        let mut seen = self.0.load(Ordering::Relaxed);
        loop {
            let hits = seen & HITS;
            if seen & REFERENCED != 0 && hits >= cap {
                return hits;
            }
            let wanted = REFERENCED | if hits < cap { hits + 1 } else { hits };
            // A read-modify-write (not a load and a store) so that a racing hit cannot write
            // back a smaller count. Relaxed: as above.
            match self
                .0
                .compare_exchange_weak(seen, wanted, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return wanted & HITS,
                Err(now) => seen = now,
            }
        }
    }

    /// The hits so far.
    #[inline]
    pub(crate) fn hits(&self) -> u8 {
        // Relaxed: as in `record`.
        self.0.load(Ordering::Relaxed) & HITS
    }

    /// Whether the entry was marked referenced since the last call; clears the mark.
    pub(crate) fn take_referenced(&self) -> bool {
        // Relaxed: as in `record`. A read first, so a clear mark is not written.
        self.0.load(Ordering::Relaxed) & REFERENCED != 0
            && self.0.fetch_and(!REFERENCED, Ordering::Relaxed) & REFERENCED != 0
    }

    /// Sets the hit count to its maximum (an entry copied into L1 when stored).
    pub(crate) fn saturate(&self) {
        // Relaxed: as in `record`.
        self.0.fetch_or(HITS, Ordering::Relaxed);
    }
}

/// An entry a reader found: its slot, readable for as long as the reader's epoch.
pub(crate) struct Found<'g, K, V> {
    slot: &'g Slot<K, V>,
    id: u32,
    expires: u64,
}

impl<'g, K, V> Found<'g, K, V> {
    /// The slot's id (the writer can check it is still the key's: [`RawWriter::holds`]).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn key(&self) -> &'g K {
        // SAFETY: found through the index under an epoch: the slot holds its key until the
        // epoch ends (a retirement waits for it) and nothing writes it meanwhile.
        unsafe { self.slot.key() }
    }

    pub(crate) fn value(&self) -> &'g V {
        // SAFETY: as `key`.
        unsafe { self.slot.value() }
    }

    /// The entry's deadline ([`NEVER`] if it has none).
    pub(crate) fn expires(&self) -> u64 {
        self.expires
    }

    pub(crate) fn uses(&self) -> Uses<'g> {
        Uses(&self.slot.uses)
    }
}

/// An entry's deadline, beside its slot: written by the writer while the slot is free (no
/// reader can reach it), read by readers once it is published (Acquire), never changed while
/// it is live. So a plain `u64`, even on targets without 64-bit atomics.
pub(crate) struct Deadline(UnsafeCell<u64>);

// SAFETY: written only while its slot is unreachable by readers (the writer owns it then), and
// read only after the slot's publication, which orders the write before the read.
unsafe impl Sync for Deadline {}

impl Deadline {
    fn never() -> Self {
        Self(UnsafeCell::new(NEVER))
    }

    /// The deadline.
    ///
    /// # Safety
    /// The slot is published (or the caller is its writer) and not being filled.
    unsafe fn get(&self) -> u64 {
        // SAFETY: the caller's guarantee: no write runs meanwhile.
        unsafe { *self.0.get() }
    }

    /// Sets the deadline.
    ///
    /// # Safety
    /// The slot is free (no reader can reach it) and the caller is its writer.
    unsafe fn set(&self, expires: u64) {
        // SAFETY: the caller's guarantee: no reader reads it meanwhile.
        unsafe { *self.0.get() = expires };
    }
}

/// A slot the writer unlinked under an epoch: readable (through
/// [`RawShard::retired_entry`]) until that epoch ends, which no reclamation can outrun.
pub(crate) struct Retired<'g> {
    id: u32,
    _epoch: core::marker::PhantomData<&'g ()>,
}

/// Slots linked through their tags, newest first: `head` to `tail`, `len` of them.
#[derive(Clone, Copy)]
struct Chain {
    head: u32,
    tail: u32,
    len: u32,
}

impl Chain {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Retired slots are handed to the collector in batches of a sixteenth of the shard's entries
/// (so the slots waiting in limbo stay a small share of the shard), at most [`MAX_BATCH`].
#[cfg(not(loom))]
const BATCH_SHARE: usize = 16;
#[cfg(not(loom))]
const MAX_BATCH: u32 = 64;
/// Under loom, batches of two in a model of a few entries.
#[cfg(loom)]
const BATCH_SHARE: usize = 1;
#[cfg(loom)]
const MAX_BATCH: u32 = 2;

/// The batch a shard of `live` entries hands over (one slot at a time when its memory is
/// spent: see `RawWriter::retire`).
fn batch_for(live: usize) -> u32 {
    (live / BATCH_SHARE).clamp(1, MAX_BATCH as usize) as u32
}

/// The writer's state of a shard beside its own (`W`).
pub(crate) struct WriterState<W> {
    counts: Counts,
    /// Slots ever used: the next new id.
    high: u32,
    /// The most slots the shard may have (its policy's `MAX_SLOTS`).
    max_slots: usize,
    /// Retired slots not yet handed to the collector (see the module docs).
    limbo: Chain,
    /// Free slots taken whole from the free stack: popped by the writer without atomics.
    spare: u32,
    pub(crate) state: W,
}

/// One L2 shard's entries: see the [module docs](self).
pub(crate) struct RawShard<K, V, W> {
    index: Index,
    slots: Segments<Slot<K, V>>,
    /// Deadlines, one per slot, allocated in step with the slots once an entry has one.
    expiry: Segments<Deadline>,
    timed: AtomicBool,
    /// Set once the memory refused the slots a new segment: the shard holds what it has.
    limited: AtomicBool,
    writer: Mutex<WriterState<W>>,
    /// Whether the writer's limbo holds slots (a hint for quiet points: see
    /// [`RawShard::has_limbo`]).
    limbo: AtomicBool,
    ready: AtomicU32,
    free: AtomicU32,
    reclaiming: AtomicBool,
    /// Slots retired and not reclaimed yet.
    retired: AtomicUsize,
}

impl<K, V, W> RawShard<K, V, W> {
    /// An empty shard whose writer state is `state`, with slots in arrays of `shape`,
    /// allocated from `memory`, and at most `max_slots` of them.
    pub(crate) fn new(state: W, shape: Shape, memory: MemoryHandle, max_slots: usize) -> Self {
        Self {
            index: Index::new(memory.clone()),
            slots: Segments::new(shape, memory.clone()),
            expiry: Segments::new(shape, memory),
            timed: AtomicBool::new(false),
            limited: AtomicBool::new(false),
            writer: Mutex::new(WriterState {
                counts: Counts::default(),
                high: 0,
                max_slots,
                limbo: Chain::EMPTY,
                spare: NIL,
                state,
            }),
            limbo: AtomicBool::new(false),
            ready: AtomicU32::new(NIL),
            free: AtomicU32::new(NIL),
            reclaiming: AtomicBool::new(false),
            retired: AtomicUsize::new(0),
        }
    }

    /// The entry for `key` (of 32-bit hash `hash`), if the shard holds it.
    #[inline]
    pub(crate) fn find<'g, Q>(
        &'g self,
        hash: u32,
        key: &Q,
        _epoch: &Epoch<'g>,
    ) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // SAFETY: the epoch pins the collector replaced tables are retired to.
        let table = unsafe { self.index.table() }?;
        let (_, id) = table.find(hash, |id| {
            // SAFETY: an id read from a full bucket (Acquire) was published after its slot's
            // segment and contents; under the epoch, the slot stays as it was (a retirement
            // waits for the epoch, and a live slot is never written).
            unsafe { self.slots.get(id as usize).key() }.borrow() == key
        })?;
        Some(self.found(id))
    }

    /// What a reader sees of slot `id`, found through the index under an epoch.
    #[inline]
    fn found(&self, id: u32) -> Found<'_, K, V> {
        // SAFETY: `id` came from the index under an epoch (see `find`).
        let slot = unsafe { self.slots.get(id as usize) };
        // Acquire pairs with the Release in `set_deadline`: the expiry segments are allocated
        // for every slot once this reads true.
        let expires = if self.timed.load(Ordering::Acquire) {
            // SAFETY: the expiry array is allocated in step with the slots once timed (and
            // its segments published before the flag), and `id` is allocated; the deadline
            // was written before the slot's publication, which this reader saw.
            unsafe { self.expiry.get(id as usize).get() }
        } else {
            NEVER
        };
        Found { slot, id, expires }
    }

    /// The key and value of a slot retired under the epoch `'g`.
    pub(crate) fn retired_entry<'g>(&'g self, retired: &Retired<'g>) -> (&'g K, &'g V) {
        // SAFETY: retired while the epoch `'g` was pinned (the token's lifetime), so no
        // reclamation has run or can run for it before the epoch ends; a retired slot's key and
        // value are not written until then.
        unsafe {
            let slot = self.slots.get(retired.id as usize);
            (slot.key(), slot.value())
        }
    }

    /// Takes the writer's lock, waiting for another writer.
    pub(crate) fn lock(&self) -> RawWriter<'_, K, V, W> {
        RawWriter {
            shard: self,
            state: self.writer.lock(),
        }
    }

    /// Takes the writer's lock if no other writer holds it.
    pub(crate) fn try_lock(&self) -> Option<RawWriter<'_, K, V, W>> {
        Some(RawWriter {
            shard: self,
            state: self.writer.try_lock()?,
        })
    }

    /// The bytes one slot takes.
    pub(crate) fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<K, V>>()
    }

    /// Whether the memory refused the shard more slots (a hint, read without the lock).
    pub(crate) fn is_limited(&self) -> bool {
        // Relaxed: a hint for when to reclaim eagerly.
        self.limited.load(Ordering::Relaxed)
    }

    /// Whether retired slots wait in the writer's limbo, not yet handed to the collector (a
    /// hint, read without the lock: a quiet point locks the shard only then).
    pub(crate) fn has_limbo(&self) -> bool {
        // Relaxed: a hint; the lock orders the limbo itself.
        self.limbo.load(Ordering::Relaxed)
    }

    /// Slots retired and not reclaimed yet.
    pub(crate) fn retired(&self) -> usize {
        // Relaxed: a count for statistics and back-pressure.
        self.retired.load(Ordering::Relaxed)
    }

    /// Drops the keys and values of up to `max` retired slots no reader can see any more, and
    /// frees the slots for reuse. Their `Drop` runs here: call it holding no lock. Returns
    /// how many; 0 at once if another thread is reclaiming.
    #[inline]
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        // Relaxed: an empty stack needs no ordering; `pop` reads a non-empty one with Acquire.
        if self.ready.load(Ordering::Relaxed) == NIL {
            return 0;
        }
        self.reclaim_ready(max)
    }

    #[inline(never)]
    fn reclaim_ready(&self, max: usize) -> usize {
        // Acquire pairs with the Release in `Reclaiming::drop`: the previous reclaimer's pops
        // are done.
        if self.reclaiming.swap(true, Ordering::Acquire) {
            return 0;
        }
        // Ends the round even if a `Drop` panics: the slot being dropped counts as freed.
        let mut round = Reclaiming {
            shard: self,
            freed: 0,
            dropping: None,
        };
        while round.freed < max {
            let Some(id) = self.pop(&self.ready) else {
                break;
            };
            round.dropping = Some(id);
            // SAFETY: a ready slot is retired, its epoch has passed (no reader can hold it),
            // and popping it made this thread its only owner: its key and value are dropped
            // once, here (if the key's drop panics, the value is leaked, never dropped twice).
            unsafe {
                let slot = self.slots.get(id as usize);
                (*slot.key.get()).assume_init_drop();
                (*slot.value.get()).assume_init_drop();
            }
            round.dropping = None;
            self.push(&self.free, id);
            round.freed += 1;
        }
        round.freed
    }

    /// Pushes `id` onto `stack`, linking through its slot's tag.
    fn push(&self, stack: &AtomicU32, id: u32) {
        self.push_chain(stack, id, id);
    }

    /// Pushes the chain from `head` to `tail` (linked through their tags) onto `stack`.
    fn push_chain(&self, stack: &AtomicU32, head: u32, tail: u32) {
        // SAFETY: `tail` is a slot id (the caller owns the chain), and the slots never move.
        let last = unsafe { self.slots.get(tail as usize) };
        let mut top = stack.load(Ordering::Relaxed);
        loop {
            // Relaxed: the Release below publishes the link with the chain.
            last.tag.store(top, Ordering::Relaxed);
            // Release pairs with the Acquire of the stack's popper (`pop`, `take_free`): the
            // links and, for the ready stack, the end of every reader's use are visible to it.
            match stack.compare_exchange_weak(top, head, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => top = now,
            }
        }
    }

    /// Pops from `stack`; only its one popper calls this (see the module docs).
    fn pop(&self, stack: &AtomicU32) -> Option<u32> {
        // Acquire pairs with the Release in `push`.
        let mut head = stack.load(Ordering::Acquire);
        loop {
            if head == NIL {
                return None;
            }
            // SAFETY: an id on a stack is an allocated slot that stays there until popped, and
            // only this thread pops.
            let next = unsafe { self.slots.get(head as usize) }
                .tag
                .load(Ordering::Relaxed);
            // Acquire on both outcomes, as above.
            match stack.compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(head),
                Err(now) => head = now,
            }
        }
    }

    /// Heap bytes: slots, deadlines and the index.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes() + self.expiry.heap_bytes() + self.index.heap_bytes()
    }
}

/// A round of reclamation: releases the reclaimer's flag and counts what was freed when it
/// ends, normally or by a panic in a `Drop` (the slot whose drop panicked is freed too).
struct Reclaiming<'a, K, V, W> {
    shard: &'a RawShard<K, V, W>,
    freed: usize,
    dropping: Option<u32>,
}

impl<K, V, W> Drop for Reclaiming<'_, K, V, W> {
    fn drop(&mut self) {
        if let Some(id) = self.dropping.take() {
            self.shard.push(&self.shard.free, id);
            self.freed += 1;
        }
        // Release pairs with the Acquire in `reclaim`.
        self.shard.reclaiming.store(false, Ordering::Release);
        // Relaxed: a count.
        self.shard.retired.fetch_sub(self.freed, Ordering::Relaxed);
    }
}

impl<K, V, W> Drop for RawShard<K, V, W> {
    fn drop(&mut self) {
        // The collector has dropped before the shard (the epoch's rule), running every deferred
        // push: a slot is live (in the index), in limbo (never handed over), on the ready
        // stack, or free.
        while self.reclaim(usize::MAX) > 0 {}
        let limbo = self.writer.lock().limbo;
        let mut id = limbo.head;
        for _ in 0..limbo.len {
            // SAFETY: a slot in limbo holds its key and value, owned by the shard alone now;
            // each is dropped once, its link read first.
            unsafe {
                let slot = self.slots.get(id as usize);
                let next = slot.tag.load(Ordering::Relaxed);
                (*slot.key.get()).assume_init_drop();
                (*slot.value.get()).assume_init_drop();
                id = next;
            }
        }
        // SAFETY: `&mut self`: no reader or writer; the current table.
        if let Some(table) = unsafe { self.index.table() } {
            let live: alloc::vec::Vec<u32> = table.full_ids().collect();
            for id in live {
                // SAFETY: a live slot holds its key and value, owned by the shard alone now;
                // each is dropped once.
                unsafe {
                    let slot = self.slots.get(id as usize);
                    (*slot.key.get()).assume_init_drop();
                    (*slot.value.get()).assume_init_drop();
                }
            }
        }
    }
}

/// A shard's writer: holds its lock, so it alone changes the index and the slots.
pub(crate) struct RawWriter<'a, K, V, W> {
    shard: &'a RawShard<K, V, W>,
    state: crate::sync::MutexGuard<'a, WriterState<W>>,
}

/// A slot [`RawWriter::fill`] could not fill, with the entry it was given.
pub(crate) type Unfilled<K, V> = (NewSlot, K, V);

/// A slot id the writer took for a new entry; dropped unused, it goes back to the free stack.
pub(crate) struct NewSlot {
    id: u32,
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
        // Relaxed: the writer's own flag.
        if self.shard.timed.load(Ordering::Relaxed) {
            self.grow_expiry()?;
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
        // SAFETY: an allocated slot, free (taken and never filled).
        let cell = unsafe { self.shard.slots.get(slot.id as usize) };
        // Relaxed: the writer's own chain.
        cell.tag.store(self.state.spare, Ordering::Relaxed);
        self.state.spare = slot.id;
    }

    /// Fills a taken slot with an entry (not visible yet: see [`publish`](Self::publish) and
    /// [`replace`](Self::replace)). `uses` starts its hits and referenced bit.
    ///
    /// # Errors
    /// When the entry has a deadline and the memory refuses the shard's deadlines; the slot
    /// and the entry are handed back.
    pub(crate) fn fill(
        &mut self,
        slot: NewSlot,
        hash: u32,
        (key, value): (K, V),
        expires: u64,
        uses: u8,
    ) -> Result<u32, Unfilled<K, V>> {
        // Relaxed: the writer's own flag.
        if expires != NEVER && !self.shard.timed.load(Ordering::Relaxed) {
            // The first deadline: allocate the deadlines of every slot so far.
            while self.shard.expiry.capacity() < self.shard.slots.capacity() {
                if self.grow_expiry().is_err() {
                    return Err((slot, key, value));
                }
            }
            // Release pairs with the Acquire in `found`: the deadlines are allocated.
            self.shard.timed.store(true, Ordering::Release);
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
        // Relaxed: the writer's own flag.
        if self.shard.timed.load(Ordering::Relaxed) {
            // SAFETY: allocated in step with the slots; the slot is free (see above): the
            // deadline is published with it.
            unsafe { self.shard.expiry.get(id as usize).set(expires) };
        }
        Ok(id)
    }

    /// Makes sure the index has room for one more entry of `hash`, rebuilding it if not.
    ///
    /// # Errors
    /// When the memory refuses the rebuild.
    pub(crate) fn reserve_index(
        &mut self,
        hash: u32,
        epoch: &Epoch<'_>,
    ) -> Result<(), OutOfMemory> {
        let slots = &self.shard.slots;
        let hash_of = |id: u32| {
            // SAFETY: ids in the index are live slots (the writer's own view).
            unsafe { slots.get(id as usize) }
                .tag
                .load(Ordering::Relaxed)
        };
        let old = self
            .shard
            .index
            .reserve_one(&mut self.state.counts, hash, hash_of)?;
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

    /// Removes live slot `id` (in `bucket`, if known) from the index and retires it.
    pub(crate) fn remove<'g>(
        &mut self,
        id: u32,
        bucket: Option<usize>,
        epoch: &Epoch<'g>,
    ) -> Retired<'g> {
        let bucket = bucket.or_else(|| self.shard.index.bucket_of(self.slots().hash(id), id));
        let bucket = bucket.expect("a live slot is indexed");
        self.shard.index.erase(&mut self.state.counts, bucket);
        self.retire(id, epoch)
    }

    /// Puts unlinked slot `id` in limbo, and hands the limbo to the epoch once it holds a
    /// batch (see the module docs).
    fn retire<'g>(&mut self, id: u32, epoch: &Epoch<'g>) -> Retired<'g> {
        // SAFETY: an allocated slot, unlinked: readers pinned before now may still read its
        // key and value, never its tag.
        let slot = unsafe { self.shard.slots.get(id as usize) };
        let limbo = &mut self.state.limbo;
        // Relaxed: the writer's own link (published by the hand-over's compare-and-swap).
        slot.tag.store(limbo.head, Ordering::Relaxed);
        if limbo.len == 0 {
            limbo.tail = id;
            // Relaxed: a hint, written under the lock (see `has_limbo`).
            self.shard.limbo.store(true, Ordering::Relaxed);
        }
        limbo.head = id;
        limbo.len += 1;
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
        // Relaxed: as in `retire`.
        self.shard.limbo.store(false, Ordering::Relaxed);
        // Relaxed: a count.
        self.shard
            .retired
            .fetch_add(len as usize, Ordering::Relaxed);
        let shard: *const RawShard<K, V, W> = self.shard;
        let drops = core::mem::needs_drop::<K>() || core::mem::needs_drop::<V>();
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
        let cells = &self.shard.slots;
        let hash_of = |id: u32| {
            // SAFETY: as in `reserve_index`.
            unsafe { cells.get(id as usize) }
                .tag
                .load(Ordering::Relaxed)
        };
        let old = self
            .shard
            .index
            .rebuild(&mut self.state.counts, groups, hash_of)?;
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

/// The writer's view of its shard's live slots: their keys, values, hashes, hits and deadlines.
/// Borrowed from a [`RawWriter`], so the lock is held while it lives.
pub(crate) struct Slots<'w, K, V, W> {
    shard: &'w RawShard<K, V, W>,
}

impl<'w, K, V, W> Slots<'w, K, V, W> {
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

    /// The 32-bit hash of live slot `id`.
    pub(crate) fn hash(&self, id: u32) -> u32 {
        // Relaxed: the writer's own store.
        self.live(id).tag.load(Ordering::Relaxed)
    }

    /// The hits and referenced bit of live slot `id`.
    /// Prefetches slot `id` (its key, value, tag and uses), if allocated.
    #[inline]
    pub(crate) fn prefetch(&self, id: u32) {
        if (id as usize) < self.shard.slots.capacity() {
            // SAFETY: allocated (checked); only the address is taken.
            prefetch(unsafe { self.shard.slots.get(id as usize) });
        }
    }

    pub(crate) fn uses(&self, id: u32) -> Uses<'w> {
        Uses(&self.live(id).uses)
    }

    /// The deadline of live slot `id`.
    pub(crate) fn expires(&self, id: u32) -> u64 {
        // Relaxed: the flag and the deadlines are the writer's own stores.
        if self.shard.timed.load(Ordering::Relaxed) {
            // SAFETY: allocated in step with the slots once timed; a live slot's deadline is
            // only written while it was free.
            unsafe { self.shard.expiry.get(id as usize).get() }
        } else {
            NEVER
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
    fn full_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.full_buckets().map(|(_, id)| id)
    }
}
