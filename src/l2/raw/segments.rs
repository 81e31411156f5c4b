//! Arrays that grow by whole segments and never move an element: a reader may hold a reference
//! into one while the writer appends.
//!
//! The segment pointers live in buckets that double: bucket `b` holds `2^(first + b)` of them, and
//! the buckets' own pointers sit in the array itself. Appending a segment writes its pointer
//! into a bucket (allocating the bucket when the previous ones are full); nothing is ever
//! replaced, so nothing is retired and a reader needs no epoch for the directory. With segments
//! allocated as the array fills, a table that counts its entries holds at most one segment it
//! does not use, and a memory budget is never left holding blocks a doubling vector (or a
//! doubling directory) outgrew: every block the array takes stays in use until it drops.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::Allocator;
use stratacache_alloc::MemoryHandle;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// The memory an allocation was refused.
#[derive(Debug)]
pub(crate) struct OutOfMemory;

/// Buckets: room for `(2^BUCKETS - 1) << first` segments, more than a shard's 32-bit slot ids
/// can name with the smallest segments (four elements) and the smallest first bucket (four).
const BUCKETS: usize = 29;

/// How a [`Segments`] array grows: segments of `2^shift` elements, and a first bucket of
/// `2^first` segment pointers (the next ones double). Sizing the first bucket for the segments
/// a shard expects holds them all in one block, of one size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) shift: u32,
    pub(crate) first: u32,
    /// Whether the array's memory is on a budget (see [`SegmentVec`]).
    pub(crate) budgeted: bool,
}

impl Shape {
    /// Segments of `2^shift` elements, the first bucket sized for `expected` elements (between
    /// 4 and 512 segments: a 4 KiB bucket at most).
    pub(crate) fn new(shift: u32, expected: Option<usize>) -> Self {
        let segments = expected.map_or(4, |elements| (elements >> shift) + 1);
        let first = segments.next_power_of_two().clamp(4, 512).ilog2();
        Self {
            shift,
            first,
            budgeted: false,
        }
    }

    /// The bucket of segment `segment`, and its place there.
    fn bucket_of(self, segment: usize) -> (usize, usize) {
        if segment < 1 << self.first {
            (0, segment)
        } else {
            self.later_bucket_of(segment)
        }
    }

    #[cold]
    #[inline(never)]
    fn later_bucket_of(self, segment: usize) -> (usize, usize) {
        let bucket = ((segment >> self.first) + 1).ilog2() as usize;
        (bucket, segment - (((1 << bucket) - 1) << self.first))
    }

    /// The layout of bucket `bucket`'s pointers.
    fn bucket_layout<T>(self, bucket: usize) -> Layout {
        Layout::array::<AtomicPtr<T>>(1 << (self.first as usize + bucket)).expect("a bucket fits")
    }
}

/// A growable array of `T` whose elements never move. See the [module docs](self).
pub(crate) struct Segments<T> {
    buckets: [AtomicPtr<AtomicPtr<T>>; BUCKETS],
    /// Segments allocated (the writer's count; readers never need it).
    allocated: AtomicUsize,
    /// The elements the first bucket's segments hold.
    first_elements: usize,
    shift: u32,
    shape: Shape,
    memory: MemoryHandle,
}

// SAFETY: the array owns its elements (as a `Vec` would) and hands out `&T` to readers and
// `&mut T` only through `&mut self`; sending it sends the elements.
unsafe impl<T: Send> Send for Segments<T> {}
// SAFETY: shared access only reads the bucket and segment pointers (atomics) and hands out
// `&T`, so `T: Sync` suffices (and `T: Send` for the owner that drops them).
unsafe impl<T: Send + Sync> Sync for Segments<T> {}

impl<T> Segments<T> {
    /// An empty array of `shape`, allocated from `memory`.
    pub(crate) fn new(shape: Shape, memory: MemoryHandle) -> Self {
        Self {
            buckets: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            allocated: AtomicUsize::new(0),
            first_elements: 1 << (shape.first + shape.shift),
            shift: shape.shift,
            shape,
            memory,
        }
    }

    /// Elements one segment holds.
    pub(crate) fn segment_len(&self) -> usize {
        1 << self.shift
    }

    /// Elements allocated (every one initialised).
    pub(crate) fn capacity(&self) -> usize {
        // Relaxed: the writer's own count.
        self.allocated.load(Ordering::Relaxed) << self.shift
    }

    /// Heap bytes held: segments and buckets.
    pub(crate) fn heap_bytes(&self) -> usize {
        // Relaxed: the writer's own count (or a moment's view).
        let allocated = self.allocated.load(Ordering::Relaxed);
        let buckets = if allocated == 0 {
            0
        } else {
            self.shape.bucket_of(allocated - 1).0 + 1
        };
        self.capacity() * core::mem::size_of::<T>()
            + (0..buckets)
                .map(|b| self.shape.bucket_layout::<T>(b).size())
                .sum::<usize>()
    }

    /// Element `id`.
    ///
    /// # Safety
    /// `id` is below [`capacity`](Self::capacity) as seen by a happens-before edge from the
    /// writer that allocated its segment (for a reader: `id` was published after the segment,
    /// and read with Acquire).
    #[inline]
    pub(crate) unsafe fn get(&self, id: usize) -> &T {
        // SAFETY: the caller's guarantee (see `element`); the element is initialised and only
        // shared from here.
        unsafe { &*self.element(id) }
    }

    /// A pointer to element `id`.
    ///
    /// # Safety
    /// As [`get`](Self::get).
    #[inline]
    unsafe fn element(&self, id: usize) -> *mut T {
        // The common case first: the first bucket is sized for the segments expected.
        let (bucket, at) = if id < self.first_elements {
            (0, id >> self.shift)
        } else {
            self.shape.later_bucket_of(id >> self.shift)
        };
        // Acquire pairs with the Release stores in `grow`: the bucket and the segment's
        // elements are initialised for whoever sees the pointers.
        // SAFETY: the caller's `id` was allocated, so its bucket and segment exist (and live
        // as long as the array), and `at` is within the bucket.
        unsafe {
            let pointers = self.buckets.get_unchecked(bucket).load(Ordering::Acquire);
            let segment = (*pointers.add(at)).load(Ordering::Acquire);
            segment.add(id & ((1 << self.shift) - 1))
        }
    }

    /// Appends a segment of elements made by `make` (by index within the array).
    ///
    /// # Errors
    /// When the memory refuses, or the buckets are full; nothing changes.
    ///
    /// # Safety
    /// No other thread grows the array at the same time (its owner serialises its writers).
    pub(crate) unsafe fn grow(&self, mut make: impl FnMut(usize) -> T) -> Result<(), OutOfMemory> {
        // Relaxed: only this writer changes it (the caller's guarantee).
        let allocated = self.allocated.load(Ordering::Relaxed);
        let (bucket, at) = self.shape.bucket_of(allocated);
        if bucket >= BUCKETS {
            return Err(OutOfMemory);
        }
        // Relaxed: only this writer stores bucket pointers.
        let mut pointers = self.buckets[bucket].load(Ordering::Relaxed);
        let fresh = pointers.is_null();
        if fresh {
            let block = self
                .memory
                .allocate(self.shape.bucket_layout::<T>(bucket))
                .map_err(|_| OutOfMemory)?
                .cast::<AtomicPtr<T>>();
            for i in 0..1usize << (self.shape.first as usize + bucket) {
                // SAFETY: a fresh block with room for the bucket's pointers.
                unsafe { block.as_ptr().add(i).write(AtomicPtr::new(ptr::null_mut())) };
            }
            pointers = block.as_ptr();
        }
        let layout = Layout::array::<T>(self.segment_len()).map_err(|_| OutOfMemory)?;
        let Ok(segment) = self.memory.allocate(layout) else {
            if fresh {
                // SAFETY: allocated just above with this layout, never published.
                unsafe {
                    self.memory.deallocate(
                        NonNull::new_unchecked(pointers).cast(),
                        self.shape.bucket_layout::<T>(bucket),
                    );
                }
            }
            return Err(OutOfMemory);
        };
        let segment = segment.cast::<T>();
        let first = allocated << self.shift;
        for i in 0..self.segment_len() {
            // SAFETY: a fresh block of `segment_len` elements.
            unsafe { segment.as_ptr().add(i).write(make(first + i)) };
        }
        // SAFETY: `at` is within the bucket (`bucket_of`). Release pairs with the Acquire loads
        // in `element`: the segment's elements are initialised.
        unsafe { (*pointers.add(at)).store(segment.as_ptr(), Ordering::Release) };
        if fresh {
            // Release: as above, for the bucket's pointers.
            self.buckets[bucket].store(pointers, Ordering::Release);
        }
        // Relaxed: the writer's own count.
        self.allocated.store(allocated + 1, Ordering::Relaxed);
        Ok(())
    }
}

impl<T> Drop for Segments<T> {
    fn drop(&mut self) {
        let layout = Layout::array::<T>(self.segment_len()).expect("allocated with it");
        // Relaxed: `&mut self` (here and below).
        let mut left = self.allocated.load(Ordering::Relaxed);
        // Buckets fill in order: a bucket's segments, then the next bucket's.
        for (bucket, pointers) in self.buckets.iter().enumerate() {
            let Some(pointers) = NonNull::new(pointers.load(Ordering::Relaxed)) else {
                break;
            };
            let here = left.min(1 << (self.shape.first as usize + bucket));
            left -= here;
            // SAFETY: the bucket's first `here` segments are live, fully initialised, and owned
            // by this array alone; each is dropped and freed once, and then the bucket, which
            // `grow` allocated with this layout (its pointers are plain atomics).
            unsafe {
                for at in 0..here {
                    let segment = (*pointers.as_ptr().add(at)).load(Ordering::Relaxed);
                    for element in 0..self.segment_len() {
                        ptr::drop_in_place(segment.add(element));
                    }
                    self.memory
                        .deallocate(NonNull::new_unchecked(segment).cast(), layout);
                }
                self.memory
                    .deallocate(pointers.cast(), self.shape.bucket_layout::<T>(bucket));
            }
        }
    }
}

/// An array only its owner touches (no reader runs beside it), grown a segment at a time.
/// Elements may move when it grows, so without a memory budget it is one flat block, grown by a
/// quarter (or a segment) at a time, and an access is an index. On a budget it is a [`Segments`]
/// array instead: a flat block would come from the arena's power-of-two large classes (up to
/// half of it unused) and leave each outgrown block to its size class.
pub(crate) struct SegmentVec<T> {
    /// The elements, off a budget; empty on one.
    flat: allocator_api2::vec::Vec<T, MemoryHandle>,
    /// The elements, on a budget. Boxed: the bucket pointers would make every array as large.
    segments: Option<alloc::boxed::Box<Segments<T>>>,
    segment_len: usize,
}

impl<T> SegmentVec<T> {
    /// An empty array of `shape`, allocated from `memory`.
    pub(crate) fn new(shape: Shape, memory: MemoryHandle) -> Self {
        let segments = shape
            .budgeted
            .then(|| alloc::boxed::Box::new(Segments::new(shape, memory.clone())));
        Self {
            flat: allocator_api2::vec::Vec::new_in(memory),
            segments,
            segment_len: 1 << shape.shift,
        }
    }

    /// Elements made.
    pub(crate) fn capacity(&self) -> usize {
        match &self.segments {
            None => self.flat.len(),
            Some(segments) => segments.capacity(),
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.segments {
            None => self.flat.capacity() * core::mem::size_of::<T>(),
            Some(segments) => segments.heap_bytes(),
        }
    }

    /// Element `id`. Off a budget, one bounds check: the flat elements are asked first.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline]
    pub(crate) fn get(&self, id: usize) -> &T {
        match self.flat.get(id) {
            Some(item) => item,
            None => self.in_segments(id),
        }
    }

    /// Element `id` of the segments (on a budget).
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline(never)]
    fn in_segments(&self, id: usize) -> &T {
        let segments = match &self.segments {
            Some(segments) if id < segments.capacity() => segments,
            _ => panic!("element {id} is not allocated"),
        };
        // SAFETY: allocated (checked); `&self`: only this owner grows the array.
        unsafe { segments.get(id) }
    }

    /// Element `id`, for changing.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: usize) -> &mut T {
        if id < self.flat.len() {
            return &mut self.flat[id];
        }
        self.in_segments_mut(id)
    }

    /// Element `id` of the segments (on a budget), for changing.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline(never)]
    fn in_segments_mut(&mut self, id: usize) -> &mut T {
        let segments = match &mut self.segments {
            Some(segments) if id < segments.capacity() => segments,
            _ => panic!("element {id} is not allocated"),
        };
        // SAFETY: allocated (checked); `&mut self`: no other thread reads or grows the array,
        // and the pointer comes from the segment's allocation.
        unsafe { &mut *segments.element(id) }
    }

    /// Appends a segment of elements made by `make`.
    ///
    /// # Errors
    /// When the memory refuses; nothing changes.
    pub(crate) fn grow(&mut self, mut make: impl FnMut(usize) -> T) -> Result<(), OutOfMemory> {
        match &mut self.segments {
            None => {
                let items = &mut self.flat;
                let len = items.len();
                if items.capacity() - len < self.segment_len {
                    let more = (len / 4).max(self.segment_len);
                    items.try_reserve_exact(more).map_err(|_| OutOfMemory)?;
                }
                for at in len..len + self.segment_len {
                    items.push(make(at));
                }
                Ok(())
            }
            // SAFETY: `&mut self`: no other thread grows it (nor reads it).
            Some(segments) => unsafe { segments.grow(make) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_has_its_own_place_and_buckets_fill_in_order() {
        for first in [2, 5, 9] {
            let shape = Shape {
                shift: 2,
                first,
                budgeted: false,
            };
            let mut expected = (0, 0);
            for segment in 0..5_000 {
                let (bucket, at) = shape.bucket_of(segment);
                assert_eq!((bucket, at), expected, "segment {segment}, first {first}");
                expected = if at + 1 == 1 << (first as usize + bucket) {
                    (bucket + 1, 0)
                } else {
                    (bucket, at + 1)
                };
            }
        }
    }

    #[test]
    fn a_first_bucket_sized_for_the_expected_segments_holds_them_all() {
        let shape = Shape::new(4, Some(1_000));
        assert_eq!(shape.bucket_of(1_000 >> 4).0, 0);
        assert_eq!(Shape::new(4, None).first, 2);
        assert_eq!(
            Shape::new(2, Some(1 << 30)).first,
            9,
            "at most a 4 KiB bucket"
        );
    }

    #[test]
    fn elements_keep_their_place_and_value_as_the_array_grows() {
        let array = Segments::new(Shape::new(2, None), MemoryHandle::global());
        let mut first = core::ptr::null::<u64>();
        for round in 0..200 {
            // SAFETY: this thread alone grows the array.
            unsafe { array.grow(|at| at as u64 * 3) }.unwrap();
            if round == 0 {
                // SAFETY: element 0 is allocated.
                first = unsafe { array.get(0) };
            }
            assert_eq!(array.capacity(), (round + 1) * 4);
        }
        // SAFETY: every id below the capacity is allocated; no other thread touches the array.
        unsafe {
            assert_eq!(array.get(0) as *const u64, first, "an element never moves");
            for at in 0..array.capacity() {
                assert_eq!(*array.get(at), at as u64 * 3);
            }
        }
        assert!(array.heap_bytes() >= 800 * 8);
    }

    #[test]
    fn an_owner_array_keeps_its_values_flat_or_in_segments() {
        for budgeted in [false, true] {
            let shape = Shape {
                budgeted,
                ..Shape::new(2, None)
            };
            let mut array = SegmentVec::new(shape, MemoryHandle::global());
            for _ in 0..300 {
                array.grow(|at| at as u32).unwrap();
            }
            assert_eq!(array.capacity(), 1_200);
            assert!(array.heap_bytes() >= 1_200 * 4);
            *array.get_mut(17) = 1;
            for at in 0..array.capacity() {
                assert_eq!(*array.get(at), if at == 17 { 1 } else { at as u32 });
            }
        }
    }
}
