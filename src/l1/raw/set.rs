//! One set of the L1 table: a control word and `WAYS` epoch-protected node pointers.
//!
//! # Layout
//! ```text
//! ctrl (one usize):  [tag 0][tag 1] ... [tag WAYS-1][meta byte]
//!                     lane w = fingerprint of the key in way w, 0 = empty
//!                     meta byte: bit w = CLOCK reference bit of way w, top bit = writer lock
//! slots:             [Atomic<Node>; WAYS]
//! ```
//! `WAYS` is one less than the bytes in a `usize`: 7 on 64-bit targets, where a set is exactly
//! one 64-byte cache line (8 + 7 × 8 bytes), and 3 on 32-bit targets (16 bytes). A probe
//! therefore touches one line for the set and one for the matching node.
//!
//! # Protocol
//! - Readers ([`Set::find`]) never write unless they set a clear reference bit: they load
//!   `ctrl` (Acquire), match the fingerprint against every lane at once (SWAR), and load and
//!   compare the candidate slots. At most `WAYS` slot loads: wait-free.
//! - Writers first take an unlocked [`Snapshot`] (the key comparison, which is user code,
//!   runs here), then take the set's lock bit, check that the tags and every slot pointer are
//!   still those of the snapshot (pointer comparisons only), and publish with plain stores.
//!   If anything moved they retry. Holding the lock they run no user code, allocate nothing
//!   and free nothing: `O(WAYS)` loads and at most four stores or read-modify-writes.
//! - Invariant at every lock acquisition: each key is in at most one way, and lane `w` holds
//!   `tag(slot[w].hash)`, or 0 when `slot[w]` is null.
//! - A slot's node is immutable once published; an unlinked node is retired to the epoch
//!   collector after the lock is released and freed once every guard pinned before the
//!   unlink has been dropped.

use core::borrow::Borrow;

use core::ptr::NonNull;

use super::memory::{NewNode, NodeMemory};
use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::{AtomicU8, AtomicUsize, Backoff, Ordering};

/// Slots per set: the bytes of a `usize` less the meta byte.
pub(crate) const WAYS: usize = core::mem::size_of::<usize>() - 1;
/// `0x0101…01`: one in the low bit of every byte lane.
const LOW_BITS: usize = usize::MAX / 0xFF;
/// `0x8080…80`: the high bit of every byte lane.
const HIGH_BITS: usize = LOW_BITS << 7;
/// Bit offset of the meta byte.
const META_SHIFT: usize = WAYS * 8;
/// The tag lanes of the control word.
const TAG_MASK: usize = (1 << META_SHIFT) - 1;
/// The writer lock: the top bit of the meta byte.
const LOCK_BIT: usize = 1 << (usize::BITS - 1);

/// The fingerprint stored in a tag lane: the hash's bits 24 to 31, never 0 (0 marks an empty
/// way). Within the low 32 bits, which the tiered cache keeps (its L2 stores 32-bit hashes);
/// sets take the lowest bits.
#[inline]
pub(crate) const fn tag(hash: u64) -> usize {
    let t = ((hash >> 24) & 0xFF) as usize;
    if t == 0 { 1 } else { t }
}

#[inline]
const fn ref_bit(way: usize) -> usize {
    1 << (META_SHIFT + way)
}

#[inline]
const fn lane_shift(way: usize) -> usize {
    way * 8
}

/// The tag in lane `way` of a control word.
#[inline]
const fn lane(ctrl: usize, way: usize) -> usize {
    (ctrl >> lane_shift(way)) & 0xFF
}

/// High bit set in every tag lane of `ctrl` that may equal `byte` (exact for the lowest match;
/// a lane just above a match can be a false positive, which the key comparison rejects). The
/// meta lane never matches.
#[inline]
const fn match_lanes(ctrl: usize, byte: usize) -> usize {
    let x = (ctrl ^ LOW_BITS.wrapping_mul(byte)) | !TAG_MASK;
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// High bit set in exactly the non-zero byte lanes of `x` (no false positives, unlike
/// [`match_lanes`]).
#[inline]
const fn nonzero_lanes(x: usize) -> usize {
    let low7 = !HIGH_BITS;
    (((x & low7) + low7) | x) & HIGH_BITS
}

/// The way of the lowest candidate in a [`match_lanes`] mask.
#[inline]
const fn first_lane(mask: usize) -> usize {
    mask.trailing_zeros() as usize / 8
}

/// An immutable entry: published once into a slot, never written again, freed through the
/// epoch collector after it is unlinked. `repr(C)` with `hash` first: a dead node's ready-list
/// link lives there (see `memory`).
#[repr(C)]
pub(crate) struct Node<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One set of the table. See the module docs for the layout and protocol.
#[cfg_attr(target_pointer_width = "64", repr(C, align(64)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C))]
pub(crate) struct Set<K, V> {
    ctrl: AtomicUsize,
    slots: [Atomic<Node<K, V>>; WAYS],
}

/// What a writer saw of a set before taking its lock.
pub(crate) struct Snapshot<'g, K, V> {
    tags: usize,
    slots: [Shared<'g, Node<K, V>>; WAYS],
    /// The way that holds the writer's key, if any.
    found: Option<usize>,
}

/// How an insertion placed its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The key was absent and took an empty way.
    Vacant,
    /// The key was present; its value was replaced in place.
    Replaced,
    /// The key was absent and the set was full: the CLOCK hand evicted another key.
    Evicted,
    /// Nothing was stored: the memory the table's nodes come from (an arena, as the tiered
    /// cache gives each socket's replica) is spent. Tables on the global allocator never say
    /// this.
    Declined,
}

impl<K, V> Set<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            ctrl: AtomicUsize::new(0),
            slots: core::array::from_fn(|_| Atomic::null()),
        }
    }

    /// Finds `key`'s node. Wait-free: one control-word load and at most `WAYS` slot loads.
    /// With `touch`, sets the way's CLOCK reference bit if it is clear (the only write a hit
    /// can make; none once the bit is set).
    #[inline]
    pub(crate) fn find<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        touch: bool,
        guard: &'g Guard,
    ) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (ctrl, way, node) = self.locate(hash, key, guard)?;
        let bit = ref_bit(way);
        if touch && ctrl & bit == 0 {
            // Relaxed: the reference bit is a hint to the CLOCK hand; it orders nothing. It is
            // a read-modify-write, so it keeps the Release sequences of tag updates on this
            // word intact.
            self.ctrl.fetch_or(bit, Ordering::Relaxed);
        }
        Some(node)
    }

    /// Whether `key` is present with its reference bit set; if so, clears the bit (a use is
    /// consumed once). Wait-free, like [`find`](Self::find).
    pub(crate) fn take_reference<Q>(&self, hash: u64, key: &Q, guard: &Guard) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let Some((ctrl, way, _)) = self.locate(hash, key, guard) else {
            return false;
        };
        let bit = ref_bit(way);
        // Relaxed: a hint to the hands, and a read-modify-write, as in `find`.
        ctrl & bit != 0 && self.ctrl.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }

    /// The control word as loaded, the way and the node holding `key`.
    #[inline]
    fn locate<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
    ) -> Option<(usize, usize, &'g Node<K, V>)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // Acquire pairs with the Release tag updates in `publish`/`unlink`: a reader that sees
        // a tag sees the slot store made before it.
        let ctrl = self.ctrl.load(Ordering::Acquire);
        let mut candidates = match_lanes(ctrl, tag(hash));
        while candidates != 0 {
            let way = first_lane(candidates);
            candidates &= candidates - 1;
            // Acquire pairs with the Release slot stores in `publish`: the node's fields are
            // initialised for whoever sees the pointer.
            let shared = self.slots[way].load(Ordering::Acquire, guard);
            // SAFETY: `guard` is pinned on the collector this set's nodes are retired to (the
            // raw table only hands out guards of its own collector), and a node is retired only
            // after it is unlinked, so a node loaded under `guard` stays allocated while `guard`
            // lives; nodes are never mutated after publication.
            let Some(node) = (unsafe { shared.as_ref() }) else {
                continue;
            };
            if node.hash == hash && node.key.borrow() == key {
                return Some((ctrl, way, node));
            }
        }
        None
    }

    /// Admission for a copy the table may decline (a promotion), decided without the set's
    /// lock: yes if the set has an empty way or the way under the CLOCK hand is cold;
    /// otherwise the hand's way loses its reference bit (its second chance), the hand moves
    /// on, and the newcomer is refused. A working set larger than the table then churns at most
    /// once per second chance instead of on every promotion. The hand and the bits are hints:
    /// a race with a writer can only misplace the hand, which `choose_way` reads modulo `WAYS`.
    pub(crate) fn admits(&self, hand: &AtomicU8) -> bool {
        // Relaxed: tags and reference bits are read as hints here; the insertion that follows
        // an admission reads the set properly.
        let ctrl = self.ctrl.load(Ordering::Relaxed);
        if (nonzero_lanes(ctrl & TAG_MASK).count_ones() as usize) < WAYS {
            return true;
        }
        // Relaxed: as above.
        let way = usize::from(hand.load(Ordering::Relaxed)) % WAYS;
        let bit = ref_bit(way);
        if ctrl & bit == 0 {
            return true;
        }
        // Relaxed: reference bits are hints, as in `choose_way`; a read-modify-write keeps the
        // tag updates' Release sequences on this word intact.
        self.ctrl.fetch_and(!bit, Ordering::Relaxed);
        hand.store(((way + 1) % WAYS) as u8, Ordering::Relaxed);
        false
    }

    /// Reads the set for a writer: the tags and every slot pointer.
    pub(crate) fn snapshot_slots<'g>(&self, guard: &'g Guard) -> Snapshot<'g, K, V> {
        // Acquire: as in `find`. The tags are read before the slots, so a writer that published
        // between the two reads changed the tags and fails `validate`.
        let tags = self.ctrl.load(Ordering::Acquire) & TAG_MASK;
        // Acquire: as in `find`.
        let slots = core::array::from_fn(|way| self.slots[way].load(Ordering::Acquire, guard));
        Snapshot {
            tags,
            slots,
            found: None,
        }
    }

    /// Reads the set for a writer and finds the way holding `key`. The key comparisons (user
    /// `Eq`) run here, outside the lock.
    pub(crate) fn snapshot<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Snapshot<'g, K, V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut snap = self.snapshot_slots(guard);
        let mut candidates = match_lanes(snap.tags, tag(hash));
        while candidates != 0 {
            let way = first_lane(candidates);
            candidates &= candidates - 1;
            // SAFETY: as in `find`: loaded under `guard`, which pins this set's collector.
            if let Some(node) = unsafe { snap.slots[way].as_ref() }
                && node.hash == hash
                && node.key.borrow() == key
            {
                snap.found = Some(way);
                break;
            }
        }
        snap
    }

    /// Takes the set's writer lock, spinning (and, under `std`, yielding) while another writer
    /// holds it. Holders run a bounded, user-code-free section (see the module docs).
    pub(crate) fn lock(&self) -> SetLock<'_, K, V> {
        let mut backoff = Backoff::new();
        loop {
            // Acquire pairs with the Release in `SetLock::drop`: the previous holder's slot
            // and tag writes are visible to this one.
            if self.ctrl.fetch_or(LOCK_BIT, Ordering::Acquire) & LOCK_BIT == 0 {
                return SetLock { set: self };
            }
            while self.ctrl.load(Ordering::Relaxed) & LOCK_BIT != 0 {
                backoff.snooze();
            }
        }
    }

    /// The number of occupied ways, from the tags (a moment's view under concurrency).
    pub(crate) fn occupied(&self) -> usize {
        nonzero_lanes(self.ctrl.load(Ordering::Relaxed) & TAG_MASK).count_ones() as usize
    }

    /// Drops every node still linked in the set, freeing it to `memory`, which made it.
    pub(crate) fn drop_nodes(&mut self, memory: &NodeMemory) {
        for slot in &mut self.slots {
            let slot = core::mem::replace(slot, Atomic::null());
            // SAFETY: `&mut self` means no reader or writer can reach the set, so the
            // unprotected guard is sound (nothing can retire the node meanwhile); every node
            // still linked is owned by the slot alone (unlinked nodes were retired and are not
            // in any slot), so it is taken exactly once here.
            let node = unsafe { slot.load(Ordering::Relaxed, crate::sync::epoch::unprotected()) };
            if let Some(node) = NonNull::new(node.as_raw().cast_mut()) {
                // SAFETY: as above: made by `memory` (the replica's), linked nowhere now.
                unsafe { memory.free(node) };
            }
        }
        self.ctrl.store(0, Ordering::Relaxed);
    }
}

/// The writer lock of one set, released on drop (also on unwind).
pub(crate) struct SetLock<'s, K, V> {
    set: &'s Set<K, V>,
}

impl<'s, K, V> SetLock<'s, K, V> {
    /// Whether the set still looks exactly as `snap` saw it: same tags, same slot pointers.
    /// Pointer identity is ABA-free here: every pointer in `snap` was loaded under the caller's
    /// guard, so none of those nodes can be freed and reused while it is pinned.
    pub(crate) fn validate(&self, snap: &Snapshot<'_, K, V>, guard: &Guard) -> bool {
        // Relaxed: every writer of tags and slots holds this lock, and taking it was Acquire.
        (self.set.ctrl.load(Ordering::Relaxed) & TAG_MASK) == snap.tags
            && self
                .set
                .slots
                .iter()
                .zip(&snap.slots)
                .all(|(slot, seen)| slot.load(Ordering::Relaxed, guard) == *seen)
    }

    /// Picks the way a new key goes to: an empty one, else the CLOCK victim. Readers may
    /// keep setting reference bits, so the sweep gives up after two rounds and takes the way
    /// under the hand.
    pub(crate) fn choose_way(&self, snap: &Snapshot<'_, K, V>, hand: &AtomicU8) -> usize {
        if let Some(way) = snap.slots.iter().position(Shared::is_null) {
            return way;
        }
        // Relaxed: the hand is only read and written under this lock.
        let mut way = usize::from(hand.load(Ordering::Relaxed)) % WAYS;
        for _ in 0..2 * WAYS {
            let bit = ref_bit(way);
            // Relaxed: reference bits are hints; clearing one gives the way its second chance.
            if self.set.ctrl.fetch_and(!bit, Ordering::Relaxed) & bit == 0 {
                break;
            }
            way = (way + 1) % WAYS;
        }
        hand.store(((way + 1) % WAYS) as u8, Ordering::Relaxed);
        way
    }

    /// Links `node` into `way` and returns the node it displaced (null if the way was empty),
    /// which the caller must retire after dropping the lock.
    pub(crate) fn publish<'g>(
        &self,
        snap: &Snapshot<'g, K, V>,
        way: usize,
        node: NewNode<'_, K, V>,
        guard: &'g Guard,
    ) -> Shared<'g, Node<K, V>> {
        let new_tag = tag(node.node().hash);
        let old_tag = lane(snap.tags, way);
        // Release pairs with the Acquire slot loads of readers: the node is initialised before
        // it can be seen.
        self.set.slots[way].store(node.into_shared(guard), Ordering::Release);
        if new_tag != old_tag {
            // Release pairs with the Acquire control-word loads of readers: whoever sees the
            // new tag sees the slot store above.
            self.set
                .ctrl
                .fetch_xor((old_tag ^ new_tag) << lane_shift(way), Ordering::Release);
        }
        if snap.found != Some(way) {
            // A new key starts unreferenced. Relaxed: a hint, as in `find`.
            self.set.ctrl.fetch_and(!ref_bit(way), Ordering::Relaxed);
        }
        snap.slots[way]
    }

    /// Empties `way` and returns its node, which the caller must retire after dropping the lock.
    pub(crate) fn unlink<'g>(
        &self,
        snap: &Snapshot<'g, K, V>,
        way: usize,
    ) -> Shared<'g, Node<K, V>> {
        // Release: pairs with readers' Acquire loads, as in `publish`.
        self.set.slots[way].store(Shared::null(), Ordering::Release);
        let mask = (lane(snap.tags, way) << lane_shift(way)) | ref_bit(way);
        // Release pairs with readers' Acquire control-word loads: whoever sees the lane cleared
        // sees the slot emptied.
        self.set.ctrl.fetch_and(!mask, Ordering::Release);
        snap.slots[way]
    }
}

impl<K, V> Drop for SetLock<'_, K, V> {
    fn drop(&mut self) {
        // Release pairs with the Acquire in `Set::lock`: the next holder sees this holder's
        // writes.
        self.set.ctrl.fetch_and(!LOCK_BIT, Ordering::Release);
    }
}

impl<'g, K, V> Snapshot<'g, K, V> {
    /// The way holding the key the snapshot was taken for.
    pub(crate) fn found(&self) -> Option<usize> {
        self.found
    }

    /// Every occupied way's node.
    pub(crate) fn occupied(&self) -> impl Iterator<Item = (usize, Shared<'g, Node<K, V>>)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_null())
            .map(|(w, s)| (w, *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_never_zero() {
        assert_eq!(tag(0), 1);
        assert_eq!(tag(0xFFFF_FFFF_00FF_FFFF), 1);
        assert_eq!(tag(0x0000_0000_AB00_0000), 0xAB);
    }

    #[test]
    fn lane_matching_finds_every_equal_lane_and_never_the_meta_byte() {
        for byte in [1usize, 0x7F, 0x80, 0xFF] {
            for present in 0..(1usize << WAYS) {
                let mut ctrl = !TAG_MASK; // meta byte all ones
                for way in 0..WAYS {
                    let t = if present & (1 << way) != 0 {
                        byte
                    } else {
                        byte ^ 0x5A
                    };
                    ctrl |= t << lane_shift(way);
                }
                let m = match_lanes(ctrl, byte);
                assert_eq!(m & !TAG_MASK, 0, "the meta lane must not match");
                for way in 0..WAYS {
                    if present & (1 << way) != 0 {
                        assert_ne!(m & (0x80 << lane_shift(way)), 0, "lane {way} missed");
                    }
                }
                // The lowest candidate is always exact.
                if m != 0 {
                    assert_ne!(present & (1 << first_lane(m)), 0);
                }
            }
        }
    }

    #[test]
    fn nonzero_lanes_are_counted_exactly() {
        // A lane holding 0x01 just above an empty lane is where `match_lanes(_, 0)` errs.
        for ctrl in [0x42 | (0x17 << 16), 0x0100, 0x0101_0001, 0x8001, 0] {
            let expected = (0..WAYS).filter(|&w| lane(ctrl, w) != 0).count();
            assert_eq!(
                nonzero_lanes(ctrl & TAG_MASK).count_ones() as usize,
                expected,
                "{ctrl:#x}"
            );
        }
    }
}
