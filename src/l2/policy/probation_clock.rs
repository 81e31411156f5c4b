//! A probationary FIFO in front of a CLOCK, with a ghost set: the S3-FIFO family (the default L2
//! policy until W-TinyLFU replaced it; it still wins OLTP and the web traces by about a point,
//! and loses loops and scans by up to thirty, see `benches/HIT_RATIO.md`).
//!
//! This is the S3-FIFO family (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP 2023) with the main queue run as a CLOCK of 2-bit counters:
//!
//! - A new key enters the **probation** FIFO, unless its hash is in the **ghost** set (it was
//!   recently evicted from probation), in which case it goes straight to the main CLOCK.
//! - Hits bump a 2-bit counter (saturating at 3); nothing moves on a hit.
//! - While probation holds at least a tenth of the shard's weight (or the main queue is
//!   empty), the victim comes from its head: an entry used while on probation moves to the
//!   main queue, an unused one is evicted and its hash remembered in the ghost set.
//! - Otherwise the main CLOCK hand sweeps: a counter above zero is decremented and the hand
//!   moves on (a second chance per unit of counted use); an entry at zero is evicted.
//!
//! One-hit wonders and scans therefore pass through probation without flushing the main
//! queue, and a key that comes back soon after a probation eviction is admitted to the main
//! queue directly.
//!
//! Before the hand evicts an entry whose counter is zero it asks whether the entry was used in
//! a way the policy was not told of ([`Entries::referenced`]: a lost hit record, a use of its
//! L1 copy); if so the entry gets one more round.
//!
//! Priorities: a counter saturates at [`Priority::max_uses`] (3 for `High` and `Critical`, 2
//! for `Medium`, 1 for `Low`). `Critical` entries live in a third ring, a CLOCK of its own,
//! which gives victims only when eviction may take Critical entries and probation and main
//! are both empty. Expired entries met by either hand are evicted at once, without a ghost
//! record and whatever their counter.

use alloc::vec::Vec;

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, Priority, SlotId};

/// Probation is the victim source while it holds at least `1 / PROBATION_SHARE` of the weight.
const PROBATION_SHARE: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Queue {
    Probation,
    Main,
    Critical,
    #[default]
    Absent,
}

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    freq: u8,
    queue: Queue,
    priority: Priority,
}

linked_meta!(Meta);

/// The three queues are intrusive rings ([`List`]) through the entries' [`Meta`], which also
/// records the queue an entry is on; the front of a ring is its oldest entry, which is also
/// where its CLOCK hand points.
type Ring = List;

/// Queue membership and the CLOCK hand over a [`Ring`].
trait Queued {
    fn link_tail(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, queue: Queue);
    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId);
    fn clock_step(
        &mut self,
        entries: &mut impl Entries<Meta>,
        l1_saves: &mut usize,
    ) -> Option<SlotId>;
}

impl Queued for Ring {
    fn link_tail(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, queue: Queue) {
        self.push_back(entries, id);
        entries.meta_mut(id).queue = queue;
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.remove(entries, id);
        entries.meta_mut(id).queue = Queue::Absent;
    }

    /// One CLOCK decision at the hand: evicts (unlinks and returns) the entry there if it is
    /// expired, or if its counter is zero and it was not used in L1 since the hand last asked
    /// (at most `l1_saves` such reprieves, so readers cannot keep the hand going round);
    /// otherwise decrements the counter and moves the hand on.
    fn clock_step(
        &mut self,
        entries: &mut impl Entries<Meta>,
        l1_saves: &mut usize,
    ) -> Option<SlotId> {
        let id = self.front?;
        if !entries.is_expired(id) {
            // Use in L1 since the hand last asked counts as a hit: the counter keeps its
            // value instead of dropping (so an entry hot in L1 keeps its standing in L2).
            let used_above = *l1_saves > 0 && entries.referenced(id);
            let f = entries.meta(id).freq;
            if used_above || f > 0 {
                if used_above {
                    *l1_saves -= 1;
                } else {
                    entries.meta_mut(id).freq = f - 1;
                }
                self.rotate(entries);
                return None;
            }
        }
        self.unlink(entries, id);
        Some(id)
    }
}

/// Fingerprints of keys recently evicted from probation: a direct-mapped table of 16-bit
/// fingerprints, one per bucket, sized to the number of entries the shard holds (rounded up to
/// a power of two). A new record overwrites whatever shared its bucket, so old records fade
/// at random rather than in strict FIFO order, as in S3-FIFO's own implementation notes; a
/// lookup or a record is one load or store in one array, where a queue and a hash set took
/// several cache misses. False positives need two hashes to agree on the bucket and on 15
/// more bits (and only cost a key a place in the main queue it had not earned). Two bytes
/// per entry.
#[derive(Default)]
struct Ghost {
    buckets: Vec<u16>,
}

impl Ghost {
    #[inline]
    fn bucket(&self, hash: u64) -> Option<usize> {
        (!self.buckets.is_empty()).then(|| hash as usize & (self.buckets.len() - 1))
    }

    #[inline]
    fn fingerprint(hash: u64) -> u16 {
        // The top bits (the bucket uses the low ones); never 0, which marks an empty bucket.
        (hash >> 48) as u16 | 1
    }

    /// Whether `hash` was recorded (and not overwritten since); forgets it if so.
    fn take(&mut self, hash: u64) -> bool {
        let Some(at) = self.bucket(hash) else {
            return false;
        };
        let found = self.buckets[at] == Self::fingerprint(hash);
        if found {
            self.buckets[at] = 0;
        }
        found
    }

    /// Records `hash`, first growing the table (and forgetting its records) if the shard now
    /// holds more than `entries` of buckets.
    fn insert(&mut self, hash: u64, entries: usize) {
        let wanted = entries.next_power_of_two();
        if self.buckets.len() < wanted {
            self.buckets.clear();
            self.buckets.resize(wanted, 0);
        }
        if let Some(at) = self.bucket(hash) {
            self.buckets[at] = Self::fingerprint(hash);
        }
    }

    fn clear(&mut self) {
        self.buckets = Vec::new();
    }

    fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * core::mem::size_of::<u16>()
    }
}

/// The S3-FIFO-family policy: new keys wait in a probationary FIFO; keys used while there, or seen
/// again soon after being evicted from it (a ghost set of hashes remembers them), move to a
/// CLOCK of 2-bit use counters. One-hit wonders and scans pass through probation without
/// flushing the CLOCK (Yang et al., SOSP 2023, "FIFO queues are all you need for cache
/// eviction"). `Critical` entries keep to a CLOCK of their own, evicted last.
#[derive(Default)]
pub struct ProbationClock {
    probation: Ring,
    main: Ring,
    critical: Ring,
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
            Queue::Critical => Some(&mut self.critical),
            Queue::Absent => None,
        }
    }

    /// Links a new (or re-prioritised) entry where its priority and the ghost set say.
    fn admit(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, hash: u64) {
        if entries.meta(id).priority == Priority::Critical {
            self.critical.link_tail(entries, id, Queue::Critical);
        } else if self.ghost.take(hash) {
            self.main.link_tail(entries, id, Queue::Main);
        } else {
            self.probation.link_tail(entries, id, Queue::Probation);
        }
    }
}

impl Policy for ProbationClock {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let meta = entries.meta_mut(id);
        meta.freq = (meta.freq + 1).min(meta.priority.max_uses());
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        debug_assert_eq!(
            entries.meta(id).queue,
            Queue::Absent,
            "slot {id} inserted twice"
        );
        entries.meta_mut(id).priority = info.priority;
        self.admit(entries, id, info.hash);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let queue = entries.meta(id).queue;
        if let Some(ring) = self.ring(queue) {
            ring.replaced(entries, old, id, old_weight, info.weight);
        }
        let was_critical = entries.meta(id).priority == Priority::Critical;
        entries.meta_mut(id).priority = info.priority;
        if was_critical != (info.is_critical()) {
            if let Some(ring) = self.ring(queue) {
                ring.unlink(entries, id);
            }
            if info.is_critical() {
                self.critical.link_tail(entries, id, Queue::Critical);
            } else {
                self.main.link_tail(entries, id, Queue::Main);
            }
        }
        // The counter may now be above the new priority's ceiling: clamp it.
        let meta = entries.meta_mut(id);
        meta.freq = (meta.freq + 1).min(info.priority.max_uses());
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let queue = entries.meta(id).queue;
        if let Some(ring) = self.ring(queue) {
            ring.unlink(entries, id);
        }
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut l1_saves = self.main.len + self.probation.len + self.critical.len;
        loop {
            let total = self.probation.weight + self.main.weight;
            let from_probation = match (self.probation.front, self.main.front) {
                (None, None) if spare_critical => return None,
                (None, None) => loop {
                    self.critical.front?;
                    if let Some(id) = self.critical.clock_step(entries, &mut l1_saves) {
                        return Some(id);
                    }
                },
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(_)) => self.probation.weight * PROBATION_SHARE >= total,
            };
            if from_probation {
                let id = self.probation.front.expect("checked above");
                self.probation.unlink(entries, id);
                if entries.is_expired(id) {
                    return Some(id);
                }
                if entries.meta(id).freq > 0 || entries.referenced(id) {
                    // Used while on probation: promote to the main queue, counting afresh.
                    entries.meta_mut(id).freq = 0;
                    self.main.link_tail(entries, id, Queue::Main);
                    continue;
                }
                let resident = self.main.len + self.probation.len + self.critical.len + 1;
                self.ghost.insert(entries.hash(id), resident);
                return Some(id);
            }
            if let Some(id) = self.main.clock_step(entries, &mut l1_saves) {
                return Some(id);
            }
        }
    }

    fn clear(&mut self) {
        self.probation = Ring::default();
        self.main = Ring::default();
        self.critical = Ring::default();
        self.ghost.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.ghost.heap_bytes()
    }
}
