//! The one unsafe step of the tiered facade: its L2 runs under the epoch of its L1 table.
//!
//! L2's readers read entries in place, and its writers retire what they unlink to an epoch
//! collector (see `l2::raw`). The cache has one collector, its L1 table's: every operation
//! pins L1 first and hands that pin to L2, so every L2 shard is used under guards of that one
//! collector; and the cache declares `l1` before `l2`, so the collector drops (running every
//! deferred function, L2's included) before L2's shards do.

use crate::l1;
use crate::l2::Epoch;

/// L2's epoch for an operation pinned on the cache's L1 table.
#[inline]
pub(super) fn epoch<'g, K, V>(l1: &'g l1::Guard<'_, K, V, ()>) -> Epoch<'g> {
    // SAFETY: the module docs: `l1` is a guard of the cache's L1 table (`Cache` only passes
    // its own table's guards here), whose collector is the only one its L2 ever sees, and
    // which drops before L2 (field order in `Cache`).
    unsafe { Epoch::new(l1.epoch()) }
}
