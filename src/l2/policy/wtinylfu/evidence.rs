//! The evidence W-TinyLFU's window share is decided on, and how the shards of a table pool it.
//!
//! Each shard's miniature caches (see [`WindowTuning`](super::WindowTuning)) tally, epoch by
//! epoch, how each window share did against the current one. A shard alone decides on its
//! own tallies. The shards of a table pool theirs instead: a shard of a 64-shard table sees a
//! sixty-fourth of the requests, so on its own it would wait 64 times longer for the same
//! evidence, and 64 shards each testing their own would move on chance leads 64 times as
//! often. Pooled, the table decides once for all its shards, on as much evidence as one shard
//! of the whole capacity would have.

use super::rules::ONE;
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};

/// The window shares the miniature caches run: from pure TinyLFU to pure LRU.
pub(super) const SHARES: [u32; 6] = [0, ONE / 100, ONE / 10, ONE / 4, ONE / 2, ONE];
/// How many shares are simulated.
pub(super) const CHOICES: usize = SHARES.len();
/// How clear a lead must be to move the window: the standard deviations the sign test asks.
const LEAD_DEVIATIONS: u64 = 3;
/// Epochs in a row a share must do better than the current one before the window moves to it.
const LEAD_EPOCHS: u8 = 3;
/// Each epoch, the evidence kept from earlier ones shrinks by an eighth.
const FORGET_SHIFT: u32 = 3;
/// The window moves toward the leading share by at most half the shard at a time, and is
/// judged again from there.
const MAX_MOVE: u32 = ONE / 2;
/// Bits of the share in a published decision (it is at most [`ONE`]); the generation takes
/// the rest.
const SHARE_BITS: u32 = 17;
/// Generations wrap within the bits a published decision leaves them.
const GENERATION_MASK: u32 = (1 << (32 - SHARE_BITS)) - 1;

/// The miniature cache whose share is nearest `share`.
pub(super) fn nearest(share: u32) -> usize {
    (0..CHOICES)
        .min_by_key(|&i| SHARES[i].abs_diff(share))
        .unwrap_or(0)
}

/// A decision: the window's share and the number of the decision that set it (its generation,
/// which changes with every move, so that a shard can tell evidence gathered against an
/// earlier share from evidence gathered against this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decision {
    pub(super) share: u32,
    pub(super) generation: u32,
}

impl Decision {
    fn packed(self) -> u32 {
        self.share | self.generation << SHARE_BITS
    }

    fn unpacked(word: u32) -> Self {
        Self {
            share: word & ((1 << SHARE_BITS) - 1),
            generation: word >> SHARE_BITS,
        }
    }
}

/// What one miniature cache did in one shard's epoch, against the one at the current share.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tally {
    /// Hits.
    pub(super) hits: u64,
    /// Requests on which this one hit and the current one missed.
    pub(super) wins: u64,
    /// Requests on which the current one hit and this one missed.
    pub(super) losses: u64,
}

/// The evidence of the epochs so far, and the decision it led to.
#[derive(Debug, Clone)]
pub(super) struct Evidence {
    decision: Decision,
    /// Wins and losses against the current share (fading by an eighth each epoch).
    wins: [u64; CHOICES],
    losses: [u64; CHOICES],
    /// Hits in this epoch.
    hits: [u64; CHOICES],
    /// Epochs in a row in which each share hit more often than the current one.
    ahead: [u8; CHOICES],
    /// Simulated requests in this epoch.
    requests: u64,
    /// The shards adding to this evidence: its epoch lasts as many of theirs.
    members: u64,
    /// A climbing window's state (no miniature caches: the hits are the shard's own).
    climb: Option<Climb>,
}

/// Caffeine's hill climber (`BoundedLocalCache.determineAdjustment`): at each epoch's end the
/// share moves by `step`, or against it if the hit ratio fell since the last epoch. The step
/// shrinks by 2 % an epoch, and starts again at a sixteenth of the shard when the ratio moves
/// by 5 points or more (the workload changed).
#[derive(Debug, Clone, Copy)]
struct Climb {
    /// The last epoch's hit ratio, in 1/65 536ths.
    ratio: i64,
    /// The next move, in 1/65 536ths of the shard (negative: smaller).
    step: i64,
}

impl Climb {
    /// Before the first epoch: no ratio yet, and a first step that shrinks the window, as
    /// Caffeine's does.
    const START: Self = Self {
        ratio: 0,
        step: -CLIMB_STEP,
    };
}

/// The climber's first and restarted step: a sixteenth of the shard.
const CLIMB_STEP: i64 = ONE as i64 / 16;
/// A change of the hit ratio from one epoch to the next that restarts the step (5 points).
const CLIMB_RESTART: i64 = ONE as i64 / 20;

impl Evidence {
    pub(super) fn new(share: u32) -> Self {
        Self {
            decision: Decision {
                share,
                generation: 0,
            },
            wins: [0; CHOICES],
            losses: [0; CHOICES],
            hits: [0; CHOICES],
            ahead: [0; CHOICES],
            requests: 0,
            members: 1,
            climb: None,
        }
    }

    /// Evidence for a climbing window (see [`Climb`]): its first step shrinks the window,
    /// as Caffeine's does.
    pub(super) fn climbing(share: u32) -> Self {
        Self {
            climb: Some(Climb::START),
            ..Self::new(share)
        }
    }

    pub(super) fn decision(&self) -> Decision {
        self.decision
    }

    /// Adds a shard's epoch: its tallies over `requests` simulated requests, in an epoch meant
    /// to last `epoch` of them. Once the members together have made as many requests as
    /// `epoch` each, the epoch ends here: the share moves toward the share with the clearest
    /// lead over the current one, if any has a clear lead (see
    /// [`WindowTuning`](super::WindowTuning)). The decision in force after it.
    pub(super) fn add(
        &mut self,
        tallies: &[Tally; CHOICES],
        requests: u64,
        epoch: u64,
    ) -> Decision {
        for (i, tally) in tallies.iter().enumerate() {
            self.wins[i] += tally.wins;
            self.losses[i] += tally.losses;
            self.hits[i] += tally.hits;
        }
        self.requests += requests;
        if self.requests >= epoch.saturating_mul(self.members) {
            self.end_epoch();
        }
        self.decision
    }

    fn end_epoch(&mut self) {
        let requests = core::mem::take(&mut self.requests);
        if let Some(climb) = self.climb {
            self.climb(climb, requests);
            return;
        }
        let current = nearest(self.decision.share);
        let current_hits = self.hits[current];
        let mut best: Option<(usize, u64)> = None;
        for i in 0..CHOICES {
            self.ahead[i] = if self.hits[i] > current_hits {
                self.ahead[i].saturating_add(1)
            } else {
                0
            };
            self.hits[i] = 0;
            let (wins, losses) = (self.wins[i], self.losses[i]);
            let lead = wins.saturating_sub(losses);
            // The sign test: a lead beyond LEAD_DEVIATIONS standard deviations of the
            // disagreements (sqrt(wins + losses), were the two shares as good as each other).
            let clear = lead * lead > LEAD_DEVIATIONS * LEAD_DEVIATIONS * (wins + losses)
                && self.ahead[i] >= LEAD_EPOCHS;
            if clear && best.is_none_or(|(_, best)| lead > best) {
                best = Some((i, lead));
            }
        }
        let Some((best, _)) = best else {
            for i in 0..CHOICES {
                self.wins[i] -= self.wins[i] >> FORGET_SHIFT;
                self.losses[i] -= self.losses[i] >> FORGET_SHIFT;
            }
            return;
        };
        let (target, share) = (SHARES[best], self.decision.share);
        let share = if target > share {
            target.min(share + MAX_MOVE)
        } else {
            target.max(share.saturating_sub(MAX_MOVE))
        };
        self.decide(share);
    }

    /// A climbing window's epoch end (see [`Climb`]).
    fn climb(&mut self, climb: Climb, requests: u64) {
        let hits: u64 = self.hits.iter().sum();
        self.hits = [0; CHOICES];
        let ratio = (hits * u64::from(ONE) / requests.max(1)) as i64;
        let change = ratio - climb.ratio;
        let step = if change >= 0 { climb.step } else { -climb.step };
        let next = if change.abs() >= CLIMB_RESTART {
            if step >= 0 { CLIMB_STEP } else { -CLIMB_STEP }
        } else {
            step * 49 / 50
        };
        self.climb = Some(Climb { ratio, step: next });
        let share = (i64::from(self.decision.share) + step).clamp(0, i64::from(ONE)) as u32;
        if share != self.decision.share {
            self.decide(share);
        }
    }

    /// A new decision for `share`, judged afresh from there.
    fn decide(&mut self, share: u32) {
        self.decision = Decision {
            share,
            generation: (self.decision.generation + 1) & GENERATION_MASK,
        };
        self.forget();
    }

    /// Forgets the evidence, keeping the decision and the members.
    pub(super) fn forget(&mut self) {
        *self = Self {
            decision: self.decision,
            members: self.members,
            climb: self.climb,
            ..Self::new(0)
        };
    }

    /// Starts again at `share`, as a new decision (the shards were cleared); that decision.
    pub(super) fn restart(&mut self, share: u32) -> Decision {
        if self.climb.is_some() {
            // A climber starts over too: no last ratio, the first step.
            self.climb = Some(Climb::START);
        }
        self.decide(share);
        self.decision
    }
}

/// The evidence a table's shards pool, and its decision published for them to follow.
///
/// A shard adds its epoch's tallies under the mutex, where the pooled epoch may end and the
/// share move (a few dozen additions and comparisons, once per shard epoch: at least 64
/// simulated requests). The decision is also published in one word, which every shard reads
/// at each of its simulated requests, so a move reaches the shards that did not make it at
/// their next miss, not at the end of their epoch. Evidence tallied against an earlier
/// decision (a shard that had not yet seen a move) is dropped, not added.
pub(super) struct TableWindow {
    /// The decision, packed: share and generation.
    published: AtomicU32,
    evidence: Mutex<Evidence>,
}

impl TableWindow {
    /// A pool starting from a shard's evidence, that shard its only member.
    pub(super) fn new(evidence: Evidence) -> Arc<Self> {
        Arc::new(Self {
            published: AtomicU32::new(evidence.decision().packed()),
            evidence: Mutex::new(evidence),
        })
    }

    /// One more shard adds to the pool; the decision it is to follow.
    pub(super) fn join(&self) -> Decision {
        let mut evidence = self.evidence.lock();
        evidence.members += 1;
        evidence.decision()
    }

    /// The decision in force.
    #[inline]
    pub(super) fn decision(&self) -> Decision {
        // Relaxed: the word is the whole message (a share and its generation, nothing else
        // published with it); a shard that reads an older one follows the newer one at a later
        // request, and its tallies against the older one are dropped under the mutex.
        Decision::unpacked(self.published.load(Ordering::Relaxed))
    }

    /// Adds a shard's epoch tallied against `decision` (dropped if the decision has changed
    /// since), as [`Evidence::add`]; the decision in force after it.
    pub(super) fn add(
        &self,
        decision: Decision,
        tallies: &[Tally; CHOICES],
        requests: u64,
        epoch: u64,
    ) -> Decision {
        let mut evidence = self.evidence.lock();
        if evidence.decision() == decision && evidence.add(tallies, requests, epoch) != decision {
            // Only a new decision is written: every shard reads the word at each request.
            self.publish(&evidence);
        }
        evidence.decision()
    }

    /// Starts again at `share` (see [`Evidence::restart`]); the new decision.
    pub(super) fn restart(&self, share: u32) -> Decision {
        let mut evidence = self.evidence.lock();
        evidence.restart(share);
        self.publish(&evidence);
        evidence.decision()
    }

    fn publish(&self, evidence: &Evidence) {
        // Relaxed: see `decision`. Stored under the mutex, so decisions are published in order.
        self.published
            .store(evidence.decision().packed(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tallies in which share `winner` hits every request and the rest hit none.
    fn one_wins(winner: usize, requests: u64, current: usize) -> [Tally; CHOICES] {
        core::array::from_fn(|i| Tally {
            hits: if i == winner { requests } else { 0 },
            wins: if i == winner && i != current {
                requests
            } else {
                0
            },
            losses: if i != winner && winner == current {
                requests
            } else {
                0
            },
        })
    }

    #[test]
    fn a_clear_lead_in_three_epochs_moves_the_share_at_most_half_way() {
        let mut evidence = Evidence::new(ONE / 100);
        let current = nearest(ONE / 100);
        for epoch in 0..2 {
            evidence.add(&one_wins(CHOICES - 1, 64, current), 64, 64);
            assert_eq!(evidence.decision().share, ONE / 100, "after epoch {epoch}");
        }
        evidence.add(&one_wins(CHOICES - 1, 64, current), 64, 64);
        let decision = evidence.decision();
        assert_eq!(
            decision.share,
            ONE / 100 + ONE / 2,
            "half the shard, toward 100 %"
        );
        assert_eq!(decision.generation, 1);
    }

    #[test]
    fn members_pool_their_epochs_into_one() {
        let mut evidence = Evidence::new(ONE / 100);
        evidence.members = 4;
        let current = nearest(ONE / 100);
        // Three epochs of four members each: twelve additions, the move at the last.
        for addition in 0..11 {
            evidence.add(&one_wins(0, 16, current), 16, 16);
            assert_eq!(
                evidence.decision().generation,
                0,
                "after addition {addition}"
            );
        }
        evidence.add(&one_wins(0, 16, current), 16, 16);
        assert_eq!(evidence.decision().share, 0);
    }

    #[test]
    fn a_pool_drops_tallies_against_an_earlier_decision() {
        let pool = TableWindow::new(Evidence::new(ONE / 100));
        let first = pool.join();
        let current = nearest(first.share);
        let moved = pool.restart(ONE / 4);
        assert_eq!(pool.decision(), moved);
        assert_ne!(moved.generation, first.generation);
        // A shard still on the first decision: its epoch counts for nothing.
        for _ in 0..100 {
            assert_eq!(pool.add(first, &one_wins(0, 64, current), 64, 64), moved);
        }
        assert_eq!(pool.decision(), moved);
        // Against the decision in force, a clear lead moves it (two members: six additions).
        let current = nearest(moved.share);
        let mut decision = moved;
        for _ in 0..6 {
            decision = pool.add(decision, &one_wins(0, 64, current), 64, 64);
        }
        assert_eq!(decision.share, 0);
        assert_eq!(pool.decision(), decision);
    }

    /// Tallies of a climbing shard: `hits` of its requests, counted as the current share's.
    fn climbed(hits: u64) -> [Tally; CHOICES] {
        let mut tallies = [Tally::default(); CHOICES];
        tallies[1].hits = hits;
        tallies
    }

    #[test]
    fn a_climber_keeps_its_direction_while_the_ratio_rises_and_turns_when_it_falls() {
        let mut evidence = Evidence::climbing(ONE / 2);
        let step = CLIMB_STEP as u32;
        // The first epoch (ratio 50 %, up from nothing) takes the first step: smaller.
        evidence.add(&climbed(50), 100, 100);
        assert_eq!(evidence.decision().share, ONE / 2 - step);
        // Up 10 points (a jump: the step starts again, the same way).
        evidence.add(&climbed(60), 100, 100);
        assert_eq!(evidence.decision().share, ONE / 2 - 2 * step);
        // Down 2 points: it turns, and the step shrinks by 2 % for the next epoch.
        evidence.add(&climbed(58), 100, 100);
        assert_eq!(evidence.decision().share, ONE / 2 - step);
        // Up 1 point: on the same way, by the shrunk step.
        evidence.add(&climbed(59), 100, 100);
        assert_eq!(evidence.decision().share, ONE / 2 - step + step * 49 / 50);
        // An epoch counts only once every member's requests are in.
        let before = evidence.decision();
        evidence.add(&climbed(10), 50, 100);
        assert_eq!(evidence.decision(), before);
    }

    #[test]
    fn a_climber_stays_within_the_shard_and_restarts_from_its_first_step() {
        let mut evidence = Evidence::climbing(ONE / 100);
        evidence.add(&climbed(50), 100, 100);
        assert_eq!(evidence.decision().share, 0, "never below an empty window");
        evidence.restart(ONE);
        evidence.add(&climbed(50), 100, 100);
        assert_eq!(evidence.decision().share, ONE - CLIMB_STEP as u32);
    }

    #[test]
    fn a_decision_survives_packing() {
        for (share, generation) in [(0, 0), (ONE, GENERATION_MASK), (ONE / 100, 12_345)] {
            let decision = Decision { share, generation };
            assert_eq!(Decision::unpacked(decision.packed()), decision);
        }
    }
}
