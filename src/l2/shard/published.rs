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

/// The bit above every sampled hash's 24 (see [`wants`]): set in a mask, no hit is wanted.
const NOTHING: u32 = 1 << 24;

/// The policy's [`HitReports`] as readers test them ([`wants`]): the mask of the bits of a hit's
/// policy hash (its top 24) that must be clear. All: none; a sample of `shift`: its low `shift`
/// bits; nothing: a bit no hash has clear.
#[inline]
pub(super) fn encode(reports: HitReports) -> u32 {
    match reports {
        HitReports::All => 0,
        HitReports::Nothing => NOTHING,
        HitReports::Sampled { shift } => (1 << shift.min(24)) - 1,
    }
}

/// Whether a policy that published `mask` ([`encode`]) wants to hear of a hit on the entry of
/// policy hash `hash`: [`HitReports::wants`] in one test, without a branch per kind.
#[inline]
pub(super) fn wants(mask: u32, hash: u64) -> bool {
    ((hash >> 40) as u32 | NOTHING) & mask == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_mask_wants_exactly_the_hits_the_policy_asks_for() {
        let mut reports = alloc::vec![HitReports::All, HitReports::Nothing];
        reports.extend((0..=30).map(|shift| HitReports::Sampled { shift }));
        for reports in reports {
            let mask = encode(reports);
            let mut hash: u64 = 0x9E37_79B9_7F4A_7C15;
            for at in 0..20_000u64 {
                // Every kind of top bits: zero, one, many.
                let hash_of = match at % 4 {
                    0 => hash,
                    1 => hash & ((1 << 40) - 1),
                    2 => hash & !(0xFFu64 << 40),
                    _ => hash | (1 << 63),
                };
                assert_eq!(
                    wants(mask, hash_of),
                    reports.wants(hash_of),
                    "{reports:?}, hash {hash_of:#x}"
                );
                hash = hash.rotate_left(7).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ at;
            }
        }
    }
}
