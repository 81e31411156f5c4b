//! SIEVE (Zhang et al., "SIEVE is simpler than LRU: an efficient turn-key eviction algorithm
//! for web caches", NSDI 2024).
//!
//! A FIFO queue with one "visited" bit per entry and a hand that persists between evictions:
//! the hand walks from the oldest entry towards the newest, clearing visited bits, and evicts
//! the first unvisited entry; it then stays there (it does not restart at the oldest). New
//! entries join at the newest end; nothing moves on a hit. With `spare_critical` the hand
//! passes over `Critical` entries; expired entries are evicted whatever their bit.

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, SlotId};

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    visited: bool,
    critical: bool,
}

linked_meta!(Meta);

/// SIEVE.
#[derive(Default)]
pub struct Sieve {
    queue: List,
    /// Where the hand points (`None`: at the oldest entry).
    hand: Option<SlotId>,
}

impl Sieve {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes `id` from the queue, moving the hand on if it pointed there.
    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        if self.hand == Some(id) {
            let next = List::next(entries, id);
            // Past the newest entry the hand starts again at the oldest.
            self.hand = (next != id && Some(next) != self.queue.front).then_some(next);
        }
        self.queue.remove(entries, id);
    }
}

impl Policy for Sieve {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        entries.meta_mut(id).visited = true;
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        entries.meta_mut(id).critical = info.is_critical();
        self.queue.push_back(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        self.queue
            .replaced(entries, old, id, old_weight, info.weight);
        if self.hand == Some(old) {
            self.hand = Some(id);
        }
        entries.meta_mut(id).critical = info.is_critical();
        self.on_access(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.unlink(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut steps = 2 * self.queue.len + 1;
        let mut at = self.hand.or(self.queue.front)?;
        while steps > 0 {
            steps -= 1;
            let spared = spare_critical && entries.meta(at).critical;
            let expired = entries.is_expired(at);
            let visited = !expired && entries.meta(at).visited;
            if visited {
                entries.meta_mut(at).visited = false;
            } else if expired || !(spared || entries.referenced(at)) {
                self.hand = Some(at);
                self.unlink(entries, at);
                return Some(at);
            }
            let next = List::next(entries, at);
            at = if Some(next) == self.queue.front {
                self.queue.front.expect("not empty")
            } else {
                next
            };
        }
        None
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}
