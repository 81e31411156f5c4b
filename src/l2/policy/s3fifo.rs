//! S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023), as
//! the paper describes it: a small FIFO `S` (a tenth of the weight), a main FIFO `M` with
//! reinsertion, and a ghost FIFO `G` of recently evicted keys' hashes as long as `M`.
//!
//! New keys enter `S` (or `M` if their hash is in `G`). Evicting from `S` moves an entry that
//! was hit while there to `M` and drops the others into `G`; evicting from `M` reinserts an
//! entry with a non-zero counter (decrementing it) and evicts one at zero. Counters saturate at
//! 3 (less for lower priorities). [`ProbationClock`](super::ProbationClock) (the default
//! policy before W-TinyLFU) is this design with a CLOCK for `M`, a compact approximate ghost
//! and the L1 feedback; this one keeps the paper's exact ghost so the simulator can compare
//! the two. `Critical` entries are spared, when asked, by passing over them.

use alloc::collections::VecDeque;

use hashbrown::HashTable;

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, HitCounter, Policy, Priority, SlotId};
use crate::sync::{AtomicU8, Ordering};

/// Per-entry state (12 bytes).
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    freq: AtomicU8,
    max: u8,
    hits: HitCounter,
    in_main: bool,
    critical: bool,
}

linked_meta!(Meta);

/// The ghost: hashes in FIFO order with a set for membership.
#[derive(Default)]
struct GhostQueue {
    order: VecDeque<u64>,
    members: HashTable<u64>,
}

impl GhostQueue {
    fn take(&mut self, hash: u64) -> bool {
        match self.members.find_entry(hash, |&h| h == hash) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    fn push(&mut self, hash: u64, capacity: usize) {
        if self.members.find(hash, |&h| h == hash).is_none() {
            self.order.push_back(hash);
            self.members.insert_unique(hash, hash, |&h| h);
        }
        while self.members.len() > capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Ok(entry) = self.members.find_entry(old, |&h| h == old) {
                entry.remove();
            }
        }
        // Hashes taken out of the set by a ghost hit stay in `order` until they reach the
        // front; keep that queue from growing without bound.
        while self.order.len() > 2 * capacity.max(1) {
            self.order.pop_front();
        }
    }
}

/// S3-FIFO with the paper's exact ghost.
#[derive(Default)]
pub struct S3Fifo {
    small: List,
    main: List,
    ghost: GhostQueue,
}

impl S3Fifo {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn list(&mut self, in_main: bool) -> &mut List {
        if in_main {
            &mut self.main
        } else {
            &mut self.small
        }
    }
}

impl Policy for S3Fifo {
    type Meta = Meta;

    fn new_meta(&self) -> Meta {
        Meta {
            prev: 0,
            next: 0,
            freq: AtomicU8::new(0),
            max: 3,
            hits: HitCounter::new(),
            in_main: false,
            critical: false,
        }
    }

    #[inline]
    fn on_hit(&self, meta: &Meta, _hash: u64) {
        // Relaxed: a use counter is a hint.
        let f = meta.freq.load(Ordering::Relaxed);
        if f < meta.max {
            meta.freq.store(f + 1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn hit_counter(meta: &Meta) -> &HitCounter {
        &meta.hits
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        let to_main = self.ghost.take(info.hash);
        let meta = entries.meta_mut(id);
        meta.max = info.priority.max_uses();
        meta.critical = info.priority == Priority::Critical;
        meta.in_main = to_main;
        self.list(to_main).push_back(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let in_main = entries.meta(id).in_main;
        let list = self.list(in_main);
        list.weight = list.weight - old_weight + info.weight;
        let meta = entries.meta_mut(id);
        meta.max = info.priority.max_uses();
        meta.critical = info.priority == Priority::Critical;
        self.on_hit(entries.meta(id), entries.hash(id));
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let in_main = entries.meta(id).in_main;
        self.list(in_main).remove(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut steps = 8 * (self.small.len + self.main.len) + 1;
        while steps > 0 {
            steps -= 1;
            let total = self.small.weight + self.main.weight;
            let from_small = match (self.small.front, self.main.front) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(_)) => self.small.weight * 10 >= total,
            };
            if from_small {
                let id = self.small.front.expect("checked above");
                self.small.remove(entries, id);
                if entries.is_expired(id) {
                    return Some(id);
                }
                let meta = entries.meta_mut(id);
                // Relaxed: exclusive access.
                let used = meta.freq.load(Ordering::Relaxed) > 0;
                if used || (spare_critical && meta.critical) {
                    meta.freq.store(0, Ordering::Relaxed);
                    meta.in_main = true;
                    self.main.push_back(entries, id);
                    continue;
                }
                let capacity = self.main.len.max(1);
                self.ghost.push(entries.hash(id), capacity);
                return Some(id);
            }
            let id = self.main.front.expect("checked above");
            let meta = entries.meta(id);
            // Relaxed: exclusive access.
            let f = meta.freq.load(Ordering::Relaxed);
            let expired = entries.is_expired(id);
            if !expired && (f > 0 || (spare_critical && meta.critical)) {
                meta.freq.store(f.saturating_sub(1), Ordering::Relaxed);
                self.main.remove(entries, id);
                self.main.push_back(entries, id);
                continue;
            }
            self.main.remove(entries, id);
            return Some(id);
        }
        None
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}
