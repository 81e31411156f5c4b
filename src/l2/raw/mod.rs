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
mod slot;
mod writer;

use core::borrow::Borrow;

use stratacache_alloc::MemoryHandle;

pub(crate) use index::Counts;
use index::Index;
pub(crate) use segments::OutOfMemory;
use segments::Segments;
pub(crate) use segments::{SegmentVec, Shape};
use slot::{Deadline, Moving, Slot};
pub(crate) use slot::{Found, prefetch};
pub(crate) use writer::{NewSlot, RawWriter, Slots};

use crate::sync::epoch;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Mutex, Ordering};

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;
/// No slot: the end of a stack.
const NIL: u32 = u32::MAX;
/// A shard's entries may have deadlines (see `RawShard::deadlines`).
const TIMED: u8 = 1;
/// A shard's entries have idle deadlines.
const IDLING: u8 = 2;

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

/// Whether retired entries of keys `K` and values `V` wait on the ready stack to be dropped
/// at a quiet point; without drop glue, their slots go straight back to the free stack.
pub(crate) const fn retired_wait_for_drop<K, V>() -> bool {
    core::mem::needs_drop::<K>() || core::mem::needs_drop::<V>()
}

/// The batch a shard of `live` entries hands over (one slot at a time when its memory is
/// spent: see `RawWriter::retire`).
#[inline]
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
    /// Which deadlines the shard's entries have: [`TIMED`] once one was stored with one,
    /// [`IDLING`] from the start in a shard that keeps idle deadlines. One word, so that a
    /// lookup in a shard with neither reads one flag.
    deadlines: AtomicU8,
    /// Idle deadlines, one per slot, allocated in step with the slots in a shard built to
    /// keep them (`idling`).
    idle: Segments<Moving>,
    idling: bool,
    /// Refresh times, one per slot, allocated in step with the slots in a shard built to keep
    /// them (`refreshing`: a cache that refreshes entries some time after their write).
    refresh: Segments<Moving>,
    refreshing: bool,
    /// `idling || refreshing`: one test on the writer's path for a shard with neither.
    moving: bool,
    /// Set once the memory refused the slots a new segment: the shard holds what it has.
    limited: AtomicBool,
    writer: Mutex<WriterState<W>>,
    /// How many slots the writer's limbo holds (stored by the writer, read as a hint by quiet
    /// points and statistics: see [`RawShard::has_limbo`]).
    limbo: AtomicU32,
    ready: AtomicU32,
    free: AtomicU32,
    reclaiming: AtomicBool,
    /// Slots retired and not reclaimed yet.
    retired: AtomicUsize,
}

impl<K, V, W> RawShard<K, V, W> {
    /// An empty shard whose writer state is `state`, with slots in arrays of `shape`,
    /// allocated from `memory`, and at most `max_slots` of them.
    pub(crate) fn new(
        state: W,
        shape: Shape,
        memory: MemoryHandle,
        max_slots: usize,
        idling: bool,
        refreshing: bool,
    ) -> Self {
        Self {
            index: Index::new(memory.clone()),
            slots: Segments::new(shape, memory.clone()),
            expiry: Segments::new(shape, memory.clone()),
            deadlines: AtomicU8::new(if idling { IDLING } else { 0 }),
            idle: Segments::new(shape, memory.clone()),
            idling,
            refresh: Segments::new(shape, memory),
            refreshing,
            moving: idling || refreshing,
            limited: AtomicBool::new(false),
            writer: Mutex::new(WriterState {
                counts: Counts::default(),
                high: 0,
                max_slots,
                limbo: Chain::EMPTY,
                spare: NIL,
                state,
            }),
            limbo: AtomicU32::new(0),
            ready: AtomicU32::new(NIL),
            free: AtomicU32::new(NIL),
            reclaiming: AtomicBool::new(false),
            retired: AtomicUsize::new(0),
        }
    }

    /// The entry for `key` (of 32-bit hash `hash`), if the shard holds it.
    #[inline(always)]
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
        // The slot the comparison read, kept for the caller (one lookup of its segment).
        let mut matched = None;
        let (_, id) = table.find(hash, |id| {
            // SAFETY: an id read from a full bucket (Acquire) was published after its slot's
            // segment and contents; under the epoch, the slot stays as it was (a retirement
            // waits for the epoch, and a live slot is never written).
            let slot = unsafe { self.slots.get(id as usize) };
            // SAFETY: as above: the slot holds its key while the epoch lasts.
            let found = unsafe { slot.key() }.borrow() == key;
            if found {
                matched = Some(slot);
            }
            found
        })?;
        Some(self.found(matched?, id))
    }

    /// Every entry the shard indexes, as a reader sees them (no lock): each was live at some
    /// moment of the walk; one removed and stored again meanwhile may be seen twice.
    pub(crate) fn for_each_live<'g>(
        &'g self,
        _epoch: &Epoch<'g>,
        mut f: impl FnMut(Found<'g, K, V>),
    ) {
        // SAFETY: the epoch pins the collector replaced tables are retired to.
        let Some(table) = (unsafe { self.index.table() }) else {
            return;
        };
        for id in table.live_ids() {
            // SAFETY: as in `find`: an id read (Acquire) from a full bucket names a published,
            // initialised slot, which stays as it was while the epoch lasts.
            let slot = unsafe { self.slots.get(id as usize) };
            f(self.found(slot, id));
        }
    }

    /// What a reader sees of `slot` (slot `id`), found through the index under an epoch.
    #[inline]
    fn found<'g>(&'g self, slot: &'g Slot<K, V>, id: u32) -> Found<'g, K, V> {
        // Acquire pairs with the Release in `fill`: the expiry segments are allocated for every
        // slot once this reads TIMED.
        let deadlines = self.deadlines.load(Ordering::Acquire);
        if deadlines == 0 {
            return Found {
                slot,
                id,
                expires: NEVER,
            };
        }
        let mut expires = if deadlines & TIMED != 0 {
            // SAFETY: the expiry array is allocated in step with the slots once timed (and
            // its segments published before the flag), and `id` is allocated; the deadline
            // was written before the slot's publication, which this reader saw.
            unsafe { self.expiry.get(id as usize).get() }
        } else {
            NEVER
        };
        if deadlines & IDLING != 0 {
            // SAFETY: an idling shard grows its idle deadlines before its slots (a segment
            // published before the slots' that this reader's slot is in), and `id` is
            // allocated.
            expires = expires.min(unsafe { self.idle.get(id as usize) }.get());
        }
        Found { slot, id, expires }
    }

    /// Whether an entry was ever stored with a deadline (the expiry array is allocated).
    /// Relaxed: for the writer, whose own store it reads.
    fn is_timed(&self) -> bool {
        self.deadlines.load(Ordering::Relaxed) & TIMED != 0
    }

    /// Moves the idle deadline of the entry a reader found at `id` to `at` if that is more
    /// than `slack` later (a read in a cache with a time to idle: the slack spares a hot entry
    /// a write per read). Nothing in a shard that keeps no idle deadlines.
    pub(crate) fn idle_until(&self, found: &Found<'_, K, V>, at: u64, slack: u64) {
        if self.idling {
            // SAFETY: as in `found`: `found` came from this shard, so its id is allocated.
            unsafe { self.idle.get(found.id as usize) }.extend(at, slack);
        }
    }

    /// Sets the idle deadline of the entry a reader found to `at`, earlier or later, if that
    /// differs from it by more than `slack` (an `Expiry`'s read hook chose it).
    pub(crate) fn idle_at(&self, found: &Found<'_, K, V>, at: u64, slack: u64) {
        if self.idling {
            // SAFETY: as in `idle_until`.
            unsafe { self.idle.get(found.id as usize) }.reset(at, slack);
        }
    }

    /// Takes the refresh of the entry a reader found if its time has come by `now`: the one
    /// reader that does gets its refresh time, and no other can take it until
    /// [`refresh_at`](Self::refresh_at) sets one again (or a new entry replaces this one).
    /// Nothing in a shard that keeps no refresh times.
    pub(crate) fn claim_refresh(&self, found: &Found<'_, K, V>, now: u64) -> Option<u64> {
        if !self.refreshing {
            return None;
        }
        // SAFETY: as in `found`: `found` came from this shard, so its id is allocated.
        unsafe { self.refresh.get(found.id as usize) }.claim(now)
    }

    /// Sets the refresh time of the entry a reader found to `at` (a claimed refresh that
    /// failed puts its time back).
    pub(crate) fn refresh_at(&self, found: &Found<'_, K, V>, at: u64) {
        if self.refreshing {
            // SAFETY: as in `claim_refresh`.
            unsafe { self.refresh.get(found.id as usize) }.set(at);
        }
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

    /// The hash of an indexed slot, from its tag (for the writer's index rebuilds).
    fn tag_of(&self) -> impl Fn(u32) -> u32 + '_ {
        |id: u32| {
            // SAFETY: ids in the index are live slots (the writer's own view).
            unsafe { self.slots.get(id as usize) }
                .tag
                .load(Ordering::Relaxed)
        }
    }

    /// Whether retired slots wait in the writer's limbo, not yet handed to the collector (a
    /// hint, read without the lock: a quiet point locks the shard only then).
    pub(crate) fn has_limbo(&self) -> bool {
        // Relaxed: a hint; the lock orders the limbo itself.
        self.limbo.load(Ordering::Relaxed) != 0
    }

    /// Slots retired and not reclaimed yet (those in limbo included).
    pub(crate) fn retired(&self) -> usize {
        // Relaxed: counts for statistics and back-pressure.
        self.retired.load(Ordering::Relaxed) + self.limbo.load(Ordering::Relaxed) as usize
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
