//! What a shard's writer publishes for its lock-free readers: the policy's key hint (an address
//! to prefetch) and which hits the policy wants to hear of.

use super::prefetch;
use crate::l2::policy::{HitReports, KeyHint};
use crate::sync::{AtomicUsize, Ordering};

/// A policy's [`KeyHint`] published for readers: an address, never read through.
pub(super) struct Hint {
    base: AtomicUsize,
    mask: AtomicUsize,
    block_of: fn(u64) -> usize,
}

impl Hint {
    pub(super) fn new(hint: KeyHint) -> Self {
        Self {
            base: AtomicUsize::new(hint.base),
            mask: AtomicUsize::new(hint.mask),
            block_of: hint.block_of,
        }
    }

    /// Publishes `hint` (stores only what changed: the sketch was resized).
    #[inline]
    pub(super) fn publish(&self, hint: KeyHint) {
        // Relaxed: an address to prefetch, never dereferenced; a reader that pairs an old
        // base with a new mask prefetches a useless line, nothing worse.
        if self.base.load(Ordering::Relaxed) != hint.base {
            self.base.store(hint.base, Ordering::Relaxed);
        }
        if self.mask.load(Ordering::Relaxed) != hint.mask {
            self.mask.store(hint.mask, Ordering::Relaxed);
        }
    }

    /// Prefetches the policy's state for policy hash `hash`.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        // Relaxed: see `publish`.
        let base = self.base.load(Ordering::Relaxed);
        if base != 0 {
            let at = base + ((self.block_of)(hash) & self.mask.load(Ordering::Relaxed)) * 64;
            prefetch(core::ptr::without_provenance::<u8>(at));
        }
    }
}

/// [`HitReports::All`] in [`Shard::reports`].
const REPORT_ALL: u8 = 0xFE;
/// [`HitReports::Nothing`] in [`Shard::reports`].
pub(super) const REPORT_NOTHING: u8 = 0xFF;

#[inline]
pub(super) fn encode(reports: HitReports) -> u8 {
    match reports {
        HitReports::All => REPORT_ALL,
        HitReports::Nothing => REPORT_NOTHING,
        HitReports::Sampled { shift } => shift.min(63),
    }
}

#[inline]
pub(super) fn decode(reports: u8) -> HitReports {
    match reports {
        REPORT_ALL => HitReports::All,
        REPORT_NOTHING => HitReports::Nothing,
        shift => HitReports::Sampled { shift },
    }
}
