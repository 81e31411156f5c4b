//! CLOCK with `BITS`-bit use counters (Corbató, "A paging experiment with the Multics
//! system", 1968; the n-bit generalisation is the classic "GCLOCK" of Smith, 1978).
//!
//! Entries sit on a ring; a hit raises the entry's counter (up to `2^BITS - 1`, or less for
//! lower priorities); the hand evicts the first entry whose counter is zero, decrementing
//! every counter it passes. New entries go in just behind the hand. With `spare_critical` the
//! hand passes over `Critical` entries; expired entries are evicted whatever their counter.

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, Priority, SlotId};

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    freq: u8,
    /// The counter's ceiling for this entry: `2^BITS - 1`, capped by its priority.
    max: u8,
    critical: bool,
}

linked_meta!(Meta);

/// CLOCK with `BITS`-bit counters (1 bit: second chance). The default is 2 bits. Named
/// `ClockPolicy` so that it never shadows the crate's time source, [`Clock`](crate::Clock).
#[derive(Default)]
pub struct ClockPolicy<const BITS: u8 = 2> {
    ring: List,
}

impl<const BITS: u8> ClockPolicy<BITS> {
    const MAX: u8 = if BITS >= 8 {
        u8::MAX
    } else {
        (1u8 << BITS) - 1
    };

    /// An empty policy.
    pub fn new() -> Self {
        Self {
            ring: List::default(),
        }
    }

    fn ceiling(priority: Priority) -> u8 {
        // Lower priorities get fewer second chances, scaled to the counter's width.
        match priority {
            Priority::High | Priority::Critical => Self::MAX,
            Priority::Medium => Self::MAX.div_ceil(2),
            Priority::Low => 1.min(Self::MAX),
        }
    }
}

impl<const BITS: u8> Policy for ClockPolicy<BITS> {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let meta = entries.meta_mut(id);
        meta.freq = (meta.freq + 1).min(meta.max);
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        let meta = entries.meta_mut(id);
        meta.max = Self::ceiling(info.priority);
        meta.critical = info.is_critical();
        // Behind the hand: the front is where the hand points, so the back is just behind it.
        self.ring.push_back(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        self.ring
            .replaced(entries, old, id, old_weight, info.weight);
        let meta = entries.meta_mut(id);
        meta.max = Self::ceiling(info.priority);
        meta.critical = info.is_critical();
        self.on_access(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.ring.remove(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        // Every counter is at most MAX, so (MAX + 2) turns find a victim if one may go.
        let mut steps = (usize::from(Self::MAX) + 2) * self.ring.len;
        while steps > 0 {
            steps -= 1;
            let id = self.ring.front?;
            if entries.is_expired(id) {
                self.ring.remove(entries, id);
                return Some(id);
            }
            let meta = entries.meta_mut(id);
            let spared = spare_critical && meta.critical;
            if meta.freq > 0 {
                meta.freq -= 1;
            } else if !(spared || entries.referenced(id)) {
                self.ring.remove(entries, id);
                return Some(id);
            }
            self.ring.rotate(entries);
        }
        None
    }

    fn clear(&mut self) {
        self.ring = List::default();
    }
}
