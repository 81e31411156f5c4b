//! ARC, the Adaptive Replacement Cache (Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", FAST 2003): the source design's "Adaptive" policy.
//!
//! Two LRU lists of resident entries, `T1` (seen once lately) and `T2` (seen at least twice),
//! and two ghost lists of evicted keys' hashes, `B1` and `B2`. A miss whose hash is in `B1`
//! says `T1` was too small: the target size `p` of `T1` grows; one in `B2` shrinks it. The
//! victim comes from `T1` while it is larger than `p`, else from `T2`. The policy counts
//! entries; the cache size `c` it adapts to is the number of resident entries.
//!
//! A hit moves the entry to `T2`'s most recent end; a use the policy was not told of moves a
//! victim there instead of evicting it. `Critical`
//! entries are passed over when they must be spared; expired entries go first where met.

use alloc::collections::BTreeMap;

use hashbrown::HashTable;

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, SlotId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Side {
    T1,
    T2,
    #[default]
    Absent,
}

/// Per-entry state (12 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    side: Side,
    critical: bool,
}

linked_meta!(Meta);

/// A ghost list: hashes in LRU order, with removal from anywhere.
#[derive(Default)]
struct GhostList {
    /// (hash, sequence number) by hash.
    members: HashTable<(u64, u64)>,
    /// hash by sequence number: the smallest is the least recent.
    order: BTreeMap<u64, u64>,
    next: u64,
}

impl GhostList {
    fn len(&self) -> usize {
        self.members.len()
    }

    fn push(&mut self, hash: u64) {
        self.remove(hash);
        let seq = self.next;
        self.next += 1;
        self.members.insert_unique(hash, (hash, seq), |&(h, _)| h);
        self.order.insert(seq, hash);
    }

    fn remove(&mut self, hash: u64) -> bool {
        match self.members.find_entry(hash, |&(h, _)| h == hash) {
            Ok(entry) => {
                let ((_, seq), _) = entry.remove();
                self.order.remove(&seq);
                true
            }
            Err(_) => false,
        }
    }

    fn pop_lru(&mut self) {
        if let Some((_, hash)) = self.order.pop_first()
            && let Ok(entry) = self.members.find_entry(hash, |&(h, _)| h == hash)
        {
            entry.remove();
        }
    }
}

/// ARC (Megiddo & Modha's Adaptive Replacement Cache). Named `ArcPolicy` so that it never
/// shadows `std::sync::Arc`.
#[derive(Default)]
pub struct ArcPolicy {
    t1: List,
    t2: List,
    b1: GhostList,
    b2: GhostList,
    /// Target size of `T1`, in entries.
    p: usize,
    /// Whether the last miss was found in `B2` (ARC's tie-break in `REPLACE`).
    last_miss_in_b2: bool,
}

impl ArcPolicy {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn resident(&self) -> usize {
        self.t1.len + self.t2.len
    }

    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        match entries.meta(id).side {
            Side::T1 => self.t1.remove(entries, id),
            Side::T2 => self.t2.remove(entries, id),
            Side::Absent => {}
        }
        entries.meta_mut(id).side = Side::Absent;
    }

    fn push(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, side: Side) {
        entries.meta_mut(id).side = side;
        match side {
            Side::T1 => self.t1.push_back(entries, id),
            Side::T2 => self.t2.push_back(entries, id),
            Side::Absent => {}
        }
    }

    fn promote(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        if entries.meta(id).side != Side::Absent {
            self.unlink(entries, id);
            self.push(entries, id, Side::T2);
        }
    }
}

impl Policy for ArcPolicy {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.promote(entries, id);
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        entries.meta_mut(id).critical = info.is_critical();
        let c = self.resident().max(1);
        let (b1, b2) = (self.b1.len(), self.b2.len());
        if self.b1.remove(info.hash) {
            self.p = (self.p + (b2 / b1.max(1)).max(1)).min(c);
            self.last_miss_in_b2 = false;
            self.push(entries, id, Side::T2);
        } else if self.b2.remove(info.hash) {
            self.p = self.p.saturating_sub((b1 / b2.max(1)).max(1));
            self.last_miss_in_b2 = true;
            self.push(entries, id, Side::T2);
        } else {
            self.last_miss_in_b2 = false;
            // Keep the directory at most 2c: trim the ghosts of the side about to grow.
            if self.t1.len + self.b1.len() >= c && self.b1.len() > 0 {
                self.b1.pop_lru();
            } else if self.resident() + self.b1.len() + self.b2.len() >= 2 * c && self.b2.len() > 0
            {
                self.b2.pop_lru();
            }
            self.push(entries, id, Side::T1);
        }
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        let list = match entries.meta(id).side {
            Side::T1 => Some(&mut self.t1),
            Side::T2 => Some(&mut self.t2),
            Side::Absent => None,
        };
        if let Some(list) = list {
            list.replaced(entries, old, id, old_weight, info.weight);
        }
        entries.meta_mut(id).critical = info.is_critical();
        self.promote(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.unlink(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut steps = 3 * self.resident() + 2;
        while steps > 0 {
            steps -= 1;
            // ARC's REPLACE: from T1 while it exceeds its target, else from T2.
            let from_t1 = match (self.t1.front, self.t2.front) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(_)) => {
                    self.t1.len > self.p || (self.last_miss_in_b2 && self.t1.len == self.p)
                }
            };
            let id = if from_t1 {
                self.t1.front
            } else {
                self.t2.front
            }
            .expect("checked");
            let expired = entries.is_expired(id);
            let spared = spare_critical && entries.meta(id).critical;
            if !expired && (spared || entries.referenced(id)) {
                self.promote(entries, id);
                continue;
            }
            let hash = entries.hash(id);
            self.unlink(entries, id);
            if !expired {
                if from_t1 {
                    self.b1.push(hash);
                } else {
                    self.b2.push(hash);
                }
            }
            return Some(id);
        }
        None
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn heap_bytes(&self) -> usize {
        let ghost = |g: &GhostList| {
            g.members.capacity() * (core::mem::size_of::<(u64, u64)>() + 1)
                + g.order.len() * 3 * core::mem::size_of::<u64>()
        };
        ghost(&self.b1) + ghost(&self.b2)
    }
}
