//! The miniature W-TinyLFU caches a simulated window follows (see
//! [`WindowTuning`](super::WindowTuning)): one per window share, of a sample of the shard's
//! keys, by hash.

use alloc::vec::Vec;

use hashbrown::HashTable;

use super::rules::{ADMIT_MARGIN, ONE, protected_outgrows};
use super::sketch::FrequencySketch;

/// A node of a miniature cache (at most [`MAX_NODES`] of them).
type NodeId = u16;
/// "No node" in a miniature cache's links.
const NIL: NodeId = NodeId::MAX;
/// The most nodes a miniature cache holds: a shard sampled to at most 256 entries a miniature
/// never comes near it, but a weighted one of many tiny entries might for a while.
const MAX_NODES: usize = NIL as usize;
/// A node's weight is saturated below the two bits that hold its segment.
const MAX_WEIGHT: u32 = (1 << 30) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Window = 0,
    Probation = 1,
    Protected = 2,
}

/// A key of a miniature cache (16 bytes).
#[derive(Clone, Copy)]
struct Node {
    hash: u64,
    /// The weight (saturated at [`MAX_WEIGHT`]) and, in the top two bits, the segment.
    weight_and_segment: u32,
    prev: NodeId,
    next: NodeId,
}

impl Node {
    pub(super) fn new(hash: u64, weight: u64) -> Self {
        Self {
            hash,
            weight_and_segment: weight.min(u64::from(MAX_WEIGHT)) as u32,
            prev: NIL,
            next: NIL,
        }
    }

    fn weight(&self) -> u64 {
        u64::from(self.weight_and_segment & MAX_WEIGHT)
    }

    fn segment(&self) -> Segment {
        match self.weight_and_segment >> 30 {
            0 => Segment::Window,
            1 => Segment::Probation,
            _ => Segment::Protected,
        }
    }

    fn set_segment(&mut self, segment: Segment) {
        self.weight_and_segment = self.weight_and_segment & MAX_WEIGHT | (segment as u32) << 30;
    }
}

/// A segment's ends (oldest first) and weight.
#[derive(Clone, Copy)]
struct Ends {
    oldest: NodeId,
    newest: NodeId,
    weight: u64,
}

impl Ends {
    const EMPTY: Self = Self {
        oldest: NIL,
        newest: NIL,
        weight: 0,
    };
}

/// The hash a miniature cache's index files a key under (the key's hash, remixed: the sample
/// fixes some of its bits).
fn filed(hash: u64) -> u64 {
    (hash ^ (hash >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// One miniature W-TinyLFU cache of hashes at one window share: an LRU window, and a main
/// region of probation and protected (80 %) LRU segments, as the real policy, without
/// priorities, expiry or shared-access deferrals.
pub(super) struct MiniCache {
    share: u32,
    index: HashTable<NodeId>,
    nodes: Vec<Node>,
    /// Unused nodes, linked by `next`.
    free: NodeId,
    segments: [Ends; 3],
    /// Whether the cache has had to evict: from then on the window's overflow is judged
    /// against the main region's victim, never moved to probation unjudged (see `access`).
    full: bool,
}

impl MiniCache {
    pub(super) fn new(share: u32) -> Self {
        Self {
            share,
            index: HashTable::new(),
            nodes: Vec::new(),
            free: NIL,
            segments: [Ends::EMPTY; 3],
            full: false,
        }
    }

    /// Room for `entries` nodes, so that a cache within it allocates nothing more (its index
    /// has room for twice as many, so that the tombstones of removed keys can always be cleared
    /// in place: hashbrown grows a table instead when it is more than half full).
    pub(super) fn reserve(&mut self, entries: usize) {
        self.nodes.reserve(entries.saturating_sub(self.nodes.len()));
        let nodes = &self.nodes;
        self.index
            .reserve((2 * entries).saturating_sub(self.index.len()), |&id| {
                filed(nodes[id as usize].hash)
            });
    }

    /// Forgets every key, keeping the allocations.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.nodes.clear();
        self.free = NIL;
        self.segments = [Ends::EMPTY; 3];
        self.full = false;
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node>() + self.index.allocation_size()
    }

    fn weight(&self) -> u64 {
        self.segments.iter().map(|s| s.weight).sum()
    }

    fn segment(&mut self, segment: Segment) -> &mut Ends {
        &mut self.segments[segment as usize]
    }

    fn unlink(&mut self, id: NodeId) {
        let node = self.nodes[id as usize];
        let (prev, next, segment) = (node.prev, node.next, node.segment());
        match prev {
            NIL => self.segment(segment).oldest = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.segment(segment).newest = prev,
            next => self.nodes[next as usize].prev = prev,
        }
        self.segment(segment).weight -= node.weight();
    }

    /// Links `id` at the newest end of `segment`.
    fn push(&mut self, id: NodeId, segment: Segment) {
        let newest = self.segments[segment as usize].newest;
        let node = &mut self.nodes[id as usize];
        node.prev = newest;
        node.next = NIL;
        node.set_segment(segment);
        let weight = node.weight();
        match newest {
            NIL => self.segment(segment).oldest = id,
            newest => self.nodes[newest as usize].next = id,
        }
        let ends = self.segment(segment);
        ends.newest = id;
        ends.weight += weight;
    }

    fn evict(&mut self, id: NodeId) {
        self.unlink(id);
        let hash = self.nodes[id as usize].hash;
        if let Ok(entry) = self.index.find_entry(filed(hash), |&other| other == id) {
            entry.remove();
        }
        self.nodes[id as usize].next = self.free;
        self.free = id;
    }

    /// Keeps protected within 80 % of the main region.
    fn rebalance(&mut self) {
        loop {
            let protected = self.segments[Segment::Protected as usize];
            let probation = self.segments[Segment::Probation as usize].weight;
            if !protected_outgrows(protected.weight, probation) {
                return;
            }
            self.unlink(protected.oldest);
            self.push(protected.oldest, Segment::Probation);
        }
    }

    /// Reorders `hash` as a hit does, if the cache holds it; whether it does.
    fn touch(&mut self, hash: u64) -> bool {
        let nodes = &self.nodes;
        let Some(&id) = self
            .index
            .find(filed(hash), |&id| nodes[id as usize].hash == hash)
        else {
            return false;
        };
        let segment = self.nodes[id as usize].segment();
        self.unlink(id);
        if segment == Segment::Window {
            self.push(id, Segment::Window);
        } else {
            self.push(id, Segment::Protected);
            self.rebalance();
        }
        true
    }

    /// The oldest entry of the main region, else of the window.
    fn oldest(&self) -> Option<NodeId> {
        self.main_oldest()
            .or(Some(self.segments[Segment::Window as usize].oldest).filter(|&id| id != NIL))
    }

    /// One request for `hash` (of `weight`) in a cache of `capacity`; whether it hit. A miss
    /// takes the key in if it is `stored`.
    #[inline(always)]
    pub(super) fn access(
        &mut self,
        hash: u64,
        weight: u64,
        capacity: u64,
        sketch: &FrequencySketch,
        stored: bool,
    ) -> bool {
        if self.touch(hash) {
            return true;
        }
        if !stored || weight > capacity {
            return false;
        }
        if self.free == NIL && self.nodes.len() == MAX_NODES {
            // Out of node numbers (many tiny entries): make room the plain way.
            if let Some(oldest) = self.oldest() {
                self.evict(oldest);
            }
        }
        let node = Node::new(hash, weight);
        let id = match self.free {
            NIL => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
            id => {
                self.free = self.nodes[id as usize].next;
                self.nodes[id as usize] = node;
                id
            }
        };
        let nodes = &self.nodes;
        self.index
            .insert_unique(filed(hash), id, |&id| filed(nodes[id as usize].hash));
        self.push(id, Segment::Window);
        let target = capacity * u64::from(self.share) / u64::from(ONE);
        while self.weight() > capacity {
            self.full = true;
            let window = self.segments[Segment::Window as usize];
            // The newest entry is never the candidate, as in the real policy.
            let candidate =
                (window.weight > target && window.oldest != id).then_some(window.oldest);
            match (candidate, self.main_oldest()) {
                (Some(candidate), Some(victim)) => self.judge(candidate, victim, sketch),
                (None, Some(victim)) => self.evict(victim),
                (_, None) => self.evict(window.oldest),
            }
        }
        // The window's overflow beyond its share: while the cache fills, it moves to
        // probation; once full, it is judged against the main region's victim, the loser
        // leaving. (The capacity, the shard's sampled weight, wavers by a few entries. Each
        // rise, were the overflow let into probation unjudged, would let in a key the main
        // region need not have taken: the stable part of a loop churns away. Were it left in
        // the window instead, each rise would widen the window for good, and each fall would
        // take from the main region: every share drifts toward pure LRU.)
        loop {
            let window = self.segments[Segment::Window as usize];
            if window.weight <= target + weight || window.oldest == id {
                return false;
            }
            match (self.full, self.main_oldest()) {
                (true, Some(victim)) => self.judge(window.oldest, victim, sketch),
                _ => {
                    self.unlink(window.oldest);
                    self.push(window.oldest, Segment::Probation);
                }
            }
        }
    }

    /// The oldest entry of the main region (probation first).
    fn main_oldest(&self) -> Option<NodeId> {
        [Segment::Probation, Segment::Protected]
            .map(|s| self.segments[s as usize].oldest)
            .into_iter()
            .find(|&id| id != NIL)
    }

    /// TinyLFU's admission: the window's `candidate` enters probation and the main region's
    /// `victim` leaves if the candidate was seen more often (by a margin); else the candidate
    /// leaves.
    fn judge(&mut self, candidate: NodeId, victim: NodeId, sketch: &FrequencySketch) {
        let seen = |id: NodeId| u32::from(sketch.estimate(self.nodes[id as usize].hash));
        if seen(candidate) <= seen(victim) + ADMIT_MARGIN {
            self.evict(candidate);
        } else {
            self.unlink(candidate);
            self.push(candidate, Segment::Probation);
            self.evict(victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's hash (any bits: a miniature cache is not sampled).
    fn hash(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 17)
    }

    /// Replays `keys` through a miniature cache of `share` at the capacity `capacity(i)` for
    /// request `i`, counting each request in a sketch first, as the policy does; its hits.
    fn replay(share: u32, keys: &[u64], capacity: impl Fn(usize) -> u64) -> usize {
        let mut sketch = FrequencySketch::default();
        sketch.maintain(128);
        let mut mini = MiniCache::new(share);
        keys.iter()
            .enumerate()
            .filter(|&(i, &key)| {
                sketch.increment(hash(key));
                sketch.maintain(128);
                mini.access(hash(key), 1, capacity(i), &sketch, true)
            })
            .count()
    }

    /// A reference LRU of `capacity` keys: its hits on `keys`.
    fn lru_hits(keys: &[u64], capacity: usize) -> usize {
        let mut order: alloc::collections::VecDeque<u64> = Default::default();
        let mut hits = 0;
        for &key in keys {
            if let Some(at) = order.iter().position(|&k| k == key) {
                order.remove(at);
                hits += 1;
            } else if order.len() == capacity {
                order.pop_front();
            }
            order.push_back(key);
        }
        hits
    }

    /// Keys drawn from 0..300, skewed toward the low ones (a fixed pseudo-random sequence).
    fn skewed(requests: usize) -> Vec<u64> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..requests)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let a = state % 300;
                let b = (state >> 32) % 300;
                a.min(b)
            })
            .collect()
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_miniature_cache_of_a_whole_window_is_lru() {
        let keys = skewed(20_000);
        let hits = replay(ONE, &keys, |_| 100);
        assert_eq!(hits, lru_hits(&keys, 100));
        assert!(hits > 0 && hits < keys.len());
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_small_window_keeps_part_of_a_loop_even_when_the_capacity_wavers() {
        // A loop over 200 keys in a cache of 100: LRU never hits; TinyLFU's incumbents stay.
        let keys: Vec<u64> = (0..50).flat_map(|_| 0..200).collect();
        assert_eq!(replay(ONE, &keys, |_| 100), 0);
        let steady = replay(ONE / 100, &keys, |_| 100);
        assert!(steady > keys.len() / 3, "{steady} hits of {}", keys.len());
        // The capacity (the shard's sampled weight) rising by one twice and falling: a rise must
        // not let a key in unjudged, or the incumbents churn away.
        let wavering = replay(ONE / 100, &keys, |i| 100 + (i % 3) as u64);
        assert!(wavering > steady * 9 / 10, "{wavering} against {steady}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_window_keeps_its_share_when_the_capacity_wavers() {
        // The capacity (the shard's sampled weight) rising and falling by a few: the window
        // must stay near its share, not widen by each rise (every share would drift toward LRU).
        let keys = skewed(20_000);
        let capacity = |i: usize| 100 + ((i / 3) % 7) as u64;
        for share in [0, ONE / 100, ONE / 10] {
            let mut sketch = FrequencySketch::default();
            sketch.maintain(128);
            let mut mini = MiniCache::new(share);
            let mut widest = 0;
            for (i, &key) in keys.iter().enumerate() {
                sketch.increment(hash(key));
                sketch.maintain(128);
                if mini.access(hash(key), 1, capacity(i), &sketch, true) {
                    continue;
                }
                // (A hit changes nothing: the target as of the last miss holds.)
                let target = capacity(i) * u64::from(share) / u64::from(ONE);
                let window = mini.segments[Segment::Window as usize].weight;
                widest = widest.max(window.saturating_sub(target));
            }
            assert!(
                widest <= 1,
                "share {share}: {widest} beyond the window's target"
            );
        }
    }
}
