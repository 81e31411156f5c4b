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
use alloc::vec::Vec;

use hashbrown::HashTable;

use super::{EntryInfo, Policy, SlotId};
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

/// Per-entry state, indexed by slot id.
struct Meta {
    freq: AtomicU8,
    queue: Queue,
    prev: SlotId,
    next: SlotId,
    weight: u64,
}

/// A circular doubly-linked list through [`Meta`], identified by its head (the oldest entry,
/// which is also where a CLOCK hand points).
#[derive(Default, Clone, Copy)]
struct Ring {
    head: Option<SlotId>,
    weight: u64,
    len: usize,
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
    meta: Vec<Meta>,
    probation: Ring,
    main: Ring,
    ghost: Ghost,
}

impl ProbationClock {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn link_tail(meta: &mut [Meta], ring: &mut Ring, id: SlotId) {
        let weight = meta[id as usize].weight;
        match ring.head {
            None => {
                meta[id as usize].prev = id;
                meta[id as usize].next = id;
                ring.head = Some(id);
            }
            Some(head) => {
                let tail = meta[head as usize].prev;
                meta[id as usize].prev = tail;
                meta[id as usize].next = head;
                meta[tail as usize].next = id;
                meta[head as usize].prev = id;
            }
        }
        ring.weight += weight;
        ring.len += 1;
    }

    fn unlink(meta: &mut [Meta], ring: &mut Ring, id: SlotId) {
        let Meta {
            prev, next, weight, ..
        } = meta[id as usize];
        if next == id {
            ring.head = None;
        } else {
            meta[prev as usize].next = next;
            meta[next as usize].prev = prev;
            if ring.head == Some(id) {
                ring.head = Some(next);
            }
        }
        ring.weight -= weight;
        ring.len -= 1;
        meta[id as usize].queue = Queue::Absent;
    }

    fn ring_of(&mut self, queue: Queue) -> Option<&mut Ring> {
        match queue {
            Queue::Probation => Some(&mut self.probation),
            Queue::Main => Some(&mut self.main),
            Queue::Absent => None,
        }
    }

    fn forget(&mut self, id: SlotId) {
        let queue = self.meta[id as usize].queue;
        let mut ring = match self.ring_of(queue) {
            Some(ring) => *ring,
            None => return,
        };
        Self::unlink(&mut self.meta, &mut ring, id);
        *self.ring_of(queue).expect("queue was present") = ring;
    }

    fn bump(freq: &AtomicU8) {
        // Relaxed: a use counter is a hint; a lost increment between racing hits is harmless.
        let f = freq.load(Ordering::Relaxed);
        if f < MAX_FREQ {
            freq.store(f + 1, Ordering::Relaxed);
        }
    }
}

impl Policy for ProbationClock {
    #[inline]
    fn on_hit(&self, id: SlotId) {
        Self::bump(&self.meta[id as usize].freq);
    }

    fn on_insert(&mut self, id: SlotId, info: EntryInfo) {
        let index = id as usize;
        if index >= self.meta.len() {
            self.meta.resize_with(index + 1, || Meta {
                freq: AtomicU8::new(0),
                queue: Queue::Absent,
                prev: 0,
                next: 0,
                weight: 0,
            });
        }
        debug_assert_eq!(
            self.meta[index].queue,
            Queue::Absent,
            "slot {id} inserted twice"
        );
        let meta = &mut self.meta[index];
        meta.freq = AtomicU8::new(0);
        meta.weight = info.weight;
        if self.ghost.contains(info.hash) {
            meta.queue = Queue::Main;
            Self::link_tail(&mut self.meta, &mut self.main, id);
        } else {
            meta.queue = Queue::Probation;
            Self::link_tail(&mut self.meta, &mut self.probation, id);
        }
    }

    fn on_replace(&mut self, id: SlotId, old_weight: u64, info: EntryInfo) {
        let queue = self.meta[id as usize].queue;
        self.meta[id as usize].weight = info.weight;
        if let Some(ring) = self.ring_of(queue) {
            ring.weight = ring.weight - old_weight + info.weight;
        }
        Self::bump(&self.meta[id as usize].freq);
    }

    fn on_remove(&mut self, id: SlotId) {
        self.forget(id);
    }

    fn evict(&mut self, hash_of: &dyn Fn(SlotId) -> u64) -> Option<SlotId> {
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
                Self::unlink(&mut self.meta, &mut self.probation, id);
                let meta = &mut self.meta[id as usize];
                // Relaxed: exclusive access (no hit runs during eviction).
                if meta.freq.load(Ordering::Relaxed) > 0 {
                    // Used while on probation: promote to the main queue, counting afresh.
                    meta.freq.store(0, Ordering::Relaxed);
                    meta.queue = Queue::Main;
                    Self::link_tail(&mut self.meta, &mut self.main, id);
                    continue;
                }
                let capacity = self.main.len + self.probation.len + 1;
                self.ghost.insert(hash_of(id), capacity);
                return Some(id);
            }
            let id = self.main.head.expect("checked above");
            let freq = &self.meta[id as usize].freq;
            // Relaxed: exclusive access, as above.
            let f = freq.load(Ordering::Relaxed);
            if f > 0 {
                freq.store(f - 1, Ordering::Relaxed);
                self.main.head = Some(self.meta[id as usize].next);
                continue;
            }
            Self::unlink(&mut self.meta, &mut self.main, id);
            return Some(id);
        }
    }

    fn clear(&mut self) {
        self.meta.clear();
        self.probation = Ring::default();
        self.main = Ring::default();
        self.ghost.clear();
    }
}
