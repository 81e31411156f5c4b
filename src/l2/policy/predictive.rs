//! The source design's predictive policy: each entry is scored from its frequency, recency,
//! size and priority by a linear model learned online, and the lowest-scoring of a sample of
//! entries is evicted (sampled eviction scored by a learned model, in the spirit of
//! Song et al., "Learning Relaxed Belady for Content Distribution Network Caching",
//! NSDI 2020, with a logistic model small enough for a cache shard).
//!
//! The model estimates the probability that an entry is used again soon, from
//! `ln(1 + uses)`, `ln(1 + age)` (logical time since its last use), `ln(weight)`, its
//! priority and a bias. It learns by stochastic gradient descent from outcomes it observes:
//! a hit is a positive example (with the features the entry had just before it); an evicted
//! entry's features are remembered in a ghost, and a request for it while it is still there
//! is a positive example (an eviction that should not have happened), while its falling out
//! of the ghost unrequested is a negative one.
//!
//! Eviction samples `SAMPLE` entries from a hand moving along the entries and evicts the one
//! with the lowest score (expired entries at once; `Critical` ones passed over when they must
//! be spared). Hits update the entry's use count and recency and teach the model as the
//! policy is told of them; an entry used in a way it was not told of is passed over once.

use alloc::collections::VecDeque;

use hashbrown::HashTable;

use super::list::{List, linked_meta};
use super::{Entries, EntryInfo, Policy, Priority, SlotId};

/// Entries compared per eviction.
const SAMPLE: usize = 8;
/// The learning rate.
const RATE: f32 = 0.02;
const FEATURES: usize = 5;

/// Per-entry state (20 bytes).
#[derive(Default)]
pub struct Meta {
    prev: SlotId,
    next: SlotId,
    /// Logical time of the last use.
    last: usize,
    uses: u8,
    priority: Priority,
}

linked_meta!(Meta);

/// An evicted entry remembered for learning: its hash, features and when it was evicted.
struct Ghost {
    hash: u64,
    features: [f32; FEATURES],
}

/// The predictive policy.
pub struct Predictive {
    ring: List,
    /// Logical time: one tick per insertion or counted use.
    now: usize,
    weights: [f32; FEATURES],
    ghosts: HashTable<Ghost>,
    ghost_order: VecDeque<u64>,
}

impl Default for Predictive {
    fn default() -> Self {
        Self {
            ring: List::default(),
            now: 0,
            // A start that already prefers frequent, recent, light, important entries.
            weights: [0.0, 1.0, -0.5, -0.1, 1.0],
            ghosts: HashTable::new(),
            ghost_order: VecDeque::new(),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm_exp(-x))
}

/// `e^x` without `std` (a short range reduction and series; the model needs little precision).
fn libm_exp(x: f32) -> f32 {
    let x = x.clamp(-30.0, 30.0);
    // e^x = 2^(x / ln 2) = 2^n * e^r with |r| <= ln 2 / 2.
    // Rounded to the nearest integer without `std` (`as` truncates towards zero).
    let t = x * core::f32::consts::LOG2_E;
    let n = if t >= 0.0 {
        (t + 0.5) as i32
    } else {
        (t - 0.5) as i32
    };
    let r = x - n as f32 * core::f32::consts::LN_2;
    let series = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r / 120.0))));
    series * f32::from_bits(((n + 127) as u32) << 23)
}

/// `ln(1 + x)` for `x >= 0`, coarse (the position of the highest bit plus a linear
/// correction): features need only be monotonic and compressive.
fn ln1p(x: f32) -> f32 {
    let y = 1.0 + x.max(0.0);
    let bits = y.to_bits();
    let exponent = ((bits >> 23) & 0xFF) as f32 - 127.0;
    let mantissa = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000) - 1.0;
    (exponent + mantissa) * core::f32::consts::LN_2
}

impl Predictive {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> usize {
        self.now = self.now.wrapping_add(1);
        self.now
    }

    fn features(&self, entries: &impl Entries<Meta>, id: SlotId) -> [f32; FEATURES] {
        let meta = entries.meta(id);
        let age = self.now.wrapping_sub(meta.last);
        [
            1.0,
            ln1p(f32::from(meta.uses)),
            ln1p(age as f32),
            ln1p(entries.weight(id) as f32),
            f32::from(meta.priority as u8) / 3.0,
        ]
    }

    fn score(&self, features: &[f32; FEATURES]) -> f32 {
        self.weights.iter().zip(features).map(|(w, x)| w * x).sum()
    }

    /// One step of logistic regression towards `label` (1: used again, 0: not).
    fn learn(&mut self, features: &[f32; FEATURES], label: f32) {
        let error = label - sigmoid(self.score(features));
        for (w, x) in self.weights.iter_mut().zip(features) {
            *w += RATE * error * x;
        }
    }

    fn touch(&self, meta: &mut Meta) {
        meta.uses = meta.uses.saturating_add(1);
        meta.last = self.now;
    }

    /// Remembers an evicted entry, forgetting (as negative examples) the oldest ghosts beyond
    /// the resident count.
    fn remember(&mut self, hash: u64, features: [f32; FEATURES]) {
        if self.ghosts.find(hash, |g| g.hash == hash).is_none() {
            self.ghosts
                .insert_unique(hash, Ghost { hash, features }, |g| g.hash);
            self.ghost_order.push_back(hash);
        }
        while self.ghosts.len() > self.ring.len.max(1) {
            let Some(old) = self.ghost_order.pop_front() else {
                break;
            };
            if let Ok(entry) = self.ghosts.find_entry(old, |g| g.hash == old) {
                let (ghost, _) = entry.remove();
                self.learn(&ghost.features, 0.0);
            }
        }
        while self.ghost_order.len() > 2 * self.ring.len.max(1) {
            self.ghost_order.pop_front();
        }
    }
}

impl Policy for Predictive {
    type Meta = Meta;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        let features = self.features(entries, id);
        self.learn(&features, 1.0);
        self.tick();
        self.touch(entries.meta_mut(id));
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        if let Ok(entry) = self.ghosts.find_entry(info.hash, |g| g.hash == info.hash) {
            // Evicted, then wanted again while remembered: that eviction was a mistake.
            let (ghost, _) = entry.remove();
            self.learn(&ghost.features, 1.0);
        }
        let now = self.tick();
        let meta = entries.meta_mut(id);
        meta.priority = info.priority;
        meta.last = now;
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
        entries.meta_mut(id).priority = info.priority;
        self.on_access(entries, id);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.ring.remove(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        let mut best: Option<(f32, SlotId)> = None;
        let mut at = self.ring.front?;
        let mut examined = 0;
        // Look at up to SAMPLE candidates (more if Critical ones are passed over).
        for _ in 0..self.ring.len {
            if entries.is_expired(at) {
                best = Some((f32::NEG_INFINITY, at));
                break;
            }
            if !(spare_critical && entries.meta(at).priority == Priority::Critical) {
                let features = self.features(entries, at);
                let mut score = self.score(&features);
                if entries.referenced(at) {
                    score = f32::INFINITY; // used, and the policy was not told: not this time
                }
                if best.is_none_or(|(s, _)| score < s) {
                    best = Some((score, at));
                }
                examined += 1;
                if examined == SAMPLE {
                    break;
                }
            }
            at = List::next(entries, at);
        }
        let (_, victim) = best?;
        // The hand moves past the sample so the next eviction looks elsewhere.
        self.ring.front = Some(List::next(entries, at));
        let features = self.features(entries, victim);
        let hash = entries.hash(victim);
        self.ring.remove(entries, victim);
        if self.ring.len == 0 {
            self.ring.front = None;
        }
        self.remember(hash, features);
        Some(victim)
    }

    fn clear(&mut self) {
        let weights = self.weights;
        *self = Self::default();
        self.weights = weights;
    }

    fn heap_bytes(&self) -> usize {
        self.ghosts.capacity() * (core::mem::size_of::<Ghost>() + 1)
            + self.ghost_order.capacity() * core::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::{libm_exp, ln1p, sigmoid};

    #[test]
    fn the_small_math_is_close_enough_for_the_model() {
        for x in [-20.0f32, -3.5, -1.0, 0.0, 0.3, 1.0, 2.0, 7.25, 20.0] {
            let exact = (x as f64).exp();
            let relative = ((libm_exp(x) as f64 - exact) / exact).abs();
            assert!(relative < 1e-4, "exp({x}) off by {relative}");
        }
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-6);
        // ln(1 + x) within 0.09 (a coarse but monotonic, compressive feature).
        let mut last = -1.0;
        for x in [0.0f32, 0.5, 1.0, 3.0, 10.0, 1e3, 1e6] {
            let got = ln1p(x);
            assert!(
                ((got as f64) - (1.0 + x as f64).ln()).abs() < 0.09,
                "ln1p({x}) = {got}"
            );
            assert!(got > last);
            last = got;
        }
    }
}
