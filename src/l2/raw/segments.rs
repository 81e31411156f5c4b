//! Arrays that grow by whole segments and never move an element: a reader may hold a reference
//! into one while the writer appends.
//!
//! A directory of segment pointers leads to segments of `2^shift` elements each. Appending a
//! segment writes its pointer into the directory; a full directory is replaced by one twice as
//! long, and the old one is handed to the caller to retire (readers may still be reading it).
//! Elements live until the array drops. With segments allocated as the array fills, a table
//! that counts its entries holds at most one segment it does not use, and a memory budget is
//! never left holding the blocks a doubling vector would have outgrown.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::Allocator;
use stratacache_alloc::MemoryHandle;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// The memory an allocation was refused.
#[derive(Debug)]
pub(crate) struct OutOfMemory;

/// A directory: its length, then that many segment pointers.
#[repr(C)]
pub(crate) struct Directory<T> {
    len: usize,
    segments: [AtomicPtr<T>; 0],
}

impl<T> Directory<T> {
    fn layout(len: usize) -> Layout {
        Layout::new::<Directory<T>>()
            .extend(Layout::array::<AtomicPtr<T>>(len).expect("a directory fits"))
            .expect("a directory fits")
            .0
            .pad_to_align()
    }

    /// The pointer of segment `at`.
    ///
    /// # Safety
    /// `at < self.len`.
    unsafe fn segment(&self, at: usize) -> &AtomicPtr<T> {
        // SAFETY: the directory was allocated with room for `len` pointers after its header,
        // all initialised (see `Segments::allocate_directory`); the caller keeps `at` in range.
        unsafe { &*self.segments.as_ptr().add(at) }
    }
}

/// A growable array of `T` whose elements never move. See the [module docs](self).
pub(crate) struct Segments<T> {
    directory: AtomicPtr<Directory<T>>,
    /// Segments allocated (the writer's count; readers never need it).
    allocated: AtomicUsize,
    shift: u32,
    memory: MemoryHandle,
}

// SAFETY: the array owns its elements (as a `Vec` would) and hands out `&T` to readers and
// `&mut T` only through `&mut self`; sending it sends the elements.
unsafe impl<T: Send> Send for Segments<T> {}
// SAFETY: shared access only reads the directory and segment pointers (atomics) and hands out
// `&T`, so `T: Sync` suffices (and `T: Send` for the owner that drops them).
unsafe impl<T: Send + Sync> Sync for Segments<T> {}

impl<T> Segments<T> {
    /// An empty array of segments of `2^shift` elements, allocated from `memory`.
    pub(crate) fn new(shift: u32, memory: MemoryHandle) -> Self {
        Self {
            directory: AtomicPtr::new(ptr::null_mut()),
            allocated: AtomicUsize::new(0),
            shift,
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

    /// Heap bytes held: segments and directory.
    pub(crate) fn heap_bytes(&self) -> usize {
        // Relaxed: the writer's own state (or a moment's view).
        let directory = self.directory.load(Ordering::Relaxed);
        let directory_len = if directory.is_null() {
            0
        } else {
            // SAFETY: a non-null directory pointer is a live directory of this array (replaced
            // ones are retired, not freed, while a reader might hold them; this one is current).
            unsafe { (*directory).len }
        };
        self.capacity() * core::mem::size_of::<T>() + Directory::<T>::layout(directory_len).size()
    }

    /// Element `id`.
    ///
    /// # Safety
    /// `id` is below [`capacity`](Self::capacity) as seen by a happens-before edge from the
    /// writer that allocated its segment (for a reader: `id` was published after the segment,
    /// and read with Acquire), and any directory this reads stays allocated meanwhile (replaced
    /// directories are retired to an epoch the caller is pinned on, or, for the writer, this is
    /// called with the array's exclusive owner).
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
        // Acquire pairs with the Release stores in `grow`: the directory and segment contents
        // are initialised for whoever sees the pointers.
        let directory = self.directory.load(Ordering::Acquire);
        // SAFETY: the caller's `id` was allocated, so a directory with its segment exists and
        // stays allocated (see `get`).
        unsafe {
            let segment = (*directory)
                .segment(id >> self.shift)
                .load(Ordering::Acquire);
            segment.add(id & ((1 << self.shift) - 1))
        }
    }

    /// Element `id`, for the array's exclusive owner.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: usize) -> &mut T {
        assert!(id < self.capacity(), "element {id} is not allocated");
        // SAFETY: `&mut self`: no reader can run concurrently; every directory and segment up to
        // `capacity` is allocated and initialised, and the pointer comes from the segment's
        // allocation (not from a shared reference).
        unsafe { &mut *self.element(id) }
    }

    /// Appends a segment of elements made by `make` (by index within the array). If the
    /// directory was full, the old directory is returned: the caller frees it (with
    /// [`free_directory`](Self::free_directory)) once no reader can hold it.
    ///
    /// # Errors
    /// When the memory refuses; nothing changes.
    ///
    /// # Safety
    /// No other thread grows the array at the same time (its owner serialises its writers).
    pub(crate) unsafe fn grow(
        &self,
        mut make: impl FnMut(usize) -> T,
    ) -> Result<Option<NonNull<Directory<T>>>, OutOfMemory> {
        // Relaxed: only this writer changes them (the caller's guarantee).
        let allocated = self.allocated.load(Ordering::Relaxed);
        let old = NonNull::new(self.directory.load(Ordering::Relaxed));
        // SAFETY: the current directory, which only this writer replaces.
        let room = old.map_or(0, |d| unsafe { d.as_ref().len });
        let layout = Layout::array::<T>(self.segment_len()).map_err(|_| OutOfMemory)?;
        let segment = self
            .memory
            .allocate(layout)
            .map_err(|_| OutOfMemory)?
            .cast::<T>();
        let first = allocated << self.shift;
        for at in 0..self.segment_len() {
            // SAFETY: a fresh block of `segment_len` elements.
            unsafe { segment.as_ptr().add(at).write(make(first + at)) };
        }
        let mut replaced = None;
        let directory = if allocated < room {
            old.expect("room means a directory")
        } else {
            let Ok(new) = self.allocate_directory((room * 2).max(4)) else {
                // SAFETY: the segment was allocated above with `layout`; its elements were
                // just made and are dropped with it.
                unsafe {
                    for at in 0..self.segment_len() {
                        ptr::drop_in_place(segment.as_ptr().add(at));
                    }
                    self.memory.deallocate(segment.cast(), layout);
                }
                return Err(OutOfMemory);
            };
            if let Some(old) = old {
                for at in 0..allocated {
                    // SAFETY: both directories are live; `at` is below both lengths. Relaxed:
                    // the new directory is published with Release below.
                    unsafe {
                        let pointer = old.as_ref().segment(at).load(Ordering::Relaxed);
                        new.as_ref().segment(at).store(pointer, Ordering::Relaxed);
                    }
                }
                replaced = Some(old);
            }
            new
        };
        // SAFETY: `allocated` is below the directory's length (it had room or is new). Release
        // pairs with the Acquire loads in `get`: the segment's elements are initialised.
        unsafe {
            directory
                .as_ref()
                .segment(allocated)
                .store(segment.as_ptr(), Ordering::Release);
        }
        // Release: as above, for the directory itself.
        self.directory.store(directory.as_ptr(), Ordering::Release);
        // Relaxed: the writer's own count.
        self.allocated.store(allocated + 1, Ordering::Relaxed);
        Ok(replaced)
    }

    /// A directory of `len` null pointers.
    fn allocate_directory(&self, len: usize) -> Result<NonNull<Directory<T>>, OutOfMemory> {
        let layout = Directory::<T>::layout(len);
        let block = self
            .memory
            .allocate(layout)
            .map_err(|_| OutOfMemory)?
            .cast::<Directory<T>>();
        // SAFETY: a fresh block with room for the header and `len` pointers after it.
        unsafe {
            ptr::addr_of_mut!((*block.as_ptr()).len).write(len);
            let pointers = ptr::addr_of_mut!((*block.as_ptr()).segments).cast::<AtomicPtr<T>>();
            for at in 0..len {
                pointers.add(at).write(AtomicPtr::new(ptr::null_mut()));
            }
        }
        Ok(block)
    }

    /// Frees a directory [`grow`](Self::grow) replaced.
    ///
    /// # Safety
    /// `directory` came from this array's `grow`, is freed once, and no reader can hold it.
    pub(crate) unsafe fn free_directory(&self, directory: NonNull<Directory<T>>) {
        // SAFETY: the caller's guarantee; the layout is the one it was allocated with, and its
        // pointers (written by `allocate_directory`) are dropped once.
        unsafe {
            let len = directory.as_ref().len;
            let pointers = ptr::addr_of_mut!((*directory.as_ptr()).segments).cast::<AtomicPtr<T>>();
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(pointers, len));
            self.memory
                .deallocate(directory.cast(), Directory::<T>::layout(len));
        }
    }
}

impl<T> Drop for Segments<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`.
        let Some(directory) = NonNull::new(self.directory.load(Ordering::Relaxed)) else {
            return;
        };
        let layout = Layout::array::<T>(self.segment_len()).expect("allocated with it");
        for at in 0..self.allocated.load(Ordering::Relaxed) {
            // SAFETY: every segment below `allocated` is live, fully initialised, and owned by
            // this array alone; it is dropped and freed once.
            unsafe {
                let segment = directory.as_ref().segment(at).load(Ordering::Relaxed);
                for element in 0..self.segment_len() {
                    ptr::drop_in_place(segment.add(element));
                }
                self.memory
                    .deallocate(NonNull::new_unchecked(segment).cast(), layout);
            }
        }
        // SAFETY: the current directory, owned by this array, freed once.
        unsafe { self.free_directory(directory) };
    }
}

/// A [`Segments`] array only its owner touches (no reader runs beside it): growing frees a
/// replaced directory at once, and every access is safe.
pub(crate) struct SegmentVec<T> {
    segments: Segments<T>,
}

impl<T> SegmentVec<T> {
    /// An empty array of segments of `2^shift` elements, allocated from `memory`.
    pub(crate) fn new(shift: u32, memory: MemoryHandle) -> Self {
        Self {
            segments: Segments::new(shift, memory),
        }
    }

    /// Elements allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.segments.capacity()
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.segments.heap_bytes()
    }

    /// Element `id`.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline]
    pub(crate) fn get(&self, id: usize) -> &T {
        assert!(id < self.capacity(), "element {id} is not allocated");
        // SAFETY: allocated (checked); only this owner, which holds `&self`, grows the array.
        unsafe { self.segments.get(id) }
    }

    /// Element `id`, for changing.
    ///
    /// # Panics
    /// If `id` is not allocated.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: usize) -> &mut T {
        self.segments.get_mut(id)
    }

    /// Appends a segment of elements made by `make`.
    ///
    /// # Errors
    /// When the memory refuses; nothing changes.
    pub(crate) fn grow(&mut self, make: impl FnMut(usize) -> T) -> Result<(), OutOfMemory> {
        // SAFETY: `&mut self`: no other thread grows it (nor reads it).
        if let Some(old) = unsafe { self.segments.grow(make) }? {
            // SAFETY: replaced just now, and no reader exists to hold it.
            unsafe { self.segments.free_directory(old) };
        }
        Ok(())
    }
}
