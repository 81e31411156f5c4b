//! LFU with ageing: least frequently used, in the O(1) form of Shah, Mitra & Matani ("An O(1)
//! algorithm for implementing the LFU cache eviction scheme", 2010), with counts halved
//! periodically so that past popularity fades (as in LFU-DA and TinyLFU's reset).
//!
//! Each entry has a use count from 1 to 15; entries of equal count form an LRU list, and the
//! victim is the least recently used entry of the lowest count. Every `10 × resident` counted
//! uses, all counts are halved. A hit counts when the policy is told of it; a use it was not
//! told of counts when the hand meets the entry. `Critical` entries are passed over when they
//! must be spared; expired entries go first where met.

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, SlotId};

/// The highest use count.
const LEVELS: usize = 16;

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    /// The use count (0: not linked).
    level: u8,
    critical: bool,
}

linked_meta!(Meta);

/// LFU with ageing.
#[derive(Default)]
pub struct Lfu {
    levels: [List; LEVELS],
    uses: usize,
    resident: usize,
}

impl Lfu {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let level = usize::from(entries.meta(id).level);
        if level > 0 {
            self.levels[level].remove(entries, id);
            entries.meta_mut(id).level = 0;
            self.resident -= 1;
        }
    }

    fn link(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, level: usize) {
        let level = level.clamp(1, LEVELS - 1);
        entries.meta_mut(id).level = level as u8;
        self.levels[level].push_back(entries, id);
        self.resident += 1;
    }

    /// Counts `n` uses of `id`: it moves up as many levels, to the most recent end.
    fn count(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, n: usize) {
        let level = usize::from(entries.meta(id).level);
        if level == 0 {
            return;
        }
        self.unlink(entries, id);
        self.link(entries, id, level + n);
        self.uses += n;
        if self.uses >= 10 * self.resident.max(1) {
            self.age(entries);
        }
    }

    /// Halves every count (keeping each level's order).
    fn age(&mut self, entries: &mut impl Entries<Meta>) {
        self.uses = 0;
        for level in 2..LEVELS {
            while let Some(id) = self.levels[level].front {
                self.levels[level].remove(entries, id);
                self.resident -= 1;
                self.link(entries, id, level / 2);
            }
        }
    }
}

impl Policy for Lfu {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.count(entries, id, 1);
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        entries.meta_mut(id).critical = info.is_critical();
        self.link(entries, id, 1);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let level = usize::from(entries.meta(id).level);
        if level > 0 {
            let list = &mut self.levels[level];
            list.replaced(entries, old, id, old_weight, info.weight);
        }
        entries.meta_mut(id).critical = info.is_critical();
        self.count(entries, id, 1);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.unlink(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut steps = 3 * self.resident + 2;
        while steps > 0 {
            steps -= 1;
            let id = self.levels.iter().find_map(|level| level.front)?;
            let expired = entries.is_expired(id);
            let spared = spare_critical && entries.meta(id).critical;
            if !expired && (spared || entries.referenced(id)) {
                self.count(entries, id, 1);
                continue;
            }
            self.unlink(entries, id);
            return Some(id);
        }
        None
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}
