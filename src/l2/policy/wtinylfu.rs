//! W-TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM ToS 2017; the window as in Caffeine): a small LRU window (1 % of the weight)
//! in front of a segmented LRU main region (20 % probation, 80 % protected), with admission
//! to the main region decided by a frequency sketch.
//!
//! A new key enters the window. When the window overflows, its oldest entry (the candidate)
//! meets the main region's next victim: the one seen more often lately (by the sketch) stays,
//! the other is evicted; ties keep the incumbent, so a loop larger than the cache keeps a
//! stable part of itself. A hit in probation promotes to protected, which demotes its oldest
//! entry to probation when it outgrows its share.
//!
//! With exclusive access (the simulator) hits reorder at once. Under the sharded L2's shared
//! hits, a hit only counts in the sketch and marks the entry, and the hand gives a marked
//! victim a second chance at the most recently used end of its segment. `Critical` entries
//! are passed over when they must be spared; expired entries go first where met.

use super::list::{List, linked_meta};
use super::sketch::FrequencySketch;
use super::{Entries, EntryInfo, HitCounter, Policy, Priority, SlotId};
use crate::sync::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Window,
    Probation,
    Protected,
    Absent,
}

/// Per-entry state (12 bytes).
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    touched: AtomicU8,
    hits: HitCounter,
    segment: Segment,
    critical: bool,
}

linked_meta!(Meta);

/// W-TinyLFU.
#[derive(Default)]
pub struct WTinyLfu {
    window: List,
    probation: List,
    protected: List,
    sketch: FrequencySketch,
}

impl WTinyLfu {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn list(&mut self, segment: Segment) -> Option<&mut List> {
        match segment {
            Segment::Window => Some(&mut self.window),
            Segment::Probation => Some(&mut self.probation),
            Segment::Protected => Some(&mut self.protected),
            Segment::Absent => None,
        }
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let segment = entries.meta(id).segment;
        if let Some(list) = self.list(segment) {
            list.remove(entries, id);
        }
        entries.meta_mut(id).segment = Segment::Absent;
    }

    fn push(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, segment: Segment) {
        entries.meta_mut(id).segment = segment;
        if let Some(list) = self.list(segment) {
            list.push_back(entries, id);
        }
    }

    fn total(&self) -> u64 {
        self.window.weight + self.probation.weight + self.protected.weight
    }

    /// Keeps protected within 80 % of the main region by demoting its oldest entries.
    fn rebalance(&mut self, entries: &mut impl Entries<Meta>) {
        while self.protected.weight * 5 > (self.protected.weight + self.probation.weight) * 4 {
            let Some(oldest) = self.protected.front else {
                break;
            };
            self.unlink(entries, oldest);
            self.push(entries, oldest, Segment::Probation);
        }
    }

    /// A reordering hit: what `on_access` does, and what a marked entry gets from the hand.
    fn promote(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        match entries.meta(id).segment {
            Segment::Window => {
                self.unlink(entries, id);
                self.push(entries, id, Segment::Window);
            }
            Segment::Probation | Segment::Protected => {
                self.unlink(entries, id);
                self.push(entries, id, Segment::Protected);
                self.rebalance(entries);
            }
            Segment::Absent => {}
        }
    }

    /// The main region's next victim: probation's oldest, else protected's.
    fn main_victim(&self) -> Option<SlotId> {
        self.probation.front.or(self.protected.front)
    }
}

impl Policy for WTinyLfu {
    type Meta = Meta;

    fn new_meta(&self) -> Meta {
        Meta {
            prev: 0,
            next: 0,
            touched: AtomicU8::new(0),
            hits: HitCounter::new(),
            segment: Segment::Absent,
            critical: false,
        }
    }

    #[inline]
    fn on_hit(&self, meta: &Meta, hash: u64) {
        self.sketch.increment(hash);
        // Relaxed: a hint for the hand; no store once set.
        if meta.touched.load(Ordering::Relaxed) == 0 {
            meta.touched.store(1, Ordering::Relaxed);
        }
    }

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.sketch.increment(entries.hash(id));
        self.promote(entries, id);
    }

    #[inline]
    fn hit_counter(meta: &Meta) -> &HitCounter {
        &meta.hits
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        let resident = self.window.len + self.probation.len + self.protected.len + 1;
        self.sketch.maintain(resident);
        self.sketch.increment(info.hash);
        entries.meta_mut(id).critical = info.priority == Priority::Critical;
        self.push(entries, id, Segment::Window);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let segment = entries.meta(id).segment;
        if let Some(list) = self.list(segment) {
            list.weight = list.weight - old_weight + info.weight;
        }
        entries.meta_mut(id).critical = info.priority == Priority::Critical;
        self.on_access(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.unlink(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut steps = 4 * (self.window.len + self.probation.len + self.protected.len) + 4;
        while steps > 0 {
            steps -= 1;
            // Keep the window at its 1 %: its overflow moves to probation's newest end, where
            // the newest arrival is this eviction's candidate.
            let mut candidate = None;
            while self.window.weight * 100 > self.total() && self.window.len > 1 {
                let oldest = self.window.front.expect("not empty");
                self.unlink(entries, oldest);
                self.push(entries, oldest, Segment::Probation);
                candidate = Some(oldest);
            }
            let victim = self.main_victim().or(self.window.front)?;
            let chosen = match candidate {
                Some(c) if c != victim && !entries.is_expired(victim) => {
                    // Frequency decides; ties keep the incumbent.
                    let seen = |id| self.sketch.estimate(entries.hash(id));
                    if entries.is_expired(c) || seen(c) <= seen(victim) {
                        c
                    } else {
                        victim
                    }
                }
                _ => victim,
            };
            let meta = entries.meta(chosen);
            let expired = entries.is_expired(chosen);
            // Relaxed: exclusive access.
            if !expired && meta.touched.load(Ordering::Relaxed) != 0 {
                meta.touched.store(0, Ordering::Relaxed);
                self.promote(entries, chosen);
                continue;
            }
            let spared = spare_critical && meta.critical;
            if !expired && (spared || entries.used_elsewhere(chosen)) {
                self.promote(entries, chosen);
                continue;
            }
            self.unlink(entries, chosen);
            return Some(chosen);
        }
        None
    }

    fn clear(&mut self) {
        self.window = List::default();
        self.probation = List::default();
        self.protected = List::default();
        self.sketch.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.sketch.heap_bytes()
    }
}
