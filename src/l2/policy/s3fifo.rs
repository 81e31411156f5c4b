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
use super::{Entries, EntryInfo, Policy, SlotId};

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    freq: u8,
    max: u8,
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

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let meta = entries.meta_mut(id);
        meta.freq = (meta.freq + 1).min(meta.max);
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        let to_main = self.ghost.take(info.hash);
        let meta = entries.meta_mut(id);
        meta.max = info.priority.max_uses();
        meta.critical = info.is_critical();
        meta.in_main = to_main;
        self.list(to_main).push_back(entries, id);
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let in_main = entries.meta(id).in_main;
        let list = self.list(in_main);
        list.replaced(entries, old, id, old_weight, info.weight);
        let meta = entries.meta_mut(id);
        meta.max = info.priority.max_uses();
        meta.critical = info.is_critical();
        self.on_access(entries, id);
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
                let used = entries.meta(id).freq > 0 || entries.referenced(id);
                let meta = entries.meta_mut(id);
                if used || (spare_critical && meta.critical) {
                    meta.freq = 0;
                    meta.in_main = true;
                    self.main.push_back(entries, id);
                    continue;
                }
                let capacity = self.main.len.max(1);
                self.ghost.push(entries.hash(id), capacity);
                return Some(id);
            }
            let id = self.main.front.expect("checked above");
            let expired = entries.is_expired(id);
            let spared = spare_critical && entries.meta(id).critical;
            let f = entries.meta(id).freq;
            if !expired && (f > 0 || spared || entries.referenced(id)) {
                entries.meta_mut(id).freq = f.saturating_sub(1);
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
