//! The default L2 policy: a probationary FIFO in front of a CLOCK, with a ghost set.
//!
//! This is the S3-FIFO family (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP 2023) with the main queue run as a CLOCK of 2-bit counters:
//!
//! - A new key enters the **probation** FIFO, unless its hash is in the **ghost** set (it was
//!   recently evicted from probation), in which case it goes straight to the main CLOCK.
//! - Hits bump a 2-bit counter (saturating at 3) with one relaxed atomic store, under the
//!   shard's read lock; nothing moves on a hit.
//! - While probation holds at least a tenth of the shard's weight (or the main queue is
//!   empty), the victim comes from its head: an entry used while on probation moves to the
//!   main queue, an unused one is evicted and its hash remembered in the ghost set.
//! - Otherwise the main CLOCK hand sweeps: a counter above zero is decremented and the hand
//!   moves on (a second chance per unit of counted use); an entry at zero is evicted.
//!
//! One-hit wonders and scans therefore pass through probation without flushing the main
//! queue, and a key that comes back soon after a probation eviction is admitted to the main
//! queue directly.

use alloc::collections::VecDeque;

use hashbrown::HashTable;

use super::{Entries, EntryInfo, Policy, SlotId};
use crate::sync::{AtomicU8, Ordering};

/// The largest value of a use counter (2 bits).
const MAX_FREQ: u8 = 3;
/// Probation is the victim source while it holds at least `1 / PROBATION_SHARE` of the weight.
const PROBATION_SHARE: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Probation,
    Main,
    Absent,
}

/// Per-entry state, kept in the entry's slot (12 bytes).
pub struct Meta {
    freq: AtomicU8,
    queue: Queue,
    prev: SlotId,
    next: SlotId,
}

/// A circular doubly-linked list through the entries' [`Meta`], identified by its head (the
/// oldest entry, which is also where a CLOCK hand points).
#[derive(Default, Clone, Copy)]
struct Ring {
    head: Option<SlotId>,
    weight: u64,
    len: usize,
}

impl Ring {
    fn link_tail(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        match self.head {
            None => {
                let m = entries.meta_mut(id);
                m.prev = id;
                m.next = id;
                self.head = Some(id);
            }
            Some(head) => {
                let tail = entries.meta(head).prev;
                let m = entries.meta_mut(id);
                m.prev = tail;
                m.next = head;
                entries.meta_mut(tail).next = id;
                entries.meta_mut(head).prev = id;
            }
        }
        self.weight += entries.weight(id);
        self.len += 1;
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let (prev, next) = {
            let m = entries.meta(id);
            (m.prev, m.next)
        };
        if next == id {
            self.head = None;
        } else {
            entries.meta_mut(prev).next = next;
            entries.meta_mut(next).prev = prev;
            if self.head == Some(id) {
                self.head = Some(next);
            }
        }
        self.weight -= entries.weight(id);
        self.len -= 1;
        entries.meta_mut(id).queue = Queue::Absent;
    }
}

/// Hashes of keys recently evicted from probation, oldest first.
#[derive(Default)]
struct Ghost {
    order: VecDeque<u64>,
    members: HashTable<u64>,
}

impl Ghost {
    fn contains(&self, hash: u64) -> bool {
        self.members.find(hash, |&h| h == hash).is_some()
    }

    fn insert(&mut self, hash: u64, capacity: usize) {
        if capacity == 0 || self.contains(hash) {
            return;
        }
        self.order.push_back(hash);
        self.members.insert_unique(hash, hash, |&h| h);
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front()
                && let Ok(entry) = self.members.find_entry(old, |&h| h == old)
            {
                entry.remove();
            }
        }
    }

    fn clear(&mut self) {
        self.order.clear();
        self.members.clear();
    }
}

/// The default policy: new keys wait in a probationary FIFO; keys used while there, or seen
/// again soon after being evicted from it (a ghost set of hashes remembers them), move to a
/// CLOCK of 2-bit use counters. One-hit wonders and scans pass through probation without
/// flushing the CLOCK (Yang et al., SOSP 2023, "FIFO queues are all you need for cache
/// eviction").
#[derive(Default)]
pub struct ProbationClock {
    probation: Ring,
    main: Ring,
    ghost: Ghost,
}

impl ProbationClock {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn ring(&mut self, queue: Queue) -> Option<&mut Ring> {
        match queue {
            Queue::Probation => Some(&mut self.probation),
            Queue::Main => Some(&mut self.main),
            Queue::Absent => None,
        }
    }
}

impl Policy for ProbationClock {
    type Meta = Meta;

    fn new_meta(&self) -> Meta {
        Meta {
            freq: AtomicU8::new(0),
            queue: Queue::Absent,
            prev: 0,
            next: 0,
        }
    }

    #[inline]
    fn on_hit(meta: &Meta) {
        // Relaxed: a use counter is a hint; a lost increment between racing hits is harmless.
        let f = meta.freq.load(Ordering::Relaxed);
        if f < MAX_FREQ {
            meta.freq.store(f + 1, Ordering::Relaxed);
        }
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        debug_assert_eq!(
            entries.meta(id).queue,
            Queue::Absent,
            "slot {id} inserted twice"
        );
        if self.ghost.contains(info.hash) {
            entries.meta_mut(id).queue = Queue::Main;
            self.main.link_tail(entries, id);
        } else {
            entries.meta_mut(id).queue = Queue::Probation;
            self.probation.link_tail(entries, id);
        }
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let queue = entries.meta(id).queue;
        if let Some(ring) = self.ring(queue) {
            ring.weight = ring.weight - old_weight + info.weight;
        }
        Self::on_hit(entries.meta(id));
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let queue = entries.meta(id).queue;
        if let Some(ring) = self.ring(queue) {
            ring.unlink(entries, id);
        }
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>) -> Option<SlotId> {
        loop {
            let total = self.probation.weight + self.main.weight;
            let from_probation = match (self.probation.head, self.main.head) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(_)) => self.probation.weight * PROBATION_SHARE >= total,
            };
            if from_probation {
                let id = self.probation.head.expect("checked above");
                self.probation.unlink(entries, id);
                let meta = entries.meta_mut(id);
                // Relaxed: exclusive access (no hit runs during eviction).
                if meta.freq.load(Ordering::Relaxed) > 0 {
                    // Used while on probation: promote to the main queue, counting afresh.
                    meta.freq.store(0, Ordering::Relaxed);
                    meta.queue = Queue::Main;
                    self.main.link_tail(entries, id);
                    continue;
                }
                let capacity = self.main.len + self.probation.len + 1;
                self.ghost.insert(entries.hash(id), capacity);
                return Some(id);
            }
            let id = self.main.head.expect("checked above");
            let freq = &entries.meta(id).freq;
            // Relaxed: exclusive access, as above.
            let f = freq.load(Ordering::Relaxed);
            if f > 0 {
                freq.store(f - 1, Ordering::Relaxed);
                self.main.head = Some(entries.meta(id).next);
                continue;
            }
            self.main.unlink(entries, id);
            return Some(id);
        }
    }

    fn clear(&mut self) {
        self.probation = Ring::default();
        self.main = Ring::default();
        self.ghost.clear();
    }
}
