//! Time for entries' time to live. A `no_std` kernel has no clock of its own: the embedder
//! provides one (a frame clock, a hardware timer), or `std`'s [`StdClock`] is used.

#[cfg(any(loom, target_has_atomic = "64"))]
use crate::sync::{AtomicU64, Ordering};

/// A monotonic source of time in nanoseconds from an origin of the clock's choosing.
///
/// It is read only on paths that need it: a lookup reads it only when the entry it found has
/// a time to live, an insertion only once some entry has had one. A closure becomes a clock
/// through [`FnClock`]:
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use stratacache::{Cache, FnClock};
///
/// static FRAME_NANOS: AtomicU64 = AtomicU64::new(0);
/// let frame_clock = FnClock(|| FRAME_NANOS.load(Ordering::Relaxed));
/// let cache: Cache<u32, u32> = Cache::builder().capacity(64).clock(frame_clock).build()?;
/// # Ok::<(), stratacache::BuildError>(())
/// ```
pub trait Clock: Send + Sync {
    /// Nanoseconds since the clock's origin; never decreases.
    fn now_nanos(&self) -> u64;
}

/// A closure returning monotonic nanoseconds, as a [`Clock`].
#[derive(Debug, Clone, Copy)]
pub struct FnClock<F>(pub F);

impl<F: Fn() -> u64 + Send + Sync> Clock for FnClock<F> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (self.0)()
    }
}

/// The standard library's monotonic clock ([`std::time::Instant`]), counted from when this
/// value was made. The default clock under `std`.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for StdClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests, replays and simulations, or a game loop
/// that advances time once per frame. Share it with the cache through an `Arc` (or a
/// `&'static`).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stratacache::{Cache, InsertOptions, ManualClock};
///
/// let clock = Arc::new(ManualClock::new());
/// let cache: Cache<u32, &str> = Cache::builder().capacity(64).clock(Arc::clone(&clock)).build()?;
/// cache.insert_with(1, "spawn", InsertOptions::new().time_to_live(Duration::from_millis(50)))?;
/// assert_eq!(cache.get(&1), Some("spawn"));
/// clock.advance(Duration::from_millis(50));
/// assert_eq!(cache.get(&1), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(any(loom, target_has_atomic = "64"))]
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

#[cfg(any(loom, target_has_atomic = "64"))]
impl ManualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self {
            nanos: AtomicU64::new(0),
        }
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: core::time::Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the time is a value, not a synchronisation point; entries are published by
        // the cache's own locks.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Sets the clock to `nanos` if that is later than now (the clock never goes back).
    pub fn set_nanos(&self, nanos: u64) {
        // Relaxed: as in `advance`.
        self.nanos.fetch_max(nanos, Ordering::Relaxed);
    }
}

#[cfg(any(loom, target_has_atomic = "64"))]
impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Relaxed: as in `advance`.
        self.nanos.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for alloc::sync::Arc<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for &'static C {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
