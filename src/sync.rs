//! The one place that chooses the atomics the kernel runs on.
//!
//! Under `cfg(loom)` every atomic, and the spin hint, comes from [loom] so the model checker
//! sees each access; otherwise they are `core`'s. crossbeam-epoch makes the same choice for
//! its own atomics under `cfg(crossbeam_loom)`, so loom runs set both
//! (`RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`). No other module imports atomics, locks
//! or `Arc` directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering,
};

/// 64-bit atomics where the target has them (the manual clock).
#[cfg(all(not(loom), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::AtomicU64;

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

pub(crate) use mutex::{Guard as MutexGuard, Mutex};
pub(crate) use signal::Signal;

#[cfg(not(loom))]
pub(crate) use alloc::sync::Arc;
/// Shared ownership, loom's under loom so the model checker tracks the count.
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

/// A mutual-exclusion lock that ignores poisoning (holders only run kernel code): the standard
/// library's under `std`, a spin lock without it, loom's under loom. For state touched rarely
/// and briefly, such as the evidence a table's shards pool to size their windows.
mod mutex {
    #[cfg(all(feature = "std", not(loom)))]
    type Inner<T> = std::sync::Mutex<T>;
    #[cfg(loom)]
    type Inner<T> = loom::sync::Mutex<T>;
    #[cfg(not(any(feature = "std", loom)))]
    type Inner<T> = spin::mutex::SpinMutex<T>;

    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) type Guard<'a, T> = std::sync::MutexGuard<'a, T>;
    #[cfg(loom)]
    pub(crate) type Guard<'a, T> = loom::sync::MutexGuard<'a, T>;
    #[cfg(not(any(feature = "std", loom)))]
    pub(crate) type Guard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

    pub(crate) struct Mutex<T>(Inner<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(Inner::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> Guard<'_, T> {
            #[cfg(any(feature = "std", loom))]
            return self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            #[cfg(not(any(feature = "std", loom)))]
            return self.0.lock();
        }

        /// The lock if no one holds it.
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<Guard<'_, T>> {
            #[cfg(any(feature = "std", loom))]
            return match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            #[cfg(not(any(feature = "std", loom)))]
            return self.0.try_lock();
        }
    }
}

/// A value behind a mutex that threads can wait on until it reaches a state they want: the
/// standard library's `Mutex` and `Condvar` under `std` (waiters park), a spin lock without
/// it (waiters spin, then back off), loom's under loom. Poisoning is ignored: holders only
/// run kernel code.
mod signal {
    #[cfg(all(feature = "std", not(loom)))]
    use std::sync::{Condvar, Mutex, MutexGuard};

    #[cfg(loom)]
    use loom::sync::{Condvar, Mutex, MutexGuard};

    #[cfg(not(any(feature = "std", loom)))]
    use spin::mutex::{SpinMutex as Mutex, SpinMutexGuard as MutexGuard};

    pub(crate) struct Signal<T> {
        state: Mutex<T>,
        #[cfg(any(feature = "std", loom))]
        changed: Condvar,
        /// Tasks waiting (the async facade): woken by every update. Locked only while the
        /// state is (a waiter registers under the state's lock, so no update is missed).
        #[cfg(all(feature = "async", not(loom)))]
        wakers: Mutex<alloc::vec::Vec<core::task::Waker>>,
    }

    impl<T> Signal<T> {
        pub(crate) fn new(value: T) -> Self {
            Self {
                state: Mutex::new(value),
                #[cfg(any(feature = "std", loom))]
                changed: Condvar::new(),
                #[cfg(all(feature = "async", not(loom)))]
                wakers: Mutex::new(alloc::vec::Vec::new()),
            }
        }

        /// Whether `done` holds for the state: then the state, locked; else the task of `cx`
        /// is woken by the next update.
        #[cfg(all(feature = "async", not(loom)))]
        pub(crate) fn poll_until(
            &self,
            cx: &mut core::task::Context<'_>,
            done: impl FnOnce(&T) -> bool,
        ) -> core::task::Poll<MutexGuard<'_, T>> {
            let state = self.lock();
            if done(&state) {
                return core::task::Poll::Ready(state);
            }
            let mut wakers = self
                .wakers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            core::task::Poll::Pending
        }

        /// Locks the state.
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            #[cfg(any(feature = "std", loom))]
            return self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            #[cfg(not(any(feature = "std", loom)))]
            return self.state.lock();
        }

        /// Changes the state with `change` and wakes every waiter.
        pub(crate) fn update(&self, change: impl FnOnce(&mut T)) {
            let mut state = self.lock();
            change(&mut state);
            drop(state);
            #[cfg(any(feature = "std", loom))]
            self.changed.notify_all();
            // Woken after the state's lock is released (a waker may run its task at once).
            #[cfg(all(feature = "async", not(loom)))]
            {
                let waiting = core::mem::take(
                    &mut *self
                        .wakers
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                );
                waiting.into_iter().for_each(core::task::Waker::wake);
            }
        }

        /// Blocks until `done` holds for the state, and returns it locked.
        pub(crate) fn wait_until(&self, mut done: impl FnMut(&T) -> bool) -> MutexGuard<'_, T> {
            let mut state = self.lock();
            #[cfg(not(any(feature = "std", loom)))]
            let mut backoff = super::Backoff::new();
            while !done(&state) {
                #[cfg(any(feature = "std", loom))]
                {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                #[cfg(not(any(feature = "std", loom)))]
                {
                    drop(state);
                    backoff.snooze();
                    state = self.lock();
                }
            }
            state
        }
    }
}
