//! Least recently used: the baseline every cache paper measures against.
//!
//! Entries form one list, least recently used at the head. A hit ([`Policy::on_access`]) moves
//! the entry to the tail: told at once (the simulator's [`Harness`](super::Harness)), that is
//! exact LRU, which reproduces published LRU figures; in the concurrent L2, hits are told in
//! batches, and a use the policy was not told of gives a marked head a second chance at the
//! tail (close to CLOCK).
//!
//! Priorities: with `spare_critical` the hand passes over `Critical` entries (they keep their
//! place). Expired entries at the head go first, like any other head.

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, SlotId};

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    linked: bool,
    critical: bool,
}

linked_meta!(Meta);

/// Least recently used (exact with exclusive access; second chance under shared hits).
#[derive(Default)]
pub struct Lru {
    /// Least recently used at the front.
    list: List,
}

impl Lru {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn link_tail(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.list.push_back(entries, id);
        entries.meta_mut(id).linked = true;
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.list.remove(entries, id);
        entries.meta_mut(id).linked = false;
    }

    /// Moves `id` to the most recently used end.
    fn refresh(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        if entries.meta(id).linked {
            self.unlink(entries, id);
            self.link_tail(entries, id);
        }
    }
}

impl Policy for Lru {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.refresh(entries, id);
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        entries.meta_mut(id).critical = info.is_critical();
        self.link_tail(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        if entries.meta(id).linked {
            self.list
                .replaced(entries, old, id, old_weight, info.weight);
        }
        entries.meta_mut(id).critical = info.is_critical();
        self.refresh(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        if entries.meta(id).linked {
            self.unlink(entries, id);
        }
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        // Each entry is passed over at most twice (once to clear its mark, once if Critical
        // and spared), so the walk ends.
        let mut budget = 2 * self.list.len + 1;
        let mut at = self.list.front?;
        while budget > 0 {
            budget -= 1;
            let next = entries.meta(at).next;
            let expired = entries.is_expired(at);
            if !expired && entries.referenced(at) {
                if self.list.front == Some(at) {
                    self.refresh(entries, at);
                    at = self.list.front.expect("not empty");
                } else {
                    at = next;
                }
                continue;
            }
            if !expired && spare_critical && entries.meta(at).critical {
                at = next;
                continue;
            }
            self.unlink(entries, at);
            return Some(at);
        }
        None
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}
