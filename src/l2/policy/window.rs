//! How W-TinyLFU's window is sized (documented on [`WindowTuning`]).

use alloc::vec::Vec;

/// Shares of the shard's weight, in 1/65 536ths.
pub(super) const ONE: u32 = 1 << 16;

/// Rejected keys per step the sizer tracks at least before it samples them.
const SAMPLED_STEP: u32 = 256;
/// At most one rejected key in 256 is tracked.
const MAX_SAMPLE_SHIFT: u32 = 8;

/// How the window of [`WTinyLfu`](super::WTinyLfu) is sized: its first share and how it adapts.
///
/// The share moves by comparing, every sample, what one more step of window would catch with
/// what one step less of the main region would lose.
///
/// - **What a bigger window would catch**: candidates rejected at admission are remembered
///   (a direct-mapped table of fingerprints and the insertion count at which they left). A
///   miss on a key rejected no more than one step's worth of insertions ago would have been a
///   hit had the window been one step longer.
/// - **What a smaller main region would lose**: the hits on its coldest segment, probation
///   (counted once per entry between two passes of the hand), in proportion: `hits × step /
///   probation entries`.
///
/// The window grows by a step when the first is larger, shrinks when the second is, which
/// settles where the two marginal utilities meet (the marginal-utility balance of utility-based
/// cache partitioning: Qureshi & Patt, MICRO 2006). Both counts come from the same sample, so
/// the decision needs no comparison across time and adapts in a few samples, where hill
/// climbing on the hit ratio (Einziger et al., Middleware 2018; Caffeine) must wait out the
/// noise between samples. A guard keeps the climber's one strength: when a move is followed by
/// a clearly lower hit ratio, it is undone and that direction is held off for a few samples
/// (the estimate can mislead when the main region is nearly empty or a loop sits on the edge
/// of fitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTuning {
    /// The window's share at first, in 1/65 536ths of the shard's weight.
    pub initial: u32,
    /// Whether the share adapts (otherwise it stays at `initial`).
    pub adaptive: bool,
    /// Requests per sample, per entry the shard holds (a sample of `sample × entries`).
    pub sample: u32,
    /// One step, in 1/65 536ths of the shard's weight.
    pub step: u32,
    /// Samples a direction is held off after a move in it lowered the hit ratio.
    pub guard: u8,
    /// How much lower (in 1/65 536ths) the hit ratio must fall for the guard to act.
    pub tolerance: u32,
}

impl WindowTuning {
    /// The tuning of the default policy (measured on the shared traces; see
    /// `benches/HIT_RATIO.md`).
    pub const DEFAULT: Self = Self {
        initial: ONE / 100,
        adaptive: true,
        sample: 2,
        step: ONE / 16,
        guard: 2,
        tolerance: ONE / 32,
    };

    /// A window of a fixed share (in percent), never adapted: W-TinyLFU as first published.
    pub const fn fixed(percent: u32) -> Self {
        Self {
            initial: ONE / 100 * percent,
            adaptive: false,
            ..Self::DEFAULT
        }
    }
}

/// Keys that left recently, with the insertion count at which they left: a direct-mapped table
/// of 16-bit fingerprints (a new record overwrites whatever shared its bucket).
#[derive(Default)]
struct Departed {
    buckets: Vec<(u16, u32)>,
    /// The buckets in use, a power of two (the rest is room reserved for growth).
    used: usize,
}

impl Departed {
    fn fingerprint(hash: u64) -> u16 {
        // The top bits (the bucket takes the low ones); never 0, which marks an empty bucket.
        (hash >> 48) as u16 | 1
    }

    /// The table's size for room for about `room` keys.
    fn buckets_for(room: usize) -> usize {
        (room.max(8) * 2).next_power_of_two()
    }

    /// Allocates room for `room` keys now, so growing to it later allocates nothing.
    fn reserve(&mut self, room: usize) {
        let wanted = Self::buckets_for(room);
        if self.buckets.len() < wanted {
            self.buckets.resize(wanted, (0, 0));
        }
    }

    /// Records `hash` as leaving at insertion `at`, in a table of room for about `room`.
    fn record(&mut self, hash: u64, at: u32, room: usize) {
        let wanted = Self::buckets_for(room);
        if self.used < wanted {
            // Growing forgets what was recorded, as a fresh table would.
            self.reserve(room);
            self.buckets[..wanted].fill((0, 0));
            self.used = wanted;
        }
        let bucket = hash as usize & (self.used - 1);
        self.buckets[bucket] = (Self::fingerprint(hash), at);
    }

    /// Whether `hash` left at most `within` insertions before insertion `now`; forgets it.
    fn take(&mut self, hash: u64, now: u32, within: u32) -> bool {
        if self.used == 0 {
            return false;
        }
        let bucket = hash as usize & (self.used - 1);
        let (fingerprint, left) = self.buckets[bucket];
        if fingerprint != Self::fingerprint(hash) {
            return false;
        }
        self.buckets[bucket] = (0, 0);
        now.wrapping_sub(left) <= within
    }

    fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * core::mem::size_of::<(u16, u32)>()
    }
}

/// The window's share and the evidence for moving it.
pub(super) struct WindowSizer {
    tuning: WindowTuning,
    share: u32,
    /// Insertions so far (wrapping): the clock of the rejected-candidate table.
    insertions: u32,
    rejected: Departed,
    /// Misses this sample on keys rejected within a step's worth of insertions.
    ghost_hits: u64,
    requests: u64,
    hits: u64,
    previous_ratio: Option<u32>,
    last_move: i8,
    hold_grow: u8,
    hold_shrink: u8,
}

/// What the main region's coldest segment did during a sample.
pub(super) struct MainTail {
    /// Hits on probation entries (once per entry between passes of the hand).
    pub(super) hits: u64,
    /// Entries in probation now.
    pub(super) entries: usize,
}

impl WindowSizer {
    pub(super) fn new(tuning: WindowTuning) -> Self {
        Self {
            tuning,
            share: tuning.initial.min(ONE),
            insertions: 0,
            rejected: Departed::default(),
            ghost_hits: 0,
            requests: 0,
            hits: 0,
            previous_ratio: None,
            last_move: 0,
            hold_grow: 0,
            hold_shrink: 0,
        }
    }

    pub(super) fn tuning(&self) -> WindowTuning {
        self.tuning
    }

    /// The window's share now.
    pub(super) fn share(&self) -> u32 {
        self.share
    }

    /// One step, in entries of a shard holding `entries`.
    fn step_entries(&self, entries: usize) -> u32 {
        ((entries as u64 * u64::from(self.tuning.step) / u64::from(ONE)) as u32).max(1)
    }

    /// How sparsely rejected keys are remembered in a shard holding `entries`: one key in
    /// `2^shift`, chosen by hash, so that about [`SAMPLED_STEP`] keys of a step are tracked.
    /// A large cache then pays the table's cache miss on a few misses in a hundred instead
    /// of on every one, and its ghost hits, scaled back up, are as good an estimate.
    fn sample_shift(&self, entries: usize) -> u32 {
        (self.step_entries(entries) / SAMPLED_STEP)
            .checked_ilog2()
            .map_or(0, |bits| (bits + 1).min(MAX_SAMPLE_SHIFT))
    }

    /// Whether `hash` is among the sampled keys at `shift`.
    fn sampled(hash: u64, shift: u32) -> bool {
        // Bits 40 to 47: the shard takes bits 32 and up (few of them), the table's bucket the
        // low ones and its fingerprint the top sixteen.
        (hash >> 40) & ((1 << shift) - 1) == 0
    }

    /// Sizes the rejected-key table for a shard of up to `entries`, so that a shard that
    /// stays within its reservation never allocates for it (a cache on a caller's region uses
    /// no global allocator once built). The table's room grows with the step until keys start
    /// being sampled, then stays within twice [`SAMPLED_STEP`].
    pub(super) fn reserve(&mut self, entries: usize) {
        if self.tuning.adaptive && entries > 0 {
            let step = self.step_entries(entries);
            let room = (step >> self.sample_shift(entries)).max(step.min(2 * SAMPLED_STEP));
            self.rejected.reserve(room as usize);
        }
    }

    /// A candidate of `hash` was rejected (evicted from the window's end) in a shard holding
    /// `entries`.
    pub(super) fn rejected(&mut self, hash: u64, entries: usize) {
        if self.tuning.adaptive {
            let shift = self.sample_shift(entries);
            if Self::sampled(hash, shift) {
                let room = (self.step_entries(entries) >> shift) as usize;
                self.rejected.record(hash, self.insertions, room);
            }
        }
    }

    /// A miss on `hash` (about to be inserted) after `hits` hits since the last miss, in a
    /// shard holding `entries`. At the end of a sample, moves the share by the evidence and
    /// returns true: the caller then starts counting `tail` afresh.
    pub(super) fn missed(
        &mut self,
        hash: u64,
        hits: u64,
        entries: usize,
        tail: impl FnOnce() -> MainTail,
    ) -> bool {
        if !self.tuning.adaptive {
            return false;
        }
        self.insertions = self.insertions.wrapping_add(1);
        let step = self.step_entries(entries);
        let shift = self.sample_shift(entries);
        if Self::sampled(hash, shift) && self.rejected.take(hash, self.insertions, step) {
            self.ghost_hits += 1 << shift;
        }
        self.requests += hits + 1;
        self.hits += hits;
        if self.requests < u64::from(self.tuning.sample) * entries.max(16) as u64 {
            return false;
        }
        let tail = tail();
        let ratio = (self.hits * u64::from(ONE) / self.requests) as u32;
        // Grow if a step more of window catches more than a step less of main loses (both per
        // step: ghost hits, against probation's hits scaled to one step of its entries).
        let catch = self.ghost_hits * tail.entries.max(1) as u64;
        let lose = tail.hits * u64::from(step);
        let mut wanted = catch.cmp(&lose) as i8;
        let fell = self
            .previous_ratio
            .is_some_and(|previous| ratio + self.tuning.tolerance < previous);
        if self.last_move != 0 && fell {
            // The last move was followed by a clearly lower hit ratio: undo it and hold that
            // direction off for a while.
            wanted = -self.last_move;
            if self.last_move > 0 {
                self.hold_grow = self.tuning.guard;
            } else {
                self.hold_shrink = self.tuning.guard;
            }
        } else if (wanted > 0 && self.hold_grow > 0) || (wanted < 0 && self.hold_shrink > 0) {
            wanted = 0;
        }
        self.hold_grow = self.hold_grow.saturating_sub(1);
        self.hold_shrink = self.hold_shrink.saturating_sub(1);
        let before = self.share;
        let moved = i64::from(self.share) + i64::from(wanted) * i64::from(self.tuning.step);
        self.share = moved.clamp(0, i64::from(ONE)) as u32;
        self.last_move = if self.share == before { 0 } else { wanted };
        self.previous_ratio = Some(ratio);
        self.ghost_hits = 0;
        self.requests = 0;
        self.hits = 0;
        true
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.rejected.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: usize = 1_000;

    /// What a sample sees: misses, each after `hits` hits, on keys rejected just before
    /// (`returning`) or never seen, in a shard of `entries`; `tail_hits` on probation's
    /// `tail_entries`.
    struct Sample {
        entries: usize,
        returning: bool,
        hits: u64,
        tail_hits: u64,
        tail_entries: usize,
    }

    impl Sample {
        /// Runs one sample of `sample × entries` requests; returns the share after it.
        fn run(&self, sizer: &mut WindowSizer) -> u32 {
            for key in 1u64.. {
                let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                if self.returning {
                    sizer.rejected(hash, self.entries);
                }
                let tail = || MainTail {
                    hits: self.tail_hits,
                    entries: self.tail_entries,
                };
                if sizer.missed(hash, self.hits, self.entries, tail) {
                    return sizer.share();
                }
            }
            unreachable!("a sample ends")
        }
    }

    /// One sample of 2 000 requests in a shard of `ENTRIES`, probation holding 31 entries.
    fn sample(sizer: &mut WindowSizer, returning: bool, hits: u64, tail_hits: u64) -> u32 {
        Sample {
            entries: ENTRIES,
            returning,
            hits,
            tail_hits,
            tail_entries: 31,
        }
        .run(sizer)
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn the_window_grows_when_rejected_keys_come_back_and_shrinks_when_probation_is_used() {
        let mut sizer = WindowSizer::new(WindowTuning::DEFAULT);
        let initial = WindowTuning::DEFAULT.initial;
        let step = WindowTuning::DEFAULT.step;
        // Every miss is on a key rejected a moment ago: a longer window would have caught it.
        assert_eq!(sample(&mut sizer, true, 0, 0), initial + step);
        assert_eq!(sample(&mut sizer, true, 0, 0), initial + 2 * step);
        // No rejected key comes back, and probation is busy: the main region needs the room.
        assert_eq!(sample(&mut sizer, false, 0, 500), initial + step);
        // Evidence both ways, equal per step (catch 2 000 x 31 entries; lose 1 000 hits x a
        // step of 62 entries): no move.
        assert_eq!(sample(&mut sizer, true, 0, 1_000), initial + step);
        assert_eq!(sample(&mut sizer, false, 0, 1), initial);
        assert_eq!(
            sample(&mut sizer, false, 0, 1),
            0,
            "the window may close entirely"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_move_followed_by_a_lower_hit_ratio_is_undone_and_held_off() {
        let mut sizer = WindowSizer::new(WindowTuning::DEFAULT);
        let initial = WindowTuning::DEFAULT.initial;
        let step = WindowTuning::DEFAULT.step;
        // Half the requests hit; the evidence says grow.
        assert_eq!(sample(&mut sizer, true, 1, 0), initial + step);
        // The hit ratio then falls to nothing although the evidence still says grow: undone.
        assert_eq!(sample(&mut sizer, true, 0, 0), initial);
        // Growing is held off for `guard` samples, then allowed again.
        assert_eq!(sample(&mut sizer, true, 0, 0), initial);
        assert_eq!(sample(&mut sizer, true, 0, 0), initial + step);
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_large_shard_samples_rejected_keys_and_reaches_the_same_decisions() {
        let entries = 100_000; // a step of 6 250 entries: one rejected key in 32 is tracked
        let mut sizer = WindowSizer::new(WindowTuning::DEFAULT);
        assert_eq!(sizer.sample_shift(entries), 5);
        let run = |sizer: &mut WindowSizer, returning: bool, tail_hits: u64| {
            Sample {
                entries,
                returning,
                hits: 0,
                tail_hits,
                tail_entries: 20_000,
            }
            .run(sizer)
        };
        let (initial, step) = (WindowTuning::DEFAULT.initial, WindowTuning::DEFAULT.step);
        // 200 000 misses, all on keys rejected a moment ago: about 6 250 tracked, scaled back
        // up to about 200 000 ghost hits; against probation's 60 000 hits on 20 000 entries
        // (18 750 per step of 6 250): grow. Unscaled, the 6 250 would have said shrink.
        assert_eq!(run(&mut sizer, true, 60_000), initial + step);
        // No rejected key returns: shrink.
        assert_eq!(run(&mut sizer, false, 60_000), initial);
    }

    #[test]
    #[cfg_attr(miri, ignore = "arithmetic, no unsafe code: covered by the native run")]
    fn a_fixed_window_never_moves() {
        let mut sizer = WindowSizer::new(WindowTuning::fixed(5));
        for _ in 0..10_000 {
            sizer.rejected(7, ENTRIES);
            assert!(!sizer.missed(7, 0, ENTRIES, || MainTail {
                hits: 0,
                entries: 1
            }));
        }
        assert_eq!(sizer.share(), ONE / 100 * 5);
    }
}
