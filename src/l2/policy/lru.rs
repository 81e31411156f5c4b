//! Least recently used: the baseline every cache paper measures against.
//!
//! Entries form one list, least recently used at the head. With exclusive access
//! ([`Policy::on_access`], the simulator's single-threaded shard) a hit moves the entry to the
//! tail at once: exact LRU, which reproduces published LRU figures. Under the sharded L2, hits
//! hold only a read lock, so a hit just marks the entry and the eviction hand moves a marked
//! head to the tail instead of evicting it (the usual concurrent approximation, close to
//! CLOCK).
//!
//! Priorities: with `spare_critical` the hand passes over `Critical` entries (they keep their
//! place). Expired entries at the head go first, like any other head.

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, HitCounter, Policy, Priority, SlotId};
use crate::sync::{AtomicU8, Ordering};

/// Per-entry state (12 bytes).
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    /// 1 when hit under a shared lock since the hand last saw the entry.
    touched: AtomicU8,
    hits: HitCounter,
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

    fn new_meta(&self) -> Meta {
        Meta {
            prev: 0,
            next: 0,
            touched: AtomicU8::new(0),
            hits: HitCounter::new(),
            linked: false,
            critical: false,
        }
    }

    #[inline]
    fn on_hit(&self, meta: &Meta, _hash: u64) {
        // Relaxed: a hint for the hand; no store once set.
        if meta.touched.load(Ordering::Relaxed) == 0 {
            meta.touched.store(1, Ordering::Relaxed);
        }
    }

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.refresh(entries, id);
    }

    #[inline]
    fn hit_counter(meta: &Meta) -> &HitCounter {
        &meta.hits
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        entries.meta_mut(id).critical = info.priority == Priority::Critical;
        self.link_tail(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        id: SlotId,
        _old_weight: u64,
        info: EntryInfo,
    ) {
        entries.meta_mut(id).critical = info.priority == Priority::Critical;
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
            let meta = entries.meta(at);
            let expired = entries.is_expired(at);
            // Relaxed: exclusive access.
            if !expired && meta.touched.load(Ordering::Relaxed) != 0 {
                meta.touched.store(0, Ordering::Relaxed);
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
