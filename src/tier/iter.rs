//! Iteration: a weakly consistent walk of L2, one shard's snapshot at a time.

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::raw::epoch;
use super::{Shared, Stamped};
use crate::hash::DefaultHashBuilder;
use crate::l1;
use crate::l2::{DefaultPolicy, NEVER, Policy, UnitWeigher};

/// How an iterator pins L1's epoch for each shard's walk: the front it came from.
pub(super) enum PinFrom<'c, K, V> {
    /// The thread-local handle the plain calls use (`std`).
    #[cfg(all(feature = "std", not(loom)))]
    ThreadLocal,
    /// A [`CacheHandle`](super::CacheHandle)'s own handle.
    Handle(&'c l1::Handle<'c, K, Stamped<V>, ()>),
    /// A [`CacheFrame`](super::CacheFrame)'s pin, held for the whole walk.
    Frame(&'c l1::Guard<'c, K, Stamped<V>, ()>),
}

impl<'c, K, V> PinFrom<'c, K, V> {
    /// A pin for one step of an operation: a fresh one, or the frame's.
    pub(super) fn pin<S, W, P: Policy>(
        &self,
        cache: &'c Shared<K, V, S, W, P>,
    ) -> Pinned<'c, K, V> {
        #[cfg(not(all(feature = "std", not(loom))))]
        let _ = cache; // only the thread-local handle pins through the cache
        match *self {
            #[cfg(all(feature = "std", not(loom)))]
            Self::ThreadLocal => Pinned::Fresh(cache.l1.pin()),
            Self::Handle(handle) => Pinned::Fresh(handle.pin()),
            Self::Frame(guard) => Pinned::Held(guard),
        }
    }
}

/// An L1 pin [`PinFrom::pin`] took: its own, or a frame's.
pub(super) enum Pinned<'c, K, V> {
    Fresh(l1::Guard<'c, K, Stamped<V>, ()>),
    Held(&'c l1::Guard<'c, K, Stamped<V>, ()>),
}

impl<'c, K, V> core::borrow::Borrow<l1::Guard<'c, K, Stamped<V>, ()>> for Pinned<'c, K, V> {
    fn borrow(&self) -> &l1::Guard<'c, K, Stamped<V>, ()> {
        match self {
            Self::Fresh(guard) => guard,
            Self::Held(guard) => guard,
        }
    }
}

/// The entries of a cache, as clones of their keys and values: see
/// [`Cache::iter`](super::Cache::iter).
///
/// Weakly consistent: each shard's live entries are copied at once (under an epoch pin, with
/// no lock), then handed out, then the next shard's. So an entry yielded was live at some
/// moment of the iteration; one that stays live from start to end is yielded exactly once;
/// one inserted, replaced or removed meanwhile may or may not be, with either value. No key
/// is yielded twice. Expired entries are skipped. One shard's entries are held at a time.
pub struct Iter<'c, K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    cache: &'c Shared<K, V, S, W, P>,
    pin: PinFrom<'c, K, V>,
    /// The next shard to walk.
    shard: usize,
    /// The walked shard's entries not yet handed out (with their slots, unused here).
    entries: alloc::vec::IntoIter<(K, V, u32)>,
}

impl<'c, K, V, S, W, P: Policy> Iter<'c, K, V, S, W, P> {
    pub(super) fn new(cache: &'c Shared<K, V, S, W, P>, pin: PinFrom<'c, K, V>) -> Self {
        Self {
            cache,
            pin,
            shard: 0,
            entries: Vec::new().into_iter(),
        }
    }
}

impl<K, V, S, W, P> Shared<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    P: Policy,
{
    /// Copies shard `shard`'s live entries, at most one per key, each with the slot it was
    /// read from (for `retain`'s removals).
    pub(super) fn snapshot(
        &self,
        shard: usize,
        l1: &l1::Guard<'_, K, Stamped<V>, ()>,
    ) -> Vec<(K, V, u32)> {
        let now = self.now();
        let mut seen = hashbrown::HashSet::with_hasher(foldhash::fast::FixedState::with_seed(0));
        let mut entries = Vec::new();
        self.l2.for_each_live_in(shard, &epoch(l1), |found| {
            let expires = found.expires();
            // A key removed and stored again while the shard is walked may sit in two
            // buckets: the first one seen is kept.
            if (expires == NEVER || expires > now) && seen.insert(found.key()) {
                entries.push((found.key().clone(), found.value().clone(), found.id()));
            }
        });
        entries
    }
}

impl<K, V, S, W, P> Iterator for Iter<'_, K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    P: Policy,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some((key, value, _)) = self.entries.next() {
                return Some((key, value));
            }
            if self.shard == self.cache.l2.shard_count() {
                return None;
            }
            let shard = self.shard;
            self.shard += 1;
            let entries = self
                .cache
                .snapshot(shard, self.pin.pin(self.cache).borrow());
            self.entries = entries.into_iter();
        }
    }
}
