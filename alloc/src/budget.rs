//! A lock-free byte budget.

use core::fmt;

use crate::sync::{AtomicUsize, Ordering};

/// A limit on bytes in use, shared by every thread that allocates against it.
///
/// Reserving is one compare-and-swap loop on a single counter; it never blocks and never
/// overshoots: the bytes in use never exceed the limit, whatever the interleaving.
pub struct ByteBudget {
    limit: usize,
    in_use: AtomicUsize,
}

/// A reservation exceeded the budget; nothing was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The bytes asked for.
    pub requested: usize,
    /// The bytes still free when the request was refused.
    pub available: usize,
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes requested but only {} left in the budget",
            self.requested, self.available
        )
    }
}

impl core::error::Error for BudgetExceeded {}

impl ByteBudget {
    /// A budget of `limit` bytes, none in use.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            in_use: AtomicUsize::new(0),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Bytes that can still be reserved now.
    pub fn available(&self) -> usize {
        self.limit - self.in_use()
    }

    /// Reserves `bytes`, returned to the budget when the [`Reservation`] drops.
    ///
    /// # Errors
    /// [`BudgetExceeded`] when fewer than `bytes` are free; nothing is reserved then.
    pub fn try_reserve(&self, bytes: usize) -> Result<Reservation<'_>, BudgetExceeded> {
        self.charge(bytes)?;
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Reserves `bytes` without a guard; the caller must [`credit`](Self::credit) them back.
    /// For owners that track sizes themselves (a slab, a cache entry's weight).
    ///
    /// # Errors
    /// [`BudgetExceeded`] when fewer than `bytes` are free; nothing is reserved then.
    pub fn charge(&self, bytes: usize) -> Result<(), BudgetExceeded> {
        // Relaxed: the counter orders no other memory; the loop only needs atomicity.
        self.in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| BudgetExceeded {
                requested: bytes,
                available: self.limit - used,
            })
    }

    /// Returns `bytes` charged earlier with [`charge`](Self::charge).
    ///
    /// # Panics
    /// If more is credited than is in use (a bookkeeping bug in the caller).
    pub fn credit(&self, bytes: usize) {
        let before = self.in_use.fetch_sub(bytes, Ordering::Relaxed);
        assert!(
            before >= bytes,
            "credited {bytes} bytes but only {before} were in use"
        );
    }
}

impl fmt::Debug for ByteBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteBudget")
            .field("limit", &self.limit)
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// Bytes held against a [`ByteBudget`], given back on drop.
#[derive(Debug)]
#[must_use = "dropping a reservation gives its bytes back at once"]
pub struct Reservation<'b> {
    budget: &'b ByteBudget,
    bytes: usize,
}

impl Reservation<'_> {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.credit(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn reservations_are_refused_past_the_limit_and_returned_on_drop() {
        let budget = ByteBudget::new(100);
        let a = budget.try_reserve(60).unwrap();
        assert_eq!(
            budget.try_reserve(41).unwrap_err(),
            BudgetExceeded {
                requested: 41,
                available: 40
            }
        );
        let b = budget.try_reserve(40).unwrap();
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!((budget.in_use(), b.bytes()), (40, 40));
        assert!(
            budget.try_reserve(usize::MAX).is_err(),
            "overflow is a refusal, not a wrap"
        );
    }

    #[test]
    #[should_panic(expected = "credited")]
    fn crediting_more_than_charged_is_caught() {
        ByteBudget::new(10).credit(1);
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let budget = ByteBudget::new(1000);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..if cfg!(miri) { 100 } else { 2000 } {
                        if let Ok(r) = budget.try_reserve(1 + i % 97) {
                            assert!(budget.in_use() <= budget.limit());
                            drop(r);
                        }
                    }
                });
            }
        });
        assert_eq!(budget.in_use(), 0);
    }
}
