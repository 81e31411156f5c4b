//! The one place that chooses the atomics the kernel runs on.
//!
//! Under `cfg(loom)` every atomic, and the spin hint, comes from [loom] so the model checker
//! sees each access; otherwise they are `core`'s. crossbeam-epoch makes the same choice for
//! its own atomics under `cfg(crossbeam_loom)`, so loom runs set both
//! (`RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`). No other module imports atomics directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The epoch-based reclamation the kernel is built on (loom-aware under `cfg(crossbeam_loom)`).
pub(crate) use crossbeam_epoch as epoch;

/// Waits a moment in a spin loop whose exit depends on another thread.
///
/// Under loom this yields to the scheduler, which loom needs to explore spin loops at all.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Backs off after a failed attempt to take a short lock: spins, and under `std` yields the
/// CPU once spinning has gone on long enough that the holder was probably preempted.
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    const SPIN_LIMIT: u32 = 6;

    pub(crate) const fn new() -> Self {
        Self { step: 0 }
    }

    #[inline]
    pub(crate) fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..(1u32 << self.step) {
                spin_hint();
            }
            self.step += 1;
        } else {
            #[cfg(all(feature = "std", not(loom)))]
            std::thread::yield_now();
            #[cfg(not(all(feature = "std", not(loom))))]
            spin_hint();
        }
    }
}

pub(crate) use lock::RwLock;

/// A reader-writer lock that ignores poisoning: the kernel runs no user code that can panic
/// while it holds a write guard in the middle of a change, so a poisoned lock's data is
/// consistent. Under `std` it is the standard library's (futex-based on Linux: readers and
/// writers park instead of spinning when a holder is preempted); without `std` a spin lock;
/// under loom, loom's.
mod lock {
    #[cfg(all(feature = "std", not(loom)))]
    type Inner<T> = std::sync::RwLock<T>;
    #[cfg(loom)]
    type Inner<T> = loom::sync::RwLock<T>;
    #[cfg(not(any(feature = "std", loom)))]
    type Inner<T> = spin::RwLock<T>;

    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) type ReadGuard<'a, T> = std::sync::RwLockReadGuard<'a, T>;
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) type WriteGuard<'a, T> = std::sync::RwLockWriteGuard<'a, T>;
    #[cfg(loom)]
    pub(crate) type ReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    #[cfg(loom)]
    pub(crate) type WriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;
    #[cfg(not(any(feature = "std", loom)))]
    pub(crate) type ReadGuard<'a, T> = spin::RwLockReadGuard<'a, T>;
    #[cfg(not(any(feature = "std", loom)))]
    pub(crate) type WriteGuard<'a, T> = spin::RwLockWriteGuard<'a, T>;

    pub(crate) struct RwLock<T>(Inner<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(Inner::new(value))
        }

        #[inline]
        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            #[cfg(any(feature = "std", loom))]
            return self
                .0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            #[cfg(not(any(feature = "std", loom)))]
            return self.0.read();
        }

        #[inline]
        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            #[cfg(any(feature = "std", loom))]
            return self
                .0
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            #[cfg(not(any(feature = "std", loom)))]
            return self.0.write();
        }
    }
}
