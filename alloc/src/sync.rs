//! The one place that chooses core or loom atomics and locks for this crate.
//!
//! Under `cfg(loom)` the atomics and the mutex are loom's, so the model checker sees every
//! access of the slab protocol (`loom-tests/tests/slab.rs`); otherwise they are `core`'s and
//! `spin`'s. No other module imports atomics or locks directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// A short mutual-exclusion lock for the slab's refill paths (taking a span from a class's
/// partial list, carving a chunk, a large size class's free list). A spin lock outside loom:
/// its critical sections are a few pointer moves, and it needs neither `std` nor an OS.
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: spin::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

/// The guard of a [`Mutex`].
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;
/// The guard of a [`Mutex`].
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: spin::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        return self.inner.lock();
        #[cfg(loom)]
        return self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        #[cfg(not(loom))]
        return self.inner.get_mut();
        #[cfg(loom)]
        return self
            .inner
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// Waits a moment in a loop whose exit depends on another thread (yields under loom, which
/// needs that to explore such loops at all).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// A sequentially consistent fence (loom's under loom).
#[inline]
pub(crate) fn fence_seq_cst() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::SeqCst);
}
