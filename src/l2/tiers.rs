//! The tiers beside L2, as a shard sees them while locked: the tiered cache's L1 above, told
//! what leaves and asked what it used, and its persistent store below, told what spills.

use core::borrow::Borrow;

#[cfg(doc)]
use super::NEVER;

/// What the tiers beside L2 (the tiered cache's L1 above, its persistent store below) are told
/// and asked while a shard is locked.
pub(crate) trait Tiers<K, V> {
    /// The entry of `hash` and `key`, with `hits` counted, left L2 (or its value changed):
    /// the tier above drops its copy, if it may have one.
    fn evicted(&mut self, hash: u32, key: &K, hits: u8);
    /// Whether the entry was used in the tier above since this was last asked.
    fn used(&mut self, hash: u32, key: &K, hits: u8) -> bool;
    /// The entry of `key` and `value` (deadline `expires`, [`NEVER`] for none) is being
    /// evicted for room: a tier below may keep it.
    fn spilled(&mut self, key: &K, value: &V, expires: u64) {
        let _ = (key, value, expires);
    }
    /// `key` was just stored or removed: a tier below hides what it holds of the key (or
    /// puts the new value, prepared before the lock, in its place).
    fn written(&mut self, key: &K) {
        let _ = key;
    }
    /// A removal found no entry of `key` (of 64-bit `hash`) here: a tier below hides what it
    /// holds of the key all the same.
    fn absent<Q>(&mut self, hash: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let _ = (hash, key);
    }
}

/// No other tier.
impl<K, V> Tiers<K, V> for () {
    fn evicted(&mut self, _: u32, _: &K, _: u8) {}

    fn used(&mut self, _: u32, _: &K, _: u8) -> bool {
        false
    }
}
