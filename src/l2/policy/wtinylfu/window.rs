//! How W-TinyLFU's window is sized (documented on [`WindowTuning`]).

use alloc::vec::Vec;

use super::callers::Callers;
use super::evidence::{CHOICES, Decision, Evidence, SHARES, TableWindow, Tally, nearest};
use super::mini::MiniCache;
use super::rules::ONE;
use super::sketch::FrequencySketch;
use crate::policy::HitReports;
use crate::sync::Arc;

/// A shard of more entries than this simulates one key in `2^shift` (by hash), so that a
/// miniature cache holds at most this many entries, or a sixteenth of the shard's, up to
/// [`MAX_MINI_ENTRIES`] (a large shard's miniatures see more requests, so they decide sooner).
const MINI_ENTRIES: usize = 256;
/// A miniature cache holds at most a [`MINI_SHARE`]th of the shard's entries beyond
/// [`MINI_ENTRIES`].
const MINI_SHARE: usize = 16;
/// The most entries a miniature cache holds.
const MAX_MINI_ENTRIES: usize = 512;
/// The most keys ever skipped per one simulated: the sample takes hash bits 40 to 63.
const MAX_SHIFT: u32 = 23;
/// Simulated requests per epoch, per entry a miniature cache holds (at least
/// [`MIN_EPOCH_ENTRIES`] entries).
const EPOCH_PER_ENTRY: u64 = 2;
/// A climbing window's epoch: sampled requests per sampled entry (Caffeine samples ten
/// requests per entry of the cache).
const CLIMB_PER_ENTRY: u64 = 10;
/// A shard of fewer entries still has epochs of this many entries' requests: each epoch needs
/// some evidence, but a tiny shard (64 shards of a 2 000-entry cache) sees few requests, and
/// decides within a trace only with short epochs.
#[cfg(not(loom))]
const MIN_EPOCH_ENTRIES: u64 = 32;
/// Under loom, epochs of a request or two, so that a model of a few requests ends one.
#[cfg(loom)]
const MIN_EPOCH_ENTRIES: u64 = 1;

/// How the window of [`WTinyLfu`](super::WTinyLfu) is sized: its first share and whether it
/// adapts.
///
/// Two adaptations are offered. [`Adaptation::Climbing`] is Caffeine's hill climber on the
/// hit ratio of a sample of the keys: a sampled request costs it two counts. The default,
/// [`Adaptation::Simulated`], costs more per miss and reads higher on the shared traces (the
/// `wtinylfu_climber` and `wtinylfu` columns of `benches/HIT_RATIO.md`; the costs are in
/// `benches/results/NOTES.md`).
///
/// A simulated window follows **miniature simulations** (Waldspurger, Saemundsson, Ahmad &
/// Park, "Cache Modeling and Optimization using Miniature Simulations", USENIX ATC 2017; the
/// mini-simulation climber of Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache
/// Management", Middleware 2018). Beside the shard run six small W-TinyLFU caches of its
/// keys' hashes, identical but for the window's share: 0 (pure TinyLFU), 1 %, 10 %, 25 %, 50 %
/// and 100 % (pure LRU). Each sees the requests the shard sees, judged by the shard's own
/// frequency sketch, at the capacity the shard gives those keys. A shard of more than 256
/// entries feeds them one key in `2^k` by hash, so that each holds at most 256 entries, or a
/// sixteenth of the shard's up to 512 (spatial sampling: Waldspurger, Park, Garthwaite &
/// Ahmad, "Efficient MRC Construction with SHARDS", FAST 2015); their capacity is then the
/// weight of the sampled keys the shard holds, not `2^-k` of its weight, so a loop just
/// larger than the shard is just larger than them too.
///
/// The window moves toward the share whose miniature cache beats the one at the current
/// share by a clear lead, by at most half the shard at a time: a sign test on the requests
/// where exactly one of the two hit (a lead beyond three standard deviations; the evidence of
/// older epochs fades by an eighth an epoch), and a lead in each of the last three epochs (an
/// epoch is two simulated requests per entry a miniature cache holds, at least 64). The test
/// keeps short phases from moving the window, since a move costs the contents the old share
/// had built: a trace whose best share changes faster than that is served better by staying
/// put. The window starts small (1 %), where a wrong start costs least: a main region given
/// up to a loop is slow to win back.
///
/// The shards of one table pool this evidence: each adds its epoch's tallies to the table's,
/// whose epoch lasts as many shard epochs as it has shards, and the table moves every
/// shard's window at once. A shard of a 64-shard table sees a sixty-fourth of the requests;
/// deciding alone, it would wait 64 times as long for as much evidence, and 64 shards testing
/// apart would move on chance leads 64 times as often.
///
/// The miniature caches see every request for a sampled key: its misses as the shard stores
/// them, its hits (in L2 or on its L1 copy) because the policy asks readers to record those
/// ([`HitReports::Sampled`]) and the shard's writer replays them. Hits on other keys reach no
/// miniature, and cost their readers no record. Left out, L1's hits would favour every share
/// but the current one: the current share's miniature holds much what the real shard holds,
/// whose hot keys L1 serves, so it would lose their hits, while the others would never pay
/// for not holding them, and the window would swing on that bias. A record lost (a full ring)
/// is a request the miniatures miss.
///
/// A miniature cache that lacks a key the shard holds misses when the key is read. Whether it
/// then takes the key in follows the callers: it does if most of the shard's recent stores of
/// new keys followed a miss on the same key by the same caller (read-through; each store says
/// so: [`EntryInfo::follows_miss`](crate::policy::EntryInfo)), and not if most were blind
/// (a writer storing keys no reader asked for, beside readers that only `get`). Taking it in
/// there would credit the larger windows with keys they could never get back, and grow the
/// window until a pure LRU lets the writer flush what the readers read (one reader's hits fell
/// from 99.9 % to 18.6 % so, in `tests/adaptation.rs`).
///
/// What it costs: 16 bytes a node and a hash table of node numbers for each miniature cache
/// (about 23 to 50 KiB a shard of up to 4 096 entries, up to 99 KiB a larger one, allocated
/// when the shard is sized), and six lookups in those caches per simulated request, on the
/// shard's miss path and when a sampled hit is replayed. A table's shards meet under one
/// mutex once a shard epoch (at least 64 simulated requests), and read the table's decision,
/// one relaxed load, at each simulated request. A request for a key outside the sample costs
/// one test of its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTuning {
    /// The window's share at first, in 1/65 536ths of the shard's weight.
    pub initial: u32,
    /// How the share adapts, if it does.
    pub adaptation: Adaptation,
}

/// How W-TinyLFU's window share adapts to the workload (see [`WindowTuning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adaptation {
    /// It stays at its initial share.
    Fixed,
    /// It follows six miniature caches of a sample of the keys, at shares from 0 to 100 %.
    Simulated,
    /// It climbs the hit ratio of a sample of the keys (Caffeine's hill climber): each epoch
    /// it steps the way that raised the ratio, the steps shrinking while the ratio holds
    /// still and starting large again when it jumps. No miniature caches: a sampled request
    /// costs two counts.
    Climbing,
}

impl WindowTuning {
    /// The tuning of the default policy (measured on the shared traces; see
    /// `benches/HIT_RATIO.md`): 1 % at first, adapted by miniature simulations.
    pub const DEFAULT: Self = Self {
        initial: ONE / 100,
        adaptation: Adaptation::Simulated,
    };

    /// A window of a fixed share (in percent), never adapted: W-TinyLFU as first published.
    pub const fn fixed(percent: u32) -> Self {
        Self {
            initial: ONE / 100 * percent,
            adaptation: Adaptation::Fixed,
        }
    }

    /// A window starting at 1 % and moved by a hill climber ([`Adaptation::Climbing`]).
    pub const fn climbing() -> Self {
        Self {
            initial: ONE / 100,
            adaptation: Adaptation::Climbing,
        }
    }

    /// Whether the share adapts.
    pub const fn adaptive(&self) -> bool {
        !matches!(self.adaptation, Adaptation::Fixed)
    }

    /// Whether miniature caches size the window.
    const fn simulated(&self) -> bool {
        matches!(self.adaptation, Adaptation::Simulated)
    }
}

/// One miniature cache and what it did in the shard's current epoch, against the one at the
/// current share.
struct Mini {
    cache: MiniCache,
    tally: Tally,
}

/// Who decides the window's share: the shard alone, on its own evidence, or the table its
/// shard belongs to, on the evidence its shards pool.
enum Judge {
    Shard(Evidence),
    Table(Arc<TableWindow>),
}

/// What a simulated request was in the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// A hit on an entry the shard holds.
    Hit,
    /// A store of a key the shard did not hold (it is about to), after a miss on the key by
    /// the same caller or not ([`EntryInfo::follows_miss`](crate::policy::EntryInfo)).
    Arriving { after_miss: bool },
    /// A store replacing the value of a key the shard holds.
    Replacing,
}

/// The window's share, and the miniature caches that move it.
pub(super) struct WindowSizer {
    tuning: WindowTuning,
    /// The decision the shard follows: its window's share, and which decision that is.
    decision: Decision,
    judge: Judge,
    /// Empty unless the window adapts.
    minis: Vec<Mini>,
    /// The miniature cache whose share the window follows (at first the nearest to
    /// `initial`).
    current: usize,
    /// One key in `2^shift` is simulated.
    shift: u32,
    /// `2^shift - 1`: the bits a sampled key's hash has clear (see `sampled`).
    sample_mask: u64,
    /// Simulated requests this epoch.
    requests: u64,
    /// Of them, hits in the shard itself (counted for a climbing window).
    hits: u64,
    /// Simulated requests in all.
    simulated: u64,
    /// The most entries [`resample`](Self::resample) was asked about.
    most_entries: usize,
    /// The sample changed where the shard's entries could not be counted again (a
    /// reservation): the next [`resample`](Self::resample) asks the caller to.
    recount: bool,
    /// The entries each miniature cache has room for, once the shard is sized (0: grows as
    /// needed). Their capacity stays within it, so a sized shard never allocates for them.
    room: u64,
    /// The weight of the sampled keys the shard's window and main region hold: the miniature
    /// caches' capacity. (Not the shard's weight over `2^shift`: a loop just larger than the
    /// shard may have fewer sampled keys than that, and would then fit in every miniature
    /// cache.)
    sampled_weight: u64,
    /// Whether the shard's callers store what they miss (see [`Callers`]).
    callers: Callers,
}

impl WindowSizer {
    pub(super) fn new(tuning: WindowTuning) -> Self {
        let initial = tuning.initial.min(ONE);
        let evidence = match tuning.adaptation {
            Adaptation::Climbing => Evidence::climbing(initial),
            _ => Evidence::new(initial),
        };
        Self {
            tuning,
            decision: evidence.decision(),
            judge: Judge::Shard(evidence),
            current: nearest(initial),
            minis: Vec::new(),
            shift: 0,
            sample_mask: 0,
            requests: 0,
            hits: 0,
            simulated: 0,
            most_entries: 0,
            recount: false,
            room: 0,
            sampled_weight: 0,
            callers: Callers::default(),
        }
    }

    pub(super) fn tuning(&self) -> WindowTuning {
        self.tuning
    }

    /// The window's share now.
    pub(super) fn share(&self) -> u32 {
        self.decision.share
    }

    /// Pools this shard's evidence with that of `first`, the first shard of the same table
    /// (which pools with no other yet, or with the table's): from now on the table decides
    /// both windows' share. Called when the table is built, before either shard is used.
    pub(super) fn join(&mut self, first: &mut Self) {
        if !self.tuning.adaptive() || !first.tuning.adaptive() {
            return;
        }
        let table = match &first.judge {
            Judge::Table(table) => Arc::clone(table),
            Judge::Shard(evidence) => {
                let table = TableWindow::new(evidence.clone());
                first.judge = Judge::Table(Arc::clone(&table));
                table
            }
        };
        let decision = table.join();
        self.judge = Judge::Table(table);
        self.follow(decision);
    }

    /// Follows `decision` if it is not the one followed already: a new share, and the
    /// shard's epoch so far (tallied against the old one) forgotten.
    fn follow(&mut self, decision: Decision) {
        if decision != self.decision {
            self.decision = decision;
            self.current = nearest(decision.share);
            self.requests = 0;
            self.hits = 0;
            for mini in &mut self.minis {
                mini.tally = Tally::default();
            }
        }
    }

    /// The generation of the decision the shard follows (see
    /// [`WTinyLfu::window_decisions`](super::WTinyLfu::window_decisions)).
    pub(super) fn decisions(&self) -> u32 {
        self.decision.generation
    }

    /// Requests simulated so far (replayed shared hits included).
    pub(super) fn simulated(&self) -> u64 {
        self.simulated
    }

    /// Creates the miniature caches (empty), the first time the shard is sized or used.
    fn start(&mut self) {
        if self.tuning.simulated() && self.minis.is_empty() {
            self.minis = SHARES
                .iter()
                .map(|&share| Mini {
                    cache: MiniCache::new(share),
                    tally: Tally::default(),
                })
                .collect();
        }
    }

    /// The sampling shift for a shard of `entries`: miniature caches of at most
    /// [`MINI_ENTRIES`].
    fn shift_for(entries: usize) -> u32 {
        let most = (entries / MINI_SHARE).clamp(MINI_ENTRIES, MAX_MINI_ENTRIES);
        let mut shift = 0;
        while entries >> shift > most && shift < MAX_SHIFT {
            shift += 1;
        }
        shift
    }

    /// The hits the miniature caches need to hear of: those on sampled keys (none for a fixed
    /// window).
    pub(super) fn hit_reports(&self) -> HitReports {
        if self.tuning.adaptive() {
            HitReports::Sampled {
                shift: self.shift as u8,
            }
        } else {
            HitReports::Nothing
        }
    }

    /// Whether a request for `hash` may reach the miniature caches (the sample only shrinks:
    /// a key outside it now stays outside).
    #[inline]
    pub(super) fn follows(&self, hash: u64) -> bool {
        self.tuning.adaptive() && self.sampled(hash)
    }

    #[inline]
    fn sampled(&self, hash: u64) -> bool {
        // Bits 40 and up: the shard takes bits 32 and up (few of them), the sketch and the
        // miniature caches' index mix every bit.
        (hash >> 40) & self.sample_mask == 0
    }

    /// Sizes the miniature caches for a shard of up to `entries` entries of weight one, so
    /// that a shard within its reservation never allocates for them (a cache on a caller's
    /// region uses no global allocator once built).
    pub(super) fn reserve(&mut self, entries: usize) {
        if !self.tuning.adaptive() {
            return;
        }
        self.start();
        // The shard may hold entries already: they are counted again at its next request.
        self.recount = self.resample(entries);
        // Sampling by hash gives a miniature cache its share of keys only on average: room for
        // a quarter more and a few (over four standard deviations beyond the mean, for the
        // binomial count of sampled keys), and one admitted before an eviction.
        let expected = entries >> self.shift;
        let room = expected + expected / 4 + 16;
        self.room = room as u64 - 1;
        for mini in &mut self.minis {
            mini.cache.reserve(room);
        }
    }

    /// Samples fewer keys if a shard of `entries` needs it (never more than before): the
    /// miniature caches start afresh and the sampled weight is zero, so the caller must
    /// [`hold`](Self::hold) every entry the shard holds again. Whether the sample changed.
    pub(super) fn resample(&mut self, entries: usize) -> bool {
        if core::mem::take(&mut self.recount) {
            self.sampled_weight = 0;
            return true;
        }
        if !self.tuning.adaptive() || entries <= self.most_entries {
            return false;
        }
        // A shard's count only now and then reaches a new high.
        self.most_entries = entries;
        let shift = Self::shift_for(entries);
        if shift <= self.shift {
            return false;
        }
        self.shift = shift;
        self.sample_mask = (1 << shift) - 1;
        self.restart();
        self.sampled_weight = 0;
        true
    }

    /// The shard's window or main region took in an entry of `hash` and `weight`.
    #[inline]
    pub(super) fn hold(&mut self, hash: u64, weight: u64) {
        if self.tuning.simulated() && self.sampled(hash) {
            self.sampled_weight += weight;
        }
    }

    /// The shard's window or main region let go of an entry of `hash` and `weight`.
    #[inline]
    pub(super) fn release(&mut self, hash: u64, weight: u64) {
        if self.tuning.simulated() && self.sampled(hash) {
            // Saturating: a count slip would only misjudge the miniatures' capacity.
            self.sampled_weight = self.sampled_weight.saturating_sub(weight);
        }
    }

    /// Empties the miniature caches and forgets the shard's evidence, keeping the share (a
    /// table's pooled evidence stays: the other shards' part of it is still good).
    fn restart(&mut self) {
        for mini in &mut self.minis {
            mini.cache.clear();
            mini.tally = Tally::default();
        }
        if let Judge::Shard(evidence) = &mut self.judge {
            evidence.forget();
        }
        self.requests = 0;
        self.hits = 0;
    }

    /// Forgets everything but the tuning, the reserved room and the table it pools with (the
    /// shard was cleared): the share starts again at the initial one, for the whole table.
    pub(super) fn clear(&mut self) {
        if self.tuning.adaptive() {
            let initial = self.tuning.initial.min(ONE);
            let decision = match &mut self.judge {
                Judge::Shard(evidence) => evidence.restart(initial),
                Judge::Table(table) => table.restart(initial),
            };
            self.follow(decision);
        }
        self.restart();
        self.sampled_weight = 0;
    }

    /// A `request` for `hash` (of `weight`) in a shard whose window and main region hold
    /// `entries` entries, after the sketch counted it and after [`resample`](Self::resample).
    /// At the end of an epoch, may move the share.
    pub(super) fn request(
        &mut self,
        hash: u64,
        weight: u64,
        request: Request,
        entries: usize,
        sketch: &FrequencySketch,
    ) {
        let arriving = matches!(request, Request::Arriving { .. });
        if !self.tuning.adaptive() {
            return;
        }
        if !self.sampled(hash) {
            return;
        }
        self.start();
        if let Judge::Table(table) = &self.judge {
            let decision = table.decision();
            self.follow(decision);
        }
        if !self.tuning.simulated() {
            // Climbing: the shard's own hit ratio on the sample is the evidence.
            self.hits += u64::from(!arriving);
            self.count_request(entries, CLIMB_PER_ENTRY);
            return;
        }
        let mut capacity = self.sampled_weight + if arriving { weight } else { 0 };
        if self.room > 0 {
            capacity = capacity.min(self.room);
        }
        if let Request::Arriving { after_miss } = request {
            self.callers.stored(after_miss);
        }
        // A miniature cache that lacks the key takes it in if the caller stores it: now, or
        // after the miss a hit is there (see `Callers`).
        let stored = request != Request::Hit || self.callers.read_through();
        self.simulate(hash, weight, capacity, entries, sketch, stored);
    }

    /// Counts a sampled request; ends the epoch (of `per_entry` requests per sampled entry of
    /// a shard of `entries`) when it is due.
    #[inline]
    fn count_request(&mut self, entries: usize, per_entry: u64) {
        self.requests += 1;
        self.simulated += 1;
        let epoch = ((entries >> self.shift) as u64).max(MIN_EPOCH_ENTRIES) * per_entry;
        if self.requests >= epoch {
            self.end_epoch(epoch);
        }
    }

    /// One sampled request through every miniature cache (`stored`: one that misses takes
    /// the key in).
    fn simulate(
        &mut self,
        hash: u64,
        weight: u64,
        capacity: u64,
        entries: usize,
        sketch: &FrequencySketch,
        stored: bool,
    ) {
        let mut hit = [false; CHOICES];
        for (mini, hit) in self.minis.iter_mut().zip(&mut hit) {
            *hit = mini.cache.access(hash, weight, capacity, sketch, stored);
            mini.tally.hits += u64::from(*hit);
        }
        let current = hit[self.current];
        for (mini, &hit) in self.minis.iter_mut().zip(&hit) {
            mini.tally.wins += u64::from(hit && !current);
            mini.tally.losses += u64::from(!hit && current);
        }
        self.count_request(entries, EPOCH_PER_ENTRY);
    }

    /// Hands the epoch's tallies to the judge, which may move the share (see
    /// [`WindowTuning`]), and follows its decision; starts the shard's next epoch.
    fn end_epoch(&mut self, epoch: u64) {
        let requests = core::mem::take(&mut self.requests);
        let mut tallies = [Tally::default(); CHOICES];
        for (mini, tally) in self.minis.iter_mut().zip(&mut tallies) {
            *tally = core::mem::take(&mut mini.tally);
        }
        // A climbing window's evidence: the shard's own hits, as its current share's.
        tallies[self.current].hits += core::mem::take(&mut self.hits);
        let decision = match &mut self.judge {
            Judge::Shard(evidence) => evidence.add(&tallies, requests, epoch),
            Judge::Table(table) => table.add(self.decision, &tallies, requests, epoch),
        };
        self.follow(decision);
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.minis.capacity() * core::mem::size_of::<Mini>()
            + self
                .minis
                .iter()
                .map(|mini| mini.cache.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's hash (any bits: a miniature cache is not sampled).
    fn hash(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 17)
    }

    #[test]
    fn a_reservation_that_changes_the_sample_has_the_held_entries_counted_again() {
        let mut sizer = WindowSizer::new(WindowTuning::DEFAULT);
        sizer.reserve(100);
        let held: Vec<u64> = (0..5_000).map(hash).collect();
        for &h in &held {
            sizer.hold(h, 1);
        }
        assert_eq!(
            sizer.sampled_weight, 5_000,
            "every key sampled in a small shard"
        );
        // Sized for a million: one key in 2 048 from now on, so the count must be redone.
        sizer.reserve(1 << 20);
        assert!(sizer.resample(5_000), "the caller is asked to count again");
        assert_eq!(sizer.sampled_weight, 0);
        for &h in &held {
            sizer.hold(h, 1);
        }
        let sampled = held.iter().filter(|&&h| sizer.sampled(h)).count() as u64;
        assert_eq!(sizer.sampled_weight, sampled);
        assert!(!sizer.resample(5_000), "counted once");
        for &h in &held {
            sizer.release(h, 1);
        }
        assert_eq!(sizer.sampled_weight, 0, "every release matched a hold");
    }

    #[test]
    fn a_large_shard_samples_its_keys_and_its_miniatures_stay_small() {
        let mut sizer = WindowSizer::new(WindowTuning::DEFAULT);
        assert_eq!(sizer.heap_bytes(), 0, "nothing before the shard is sized");
        sizer.reserve(1 << 20);
        assert_eq!(sizer.shift, 11, "one key in 2 048: 512 of a million");
        let bytes = sizer.heap_bytes();
        assert!((6 * 512 * 16..112 * 1_024).contains(&bytes), "{bytes}");
        let sampled = (0..1u64 << 16).filter(|&k| sizer.sampled(hash(k))).count();
        assert!((16..=48).contains(&sampled), "{sampled} of 65 536 sampled");
        // A small shard simulates every key; miniatures of 256 entries up to 4 096, a sixteenth
        // of the shard's up to 512 beyond.
        for (entries, shift) in [(256, 0), (257, 1), (4_096, 4), (8_193, 4), (16_385, 5)] {
            assert_eq!(WindowSizer::shift_for(entries), shift, "{entries} entries");
        }
        // A fixed window simulates nothing.
        let mut fixed = WindowSizer::new(WindowTuning::fixed(1));
        fixed.reserve(1 << 20);
        assert_eq!(fixed.heap_bytes(), 0);
    }
}
