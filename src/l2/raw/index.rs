//! A shard's index: an open-addressing table from a key's 32-bit hash to its slot id, which
//! readers probe without a lock while the shard's one writer changes it.
//!
//! # Layout
//! One allocation aligned to a cache line: a header line, then the groups of buckets, each a
//! control word (a `usize`: eight buckets on 64-bit targets, four on 32-bit ones, which may
//! lack 64-bit atomics) followed by its buckets' slot ids.
//! ```text
//! group: ctrl (usize)      one control byte per bucket
//!                          0xFF empty, 0x80 deleted, 0b0hhh_hhhh full (the hash's low 7 bits)
//!        ids (u32 each)    the slot id of a full bucket
//! ```
//! A group's ids sit beside its control word, so a probe mostly reads one cache line for both
//! (40-byte groups: about seven in ten matches find their id on the control word's line).
//! Five bytes a bucket; the table is rebuilt (into a new allocation) before more than seven
//! eighths of its buckets are full or deleted, so about seven bytes an entry.
//!
//! # Protocol
//! - A reader loads a group's control word (Acquire), matches the hash's tag against all eight
//!   bytes at once (SWAR), loads the candidates' ids (Acquire) and compares keys through the
//!   slots. It stops at a group with an empty byte: a key is always found before the first
//!   such group on its probe sequence. Readers never write.
//! - The writer (one at a time: the shard's lock) stores a new bucket's id, then its control
//!   word (Release). A removal turns the byte to *deleted*, or back to *empty* only in a group
//!   that still has an empty byte (no probe sequence has ever gone past such a group, so none
//!   is cut short under a reader). A replacement stores the new id in place (Release); a
//!   reader sees the old id or the new one, both valid slots.
//! - Deleted buckets are reclaimed only by a rebuild into a new table, published with Release;
//!   the old table is retired to the epoch and freed once no reader can hold it. A reader on
//!   the old table sees the state at the rebuild, which is a consistent (if older) view.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::Allocator;
use stratacache_alloc::MemoryHandle;

use super::segments::OutOfMemory;
use crate::sync::{AtomicU32, AtomicUsize, Ordering};

const EMPTY: u8 = 0xFF;
const DELETED: u8 = 0x80;
/// Buckets per group (a control word's bytes).
const GROUP: usize = core::mem::size_of::<usize>();
/// `0x0101…01`.
const LO: usize = usize::MAX / 0xFF;
/// `0x8080…80`.
const HI: usize = LO << 7;
/// A control word of empty buckets.
const ALL_EMPTY: usize = usize::MAX;

/// The control byte of a full bucket for `hash`.
#[inline]
fn tag(hash: u32) -> u8 {
    (hash & 0x7F) as u8
}

/// Lanes (their high bit set) whose byte may equal `byte`: exact for the lowest; a lane just
/// above a match may be a false positive, but only one holding `byte ^ 1`, which for a tag is
/// a full bucket too.
#[inline]
fn match_byte(word: usize, byte: u8) -> usize {
    let x = word ^ (LO * usize::from(byte));
    x.wrapping_sub(LO) & !x & HI
}

/// Lanes holding an empty byte (exact: only `0xFF` has both top bits set).
#[inline]
fn match_empty(word: usize) -> usize {
    word & (word << 1) & HI
}

/// Lanes holding an empty or a deleted byte.
#[inline]
fn match_free(word: usize) -> usize {
    word & HI
}

#[inline]
fn lane(mask: usize) -> usize {
    mask.trailing_zeros() as usize / 8
}

/// Where a group's ids start: right after its control word (the atomics' own sizes, which
/// loom's are not the plain integers').
const IDS_AT: usize =
    core::mem::size_of::<AtomicUsize>().next_multiple_of(core::mem::align_of::<AtomicU32>());
/// Bytes a group takes: its control word and its ids, padded so the next control word is
/// aligned.
const STRIDE: usize = (IDS_AT + GROUP * core::mem::size_of::<AtomicU32>())
    .next_multiple_of(core::mem::align_of::<AtomicUsize>());

/// The table: a header line followed by its groups (see the module docs).
#[repr(C, align(64))]
pub(crate) struct Table {
    groups: usize,
    /// The groups follow; this marks the header as shared mutable memory, so that a reference
    /// to it may reach the atomics beyond it (Tree Borrows freezes what a `&` to a type
    /// without interior mutability covers, including outside its size).
    groups_follow: [AtomicUsize; 0],
}

impl Table {
    fn layout(groups: usize) -> Option<Layout> {
        let size = groups
            .checked_mul(STRIDE)?
            .checked_add(core::mem::size_of::<Table>())?;
        Layout::from_size_align(size, core::mem::align_of::<Table>()).ok()
    }

    /// Group `group`'s first byte (its control word).
    #[inline]
    fn group_at(&self, group: usize) -> *const u8 {
        debug_assert!(group < self.groups);
        // SAFETY: the table was allocated with `groups` groups after its header (`allocate`),
        // and `group` is below that: the offset stays inside the allocation.
        unsafe {
            ptr::from_ref(self)
                .cast::<u8>()
                .add(core::mem::size_of::<Table>() + group * STRIDE)
        }
    }

    #[inline]
    fn ctrl(&self, group: usize) -> &AtomicUsize {
        // SAFETY: a group starts with its initialised control word (`allocate`), aligned for
        // it (the header and the stride are multiples of a `usize`).
        unsafe { &*self.group_at(group).cast::<AtomicUsize>() }
    }

    #[inline]
    fn id(&self, bucket: usize) -> &AtomicU32 {
        debug_assert!(bucket < self.groups * GROUP);
        // SAFETY: as `ctrl`: the group's `GROUP` initialised ids follow its control word.
        unsafe {
            &*self
                .group_at(bucket / GROUP)
                .add(IDS_AT)
                .cast::<AtomicU32>()
                .add(bucket % GROUP)
        }
    }

    /// The first group of `hash`'s probe sequence (fastrange over a Fibonacci mix, so the
    /// low bits the tag takes do not choose the group).
    #[inline]
    fn start(&self, hash: u32) -> usize {
        let mixed = hash.wrapping_mul(0x9E37_79B9);
        ((u64::from(mixed) * self.groups as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, group: usize) -> usize {
        if group + 1 == self.groups {
            0
        } else {
            group + 1
        }
    }

    /// The bucket and id of the first full bucket of `hash` whose id `matches`.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u32,
        mut matches: impl FnMut(u32) -> bool,
    ) -> Option<(usize, u32)> {
        let tag = tag(hash);
        let mut group = self.start(hash);
        for _ in 0..self.groups {
            // Acquire pairs with the Release stores of `insert`/`erase`: a full byte's id is
            // visible.
            let word = self.ctrl(group).load(Ordering::Acquire);
            let mut candidates = match_byte(word, tag);
            while candidates != 0 {
                let bucket = group * GROUP + lane(candidates);
                candidates &= candidates - 1;
                // Acquire pairs with the Release id stores of `insert` and `replace`: the
                // slot the id names is initialised.
                let id = self.id(bucket).load(Ordering::Acquire);
                if matches(id) {
                    return Some((bucket, id));
                }
            }
            if match_empty(word) != 0 {
                return None;
            }
            group = self.next(group);
        }
        None
    }

    /// The id of every full bucket, for a reader (under the epoch this table is retired to):
    /// each was indexed at some moment of the walk.
    pub(crate) fn live_ids(&self) -> impl Iterator<Item = u32> + '_ {
        // Acquire pairs with the Release stores of `insert`/`erase` (a full byte's id is
        // visible) and of the ids (the slot is initialised), as in `find`.
        self.walk(Ordering::Acquire).map(|(_, id)| id)
    }

    /// Buckets in all.
    pub(crate) fn buckets(&self) -> usize {
        self.groups * GROUP
    }

    /// Every full bucket and its id (the writer's view of its own table).
    pub(crate) fn full_buckets(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        // Relaxed: the writer's own table.
        self.walk(Ordering::Relaxed)
    }

    /// Every full bucket and its id, the control words and ids loaded with `order`.
    fn walk(&self, order: Ordering) -> impl Iterator<Item = (usize, u32)> + '_ {
        (0..self.groups).flat_map(move |group| {
            let word = self.ctrl(group).load(order);
            let mut full = !match_free(word) & HI;
            core::iter::from_fn(move || {
                if full == 0 {
                    return None;
                }
                let bucket = group * GROUP + lane(full);
                full &= full - 1;
                Some((bucket, self.id(bucket).load(order)))
            })
        })
    }
}

/// The writer's count of a table's buckets.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    /// Full buckets.
    pub(crate) live: usize,
    /// Buckets that may still turn full before a rebuild (seven eighths of the buckets, less
    /// the full and the deleted).
    pub(crate) growth_left: usize,
}

/// A shard's index: the current table (see the module docs).
pub(crate) struct Index {
    table: crate::sync::AtomicPtr<Table>,
    memory: MemoryHandle,
}

impl Index {
    /// An index with no table yet (every lookup misses).
    pub(crate) fn new(memory: MemoryHandle) -> Self {
        Self {
            table: crate::sync::AtomicPtr::new(ptr::null_mut()),
            memory,
        }
    }

    /// The current table, if any.
    ///
    /// # Safety
    /// The caller is pinned on the epoch replaced tables are retired to (or is the writer),
    /// and uses the table only while so.
    #[inline]
    pub(crate) unsafe fn table(&self) -> Option<&Table> {
        // Acquire pairs with the Release store in `publish`: the table is initialised.
        let table = self.table.load(Ordering::Acquire);
        // SAFETY: a published table stays allocated while the caller is pinned (the caller's
        // guarantee).
        unsafe { table.as_ref() }
    }

    /// Heap bytes of the current table (writer).
    pub(crate) fn heap_bytes(&self) -> usize {
        // SAFETY: the writer's view (or a moment's, for statistics): the current table.
        unsafe { self.table() }.map_or(0, |t| Table::layout(t.groups).map_or(0, |l| l.size()))
    }

    /// Allocates an empty table of `groups` groups.
    fn allocate(&self, groups: usize) -> Result<NonNull<Table>, OutOfMemory> {
        let groups = groups.max(1);
        let layout = Table::layout(groups).ok_or(OutOfMemory)?;
        let block = self
            .memory
            .allocate(layout)
            .map_err(|_| OutOfMemory)?
            .cast::<u8>();
        // SAFETY: a fresh block of `layout`: the header, then `groups` groups of a control
        // word and `GROUP` ids, each written once here.
        unsafe {
            let table = block.cast::<Table>();
            table.as_ptr().write(Table {
                groups,
                groups_follow: [],
            });
            for group in 0..groups {
                let at = block
                    .as_ptr()
                    .add(core::mem::size_of::<Table>() + group * STRIDE);
                at.cast::<AtomicUsize>().write(AtomicUsize::new(ALL_EMPTY));
                let ids = at.add(IDS_AT).cast::<AtomicU32>();
                for lane in 0..GROUP {
                    ids.add(lane).write(AtomicU32::new(0));
                }
            }
            Ok(table)
        }
    }

    /// Frees a table this index allocated.
    ///
    /// # Safety
    /// `table` came from this index, is freed once and no reader can hold it.
    pub(crate) unsafe fn free(&self, table: NonNull<Table>) {
        // SAFETY: the caller's guarantee; the layout is the one `allocate` used, and the words
        // and ids it wrote are dropped once (a no-op but under loom, whose atomics track).
        unsafe {
            let groups = table.as_ref().groups;
            let layout = Table::layout(groups).expect("allocated with it");
            for group in 0..groups {
                let at = table.as_ref().group_at(group).cast_mut();
                ptr::drop_in_place(at.cast::<AtomicUsize>());
                let ids = at.add(IDS_AT).cast::<AtomicU32>();
                ptr::drop_in_place(ptr::slice_from_raw_parts_mut(ids, GROUP));
            }
            self.memory.deallocate(table.cast(), layout);
        }
    }

    /// Groups for a shard of `slots` slots: room for every slot to be live at 70 % of the
    /// buckets, below the seven eighths a table may fill, so deletions mostly leave empty
    /// bytes (see `erase`) and the table needs no rebuild while the shard keeps its slots.
    pub(crate) fn groups_for(slots: usize) -> usize {
        (slots.saturating_mul(10) / 7).div_ceil(GROUP).max(1)
    }

    /// Groups of the current table (0 without one).
    pub(crate) fn groups(&self) -> usize {
        // SAFETY: the writer's own current table.
        unsafe { self.table() }.map_or(0, |table| table.groups)
    }

    /// Replaces the table with one of `groups` groups holding every full bucket of the current
    /// one (`hash_of` gives an id's hash), and returns the old table for the caller to retire.
    ///
    /// # Errors
    /// When the memory refuses; the index is unchanged.
    pub(crate) fn rebuild(
        &self,
        counts: &mut Counts,
        groups: usize,
        hash_of: impl Fn(u32) -> u32,
    ) -> Result<Option<NonNull<Table>>, OutOfMemory> {
        let fresh = self.allocate(groups)?;
        // SAFETY: just allocated, not published yet: ours alone.
        let new = unsafe { fresh.as_ref() };
        let mut live = 0;
        // SAFETY: the writer's own current table.
        if let Some(old) = unsafe { self.table() } {
            for (_, id) in old.full_buckets() {
                Self::place(new, hash_of(id), id);
                live += 1;
            }
        }
        let old = NonNull::new(self.table.load(Ordering::Relaxed));
        // Release pairs with the Acquire in `table`: the new table's contents are visible.
        self.table.store(fresh.as_ptr(), Ordering::Release);
        *counts = Counts {
            live,
            growth_left: new.buckets() * 7 / 8 - live,
        };
        Ok(old)
    }

    /// Writes `id` into the first free bucket of `hash`'s probe sequence of an unpublished
    /// table.
    fn place(table: &Table, hash: u32, id: u32) {
        let bucket = Self::free_bucket(table, hash);
        table.id(bucket).store(id, Ordering::Relaxed);
        let (group, shift) = (bucket / GROUP, (bucket % GROUP) * 8);
        let word = table.ctrl(group).load(Ordering::Relaxed);
        let word = (word & !(0xFF << shift)) | (usize::from(tag(hash)) << shift);
        table.ctrl(group).store(word, Ordering::Relaxed);
    }

    /// The first empty or deleted bucket of `hash`'s probe sequence (the table has one: it is
    /// rebuilt before it fills).
    fn free_bucket(table: &Table, hash: u32) -> usize {
        let mut group = table.start(hash);
        loop {
            // Relaxed: the writer's own table.
            let free = match_free(table.ctrl(group).load(Ordering::Relaxed));
            if free != 0 {
                return group * GROUP + lane(free);
            }
            group = table.next(group);
        }
    }

    /// Makes sure an insertion for `hash` has room (rebuilding into a larger or a cleaner
    /// table if not: only when it would take an empty bucket and none may turn full any more);
    /// returns a replaced table for the caller to retire.
    ///
    /// # Errors
    /// When the memory refuses the rebuild.
    pub(crate) fn reserve_one(
        &self,
        counts: &mut Counts,
        hash: u32,
        hash_of: impl Fn(u32) -> u32,
    ) -> Result<Option<NonNull<Table>>, OutOfMemory> {
        if counts.growth_left > 0 {
            return Ok(None);
        }
        // SAFETY: the writer's own current table.
        if let Some(table) = unsafe { self.table() } {
            let bucket = Self::free_bucket(table, hash);
            let (group, shift) = (bucket / GROUP, (bucket % GROUP) * 8);
            // Relaxed: the writer's own table.
            if (table.ctrl(group).load(Ordering::Relaxed) >> shift) as u8 == DELETED {
                return Ok(None); // reusing a deleted bucket takes no room
            }
        }
        let groups = self.groups().max(Self::groups_for(counts.live + 1));
        self.rebuild(counts, groups, hash_of)
    }

    /// Inserts `id` for `hash` (the writer checked the key is absent and reserved room).
    #[inline]
    pub(crate) fn insert(&self, counts: &mut Counts, hash: u32, id: u32) {
        // SAFETY: the writer's own current table.
        let table = unsafe { self.table() }.expect("reserved before inserting");
        let bucket = Self::free_bucket(table, hash);
        let (group, shift) = (bucket / GROUP, (bucket % GROUP) * 8);
        // Relaxed: the writer's own table; readers see it through the Release stores below.
        let word = table.ctrl(group).load(Ordering::Relaxed);
        if (word >> shift) as u8 == EMPTY {
            counts.growth_left -= 1;
        }
        // Release pairs with readers' Acquire id loads (see `Table::find`).
        table.id(bucket).store(id, Ordering::Release);
        let word = (word & !(0xFF << shift)) | (usize::from(tag(hash)) << shift);
        // Release pairs with readers' Acquire control loads: the id above is visible.
        table.ctrl(group).store(word, Ordering::Release);
        counts.live += 1;
    }

    /// Points full bucket `bucket` at `id` (a replacement of the same key).
    pub(crate) fn replace(&self, bucket: usize, id: u32) {
        // SAFETY: the writer's own current table.
        let table = unsafe { self.table() }.expect("the bucket is in it");
        // Release pairs with readers' Acquire id loads: the new slot is initialised.
        table.id(bucket).store(id, Ordering::Release);
    }

    /// Empties full bucket `bucket`: back to *empty* if its group has an empty byte (then no
    /// probe sequence ever went past the group, since a byte never turns empty again once
    /// full unless by this rule: a reader may stop there), else *deleted*.
    #[inline(always)]
    pub(crate) fn erase(&self, counts: &mut Counts, bucket: usize) {
        // SAFETY: the writer's own current table.
        let table = unsafe { self.table() }.expect("the bucket is in it");
        let (group, shift) = (bucket / GROUP, (bucket % GROUP) * 8);
        // Relaxed: the writer's own table.
        let word = table.ctrl(group).load(Ordering::Relaxed);
        let byte = if match_empty(word) != 0 {
            counts.growth_left += 1;
            EMPTY
        } else {
            DELETED
        };
        let word = (word & !(0xFF << shift)) | (usize::from(byte) << shift);
        // Release: a reader that sees the byte deleted sees nothing older of it (it stops
        // trusting the bucket either way; the slot stays valid until the epoch passes).
        table.ctrl(group).store(word, Ordering::Release);
        counts.live -= 1;
    }

    /// The bucket holding `id` for `hash` (the writer knows it is indexed).
    #[inline]
    pub(crate) fn bucket_of(&self, hash: u32, id: u32) -> Option<usize> {
        // SAFETY: the writer's own current table.
        let table = unsafe { self.table() }?;
        table
            .find(hash, |found| found == id)
            .map(|(bucket, _)| bucket)
    }

    /// Marks every full bucket deleted (writer): no allocation, so it cannot fail; the next
    /// insertion that finds no room rebuilds the table.
    pub(crate) fn erase_all(&self, counts: &mut Counts) {
        // SAFETY: the writer's own current table.
        let Some(table) = (unsafe { self.table() }) else {
            return;
        };
        for group in 0..table.groups {
            // Relaxed: the writer's own table.
            let word = table.ctrl(group).load(Ordering::Relaxed);
            // Full bytes (top bit clear) become deleted; empty and deleted ones stay.
            let full = !match_free(word) & HI;
            let cleared = (word & !(full >> 7).wrapping_mul(0xFF)) | full;
            // Release: as in `erase`.
            table.ctrl(group).store(cleared, Ordering::Release);
        }
        counts.live = 0;
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        if let Some(table) = NonNull::new(self.table.load(Ordering::Relaxed)) {
            // SAFETY: `&mut self`: no reader; the current table is owned here and freed once.
            unsafe { self.free(table) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn control_bytes_match_as_documented() {
        let word = usize::from_le_bytes([0x05, EMPTY, DELETED, 0x05, 0x04, 0x7F, EMPTY, 0x00]);
        let full = match_byte(word, 0x05);
        assert_ne!(full & 0x80, 0);
        assert_ne!(full & (0x80 << 24), 0);
        assert_eq!(match_empty(word), (0x80 << 8) | (0x80 << 48));
        assert_eq!(match_free(word), (0x80 << 8) | (0x80 << 16) | (0x80 << 48));
        // A false positive is a full bucket holding the tag with its low bit flipped.
        for lane in 0..8 {
            if full & (0x80 << (lane * 8)) != 0 {
                let byte = (word >> (lane * 8)) as u8;
                assert!(byte == 0x05 || byte == 0x04, "lane {lane}: {byte:#x}");
            }
        }
    }
}
