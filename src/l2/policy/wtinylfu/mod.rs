//! W-TinyLFU with an adaptive window, the default L2 policy (documented on [`WTinyLfu`]).

mod callers;
mod evidence;
mod mini;
mod rules;
mod sketch;
mod window;

use super::list::{Linked, List};
use super::{Entries, EntryInfo, HitReports, KeyHint, Policy, Priority, SlotId};
use rules::{ADMIT_MARGIN, ONE, protected_outgrows};
use sketch::FrequencySketch;
pub use window::{Adaptation, WindowTuning};
use window::{Request, WindowSizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Segment {
    #[default]
    Absent = 0,
    Window = 1,
    Probation = 2,
    Protected = 3,
    Critical = 4,
}

/// Per-entry state (8 bytes): the entry's list links, with its segment in the top three bits
/// of `prev` and its priority in the top two of `next` (so a shard holds at most 2^29 entries:
/// [`Policy::MAX_SLOTS`]).
#[derive(Default)]
pub struct Meta {
    prev: u32,
    next: u32,
}

/// The id bits of `Meta::prev` and of `Meta::next`.
const PREV_ID: u32 = (1 << 29) - 1;
const NEXT_ID: u32 = (1 << 30) - 1;
const _: () = assert!(core::mem::size_of::<Meta>() == 8);

impl Meta {
    #[inline]
    fn segment(&self) -> Segment {
        match self.prev >> 29 {
            1 => Segment::Window,
            2 => Segment::Probation,
            3 => Segment::Protected,
            4 => Segment::Critical,
            _ => Segment::Absent,
        }
    }

    #[inline]
    fn set_segment(&mut self, segment: Segment) {
        self.prev = (self.prev & PREV_ID) | ((segment as u32) << 29);
    }

    #[inline]
    fn priority(&self) -> Priority {
        match self.next >> 30 {
            0 => Priority::Low,
            1 => Priority::Medium,
            2 => Priority::High,
            _ => Priority::Critical,
        }
    }

    #[inline]
    fn set_priority(&mut self, priority: Priority) {
        self.next = (self.next & NEXT_ID) | ((priority as u32) << 30);
    }
}

impl Linked for Meta {
    #[inline]
    fn links(&self) -> (SlotId, SlotId) {
        (self.prev & PREV_ID, self.next & NEXT_ID)
    }

    #[inline]
    fn set_links(&mut self, prev: SlotId, next: SlotId) {
        self.set_prev(prev);
        self.set_next(next);
    }

    #[inline]
    fn set_prev(&mut self, prev: SlotId) {
        debug_assert!(prev <= PREV_ID);
        self.prev = (self.prev & !PREV_ID) | prev;
    }

    #[inline]
    fn set_next(&mut self, next: SlotId) {
        debug_assert!(next <= NEXT_ID);
        self.next = (self.next & !NEXT_ID) | next;
    }
}

/// The most entries [`Policy::reserve`] sizes the sketch for ahead of need (512 KiB of
/// counters); beyond, it grows with the shard.
const SKETCH_AHEAD: usize = 1 << 16;

/// A table expected to hold at most this many entries hears of every hit (see **Uses** on
/// [`WTinyLfu`]).
const EAGER_ENTRIES: usize = 1 << 16;

/// Victims summed at most when a heavy candidate meets light ones.
const MAX_AGGREGATED_VICTIMS: usize = 16;

/// W-TinyLFU with an adaptive window, the default L2 policy
/// ([`DefaultPolicy`](super::DefaultPolicy)).
///
/// The admission policy is TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient
/// Cache Admission Policy", ACM ToS 2017), in front of a main region and behind a window whose
/// size adapts (Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache Management",
/// Middleware 2018), here by miniature simulations of the shard at six window sizes (see
/// [`WindowTuning`]).
///
/// - A new key enters the **window**, an LRU of a share of the shard's weight (1 % at first).
///   The entry inserted last always stays there until the next insertion.
/// - The window's overflow, its oldest entry (the **candidate**), meets the **main** region's
///   next victim, the oldest entry of its **probation** segment: the one a count-min frequency
///   sketch has seen more often lately stays, the other is evicted. (The sketch: 4-bit
///   counters, sixteen per entry in 64-byte blocks so one access touches one cache line,
///   halved after four changing increments per entry.)
///   The incumbent is favoured (see `ADMIT_MARGIN`), so a loop larger than the cache keeps a
///   stable part of itself, and a scan never flushes the main region. A candidate heavier
///   than the victim meets the probation entries its weight would displace, their counts
///   summed (as moka does), so one large object seen a few times does not push out many small
///   ones seen as often.
/// - An entry of probation found used moves to **protected** (80 % of the main region), whose
///   oldest entries fall back to probation when it outgrows its share.
/// - The window's share follows six miniature W-TinyLFU caches of a sample of the shard's
///   keys, at shares from 0 to 100 %: it moves toward the one that clearly hits more often
///   than the one at its current share. Recency grows the window toward LRU; frequency and
///   loops keep it small, toward pure TinyLFU. A window of the whole shard is a CLOCK.
///
/// **Uses.** A hit is not told to the policy as it happens: it marks the entry, and the hand
/// finds the mark when it reaches the entry ([`Entries::referenced`]: the window's and
/// protected's oldest ends, probation's victim). A marked entry gets its reordering then (a
/// CLOCK's second chance, at the newest end of its segment: in the window, or in protected
/// from probation) and counts once in the sketch however often it was used. Only hits on the
/// keys the window's miniature caches sample are recorded and replayed ([`Policy::on_access`],
/// [`HitReports::Sampled`]), for those caches alone: a hit costs its reader no record and the
/// writer no reordering. A table expected to hold up to 65 536 entries (or of unknown size:
/// weighted) hears of every hit instead ([`HitReports::All`]), each counted and reordered at
/// once: it costs little there and reads higher on small caches, while large ones read as
/// high or higher with the hand counting (the measurements: `benches/results/NOTES.md`).
///
/// **Priorities.** `Critical` entries keep to a CLOCK ring of their own, which gives victims
/// only when eviction may take Critical entries and nothing else is left. `Medium` entries
/// count half their sketch frequency and `Low` entries none when a candidate meets a victim,
/// so under pressure they lose their place before `High` entries with the same use. Expired
/// entries are evicted first wherever the hand meets them.
pub struct WTinyLfu {
    window: List,
    probation: List,
    protected: List,
    critical: List,
    sketch: FrequencySketch,
    sizer: WindowSizer,
    /// The entry inserted last, while it is in the window: it stays there until the next
    /// insertion.
    newest: Option<SlotId>,
    /// The candidate the last insertion found, for the eviction pass that follows it (cleared
    /// by anything that could change the window before then).
    pending: Option<SlotId>,
    /// Entries the shard was sized for ([`Policy::reserve`]), kept across `clear`.
    reserved: usize,
    /// The shards of its table ([`Policy::for_table`]).
    shards: usize,
}

impl Default for WTinyLfu {
    fn default() -> Self {
        Self::new()
    }
}

impl WTinyLfu {
    /// An empty policy with the default tuning.
    pub fn new() -> Self {
        Self::with_tuning(WindowTuning::DEFAULT)
    }

    /// An empty policy whose window is sized by `tuning`.
    pub fn with_tuning(tuning: WindowTuning) -> Self {
        Self {
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            critical: List::default(),
            sketch: FrequencySketch::default(),
            sizer: WindowSizer::new(tuning),
            newest: None,
            pending: None,
            reserved: 0,
            shards: 1,
        }
    }

    /// The window's share of the shard's weight now, in 1/65 536ths.
    pub fn window_share(&self) -> u32 {
        self.sizer.share()
    }

    /// How many times the window's share has been decided: each move, and each new start
    /// after [`clear`](Policy::clear) (wrapping at 32 768; 0 for a fixed window). The shards of
    /// one table share their decisions (see [`WindowTuning`]): each reports the table's count
    /// as of the last decision it followed, at its last miss.
    pub fn window_decisions(&self) -> u32 {
        self.sizer.decisions()
    }

    /// Requests the window's miniature caches have simulated so far: the sampled ones among
    /// those the shard saw, hits under shared access included once the next exclusive access
    /// replayed them (0 for a fixed window; see [`WindowTuning`]).
    pub fn simulated_requests(&self) -> u64 {
        self.sizer.simulated()
    }

    fn list(&mut self, segment: Segment) -> Option<&mut List> {
        match segment {
            Segment::Window => Some(&mut self.window),
            Segment::Probation => Some(&mut self.probation),
            Segment::Protected => Some(&mut self.protected),
            Segment::Critical => Some(&mut self.critical),
            Segment::Absent => None,
        }
    }

    #[inline(always)]
    fn unlink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.unlink_hashed(entries, id, None);
    }

    /// [`unlink`](Self::unlink), given the entry's hash if the caller read it already.
    #[inline(always)]
    fn unlink_hashed(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, hash: Option<u64>) {
        let segment = entries.meta(id).segment();
        if let Some(list) = self.list(segment) {
            list.remove(entries, id);
        }
        if Self::simulated(segment) {
            let hash = hash.unwrap_or_else(|| entries.hash(id));
            self.sizer.release(hash, entries.weight(id));
        }
        entries.meta_mut(id).set_segment(Segment::Absent);
        if self.newest == Some(id) {
            self.newest = None;
        }
    }

    /// Moves entry `id` to the newest end of `to` (as `unlink` then `push`, without telling
    /// the window's sizer of a move between two segments it simulates: the sampled weight the
    /// entry adds stays where it was).
    fn relink(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, to: Segment) {
        let from = entries.meta(id).segment();
        if !(Self::simulated(from) && Self::simulated(to)) {
            self.unlink(entries, id);
            self.push(entries, id, to);
            return;
        }
        if let Some(list) = self.list(from) {
            list.remove(entries, id);
        }
        if self.newest == Some(id) {
            self.newest = None;
        }
        entries.meta_mut(id).set_segment(to);
        if let Some(list) = self.list(to) {
            list.push_back(entries, id);
        }
    }

    #[inline(always)]
    fn push(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, segment: Segment) {
        self.push_hashed(entries, id, segment, None);
    }

    /// [`push`](Self::push), given the entry's hash if the caller knows it.
    #[inline(always)]
    fn push_hashed(
        &mut self,
        entries: &mut impl Entries<Meta>,
        id: SlotId,
        segment: Segment,
        hash: Option<u64>,
    ) {
        entries.meta_mut(id).set_segment(segment);
        if let Some(list) = self.list(segment) {
            list.push_back(entries, id);
        }
        if Self::simulated(segment) {
            let hash = hash.unwrap_or_else(|| entries.hash(id));
            self.sizer.hold(hash, entries.weight(id));
        }
    }

    /// Whether the window's sizer simulates the entries of `segment` (the window and the main
    /// region, not the Critical ring).
    fn simulated(segment: Segment) -> bool {
        matches!(
            segment,
            Segment::Window | Segment::Probation | Segment::Protected
        )
    }

    fn resident(&self) -> usize {
        self.window.len + self.probation.len + self.protected.len + self.critical.len
    }

    /// The weight the window may hold now.
    fn window_target(&self) -> u64 {
        let total = self.window.weight + self.probation.weight + self.protected.weight;
        total * u64::from(self.sizer.share()) / u64::from(ONE)
    }

    /// Passes a request to the window's sizer.
    #[inline(always)]
    fn simulate(
        &mut self,
        entries: &mut impl Entries<Meta>,
        hash: u64,
        weight: u64,
        request: Request,
    ) {
        let arriving = matches!(request, Request::Arriving { .. });
        if !self.sizer.follows(hash) {
            return; // not a sampled key: no miniature cache sees it
        }
        let lists = [&self.window, &self.probation, &self.protected];
        let held: usize = lists.iter().map(|list| list.len).sum::<usize>() + usize::from(arriving);
        if self.sizer.resample(held) {
            // Fewer keys are sampled now: count those held again.
            for list in lists {
                let mut id = list.front;
                for _ in 0..list.len {
                    let Some(at) = id else { break };
                    self.sizer.hold(entries.hash(at), entries.weight(at));
                    id = Some(List::next(entries, at));
                }
            }
        }
        self.sizer
            .request(hash, weight, request, held, &self.sketch);
    }

    /// Keeps protected within 80 % of the main region by demoting its oldest entries.
    ///
    /// With hits the policy was not told of, protected is not quite in use order: an entry used
    /// since the hand last looked is passed over once, as being told would have moved it to
    /// the newest end.
    fn rebalance(&mut self, entries: &mut impl Entries<Meta>) {
        let mut chances = self.protected.len;
        while protected_outgrows(self.protected.weight, self.probation.weight) {
            let Some(oldest) = self.protected.front else {
                break;
            };
            if chances > 0 && self.used_since(entries, oldest) {
                chances -= 1;
                self.protected.rotate(entries);
                continue;
            }
            // `relink` to probation spelt out (both regions simulated: the sizer is not told).
            self.protected.remove(entries, oldest);
            if self.newest == Some(oldest) {
                self.newest = None;
            }
            entries.meta_mut(oldest).set_segment(Segment::Probation);
            self.probation.push_back(entries, oldest);
        }
    }

    /// A reordering hit: what `on_access` does at once, and what the hand does for a marked
    /// entry.
    fn promote(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        match entries.meta(id).segment() {
            Segment::Window => {
                let newest = self.newest;
                self.relink(entries, id, Segment::Window);
                self.newest = newest;
            }
            Segment::Probation | Segment::Protected => {
                self.relink(entries, id, Segment::Protected);
                self.rebalance(entries);
            }
            Segment::Critical => {
                self.relink(entries, id, Segment::Critical);
            }
            Segment::Absent => {}
        }
    }

    /// Whether the entry was used since the hand last looked (see [`Entries::referenced`]);
    /// consumes the mark, counting one use in the sketch however many there were: a key's
    /// frequency is how often the hand found it used, which damps a burst of hits (counting
    /// each hit read lower on the shared traces: `benches/results/NOTES.md`).
    fn used_since(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) -> bool {
        if !entries.referenced(id) {
            return false;
        }
        self.sketch.increment(entries.hash(id));
        true
    }

    /// Trims the window toward its share and returns the candidate: the window's oldest
    /// unused entry, when the window is over its share with it. Entries used since the hand
    /// last looked get a second chance at the window's newest end; overflow beyond the
    /// candidate moves to probation's newest end unjudged. The candidate stays in the window
    /// until an eviction judges it (so a rejected one is never linked into probation), and the
    /// newest entry is never the candidate (an insertion is not undone by its own eviction
    /// pass).
    #[inline(always)]
    fn window_candidate(&mut self, entries: &mut impl Entries<Meta>) -> Option<SlotId> {
        // The newest entry stays whatever the share, so the window may hold it beyond the
        // target; the candidate is the last entry whose leaving brings the rest within that.
        let newest = self.newest.map_or(0, |id| entries.weight(id));
        let target = self.window_target() + newest;
        let mut chances = self.window.len;
        while self.window.weight > target && self.window.len > 1 {
            let oldest = self.window.front?;
            if Some(oldest) == self.newest {
                // Touched entries went behind it: pass it (it stays at the newest end).
                if chances == 0 {
                    return None;
                }
                chances -= 1;
                self.window.rotate(entries);
                continue;
            }
            if chances > 0 && !entries.is_expired(oldest) && self.used_since(entries, oldest) {
                chances -= 1;
                self.promote(entries, oldest);
                continue;
            }
            if self.window.weight - entries.weight(oldest) <= target {
                return Some(oldest);
            }
            self.relink(entries, oldest, Segment::Probation);
        }
        None
    }

    /// The window's oldest entry not used since the hand last looked, passing over the newest
    /// entry while another is left; entries used are promoted (to the window's newest end),
    /// spending `chances`.
    fn window_victim(
        &mut self,
        entries: &mut impl Entries<Meta>,
        chances: &mut usize,
    ) -> Option<SlotId> {
        loop {
            let oldest = self.window.front?;
            if Some(oldest) == self.newest && self.window.len > 1 && *chances > 0 {
                *chances -= 1;
                self.window.rotate(entries);
                continue;
            }
            if *chances > 0 && !entries.is_expired(oldest) && self.used_since(entries, oldest) {
                *chances -= 1;
                self.promote(entries, oldest);
                continue;
            }
            return Some(oldest);
        }
    }

    /// The sketch's frequency for entry `id`, discounted by its priority.
    fn frequency(&self, entries: &impl Entries<Meta>, id: SlotId) -> u8 {
        self.frequency_hashed(entries, id, entries.hash(id))
    }

    /// [`frequency`](Self::frequency), given the entry's hash.
    #[inline]
    fn frequency_hashed(&self, entries: &impl Entries<Meta>, id: SlotId, hash: u64) -> u8 {
        let seen = self.sketch.estimate(hash);
        match entries.meta(id).priority() {
            Priority::Low => 0,
            Priority::Medium => seen / 2,
            Priority::High | Priority::Critical => seen,
        }
    }

    /// What admitting `candidate` would cost: the frequency of `victim`, and when the
    /// candidate is heavier, of the probation entries after it that its admission would evict
    /// too (summed until their weight covers the candidate's, as in moka): a heavy entry must be
    /// used more than all the light ones it displaces.
    fn victims_frequency(
        &self,
        entries: &impl Entries<Meta>,
        victim: SlotId,
        candidate: SlotId,
    ) -> u32 {
        let wanted = entries.weight(candidate);
        let mut weight = entries.weight(victim);
        let mut seen = u32::from(self.frequency(entries, victim));
        if weight >= wanted || entries.meta(victim).segment() != Segment::Probation {
            return seen;
        }
        let mut id = victim;
        for _ in 0..MAX_AGGREGATED_VICTIMS {
            id = List::next(entries, id);
            if Some(id) == self.probation.front {
                break;
            }
            weight += entries.weight(id);
            seen += u32::from(self.frequency(entries, id));
            if weight >= wanted {
                break;
            }
        }
        seen
    }

    /// Evicts from the Critical ring by CLOCK (one second chance per use).
    fn evict_critical(&mut self, entries: &mut impl Entries<Meta>) -> Option<SlotId> {
        let mut chances = self.critical.len;
        loop {
            let id = self.critical.front?;
            if chances > 0 && !entries.is_expired(id) && self.used_since(entries, id) {
                chances -= 1;
                self.promote(entries, id);
                continue;
            }
            self.unlink(entries, id);
            return Some(id);
        }
    }
}

impl Policy for WTinyLfu {
    type Meta = Meta;

    const MAX_SLOTS: usize = PREV_ID as usize + 1;

    fn on_access(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.pending = None;
        let (hash, weight) = (entries.hash(id), entries.weight(id));
        let simulated = Self::simulated(entries.meta(id).segment());
        if self.hit_reports() == HitReports::All {
            // A small shard hears of every hit: each counts and reorders now.
            self.sketch.increment(hash);
            if simulated {
                self.simulate(entries, hash, weight, Request::Hit);
            }
            self.promote(entries, id);
        } else if simulated {
            // A hit on a sampled key, for the miniature caches only: the entry keeps its mark
            // for the hand, which reorders it and counts it in the sketch.
            self.simulate(entries, hash, weight, Request::Hit);
        }
    }

    fn hit_reports(&self) -> HitReports {
        // A table expected to hold at most `EAGER_ENTRIES` (or of unknown size: weighted)
        // hears of every hit.
        if self.reserved.saturating_mul(self.shards) <= EAGER_ENTRIES {
            return HitReports::All;
        }
        self.sizer.hit_reports()
    }

    fn on_insert(&mut self, entries: &mut impl Entries<Meta>, id: SlotId, info: EntryInfo) {
        self.sketch.maintain(self.resident() + 1);
        self.sketch.increment(info.hash);
        if info.priority != Priority::Critical {
            self.simulate(
                entries,
                info.hash,
                info.weight,
                Request::Arriving {
                    after_miss: info.follows_miss,
                },
            );
        }
        entries.meta_mut(id).set_priority(info.priority);
        if info.is_critical() {
            self.push(entries, id, Segment::Critical);
        } else {
            self.push_hashed(entries, id, Segment::Window, Some(info.hash));
            self.newest = Some(id);
            self.pending = self.window_candidate(entries);
        }
    }

    fn key_hint(&self) -> KeyHint {
        self.sketch.hint()
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<Meta>,
        old: SlotId,
        id: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        self.pending = None;
        if self.newest == Some(old) {
            self.newest = Some(id);
        }
        let segment = entries.meta(id).segment();
        if Self::simulated(segment) {
            self.sizer.release(info.hash, old_weight);
            self.sizer.hold(info.hash, info.weight);
        }
        let was_critical = segment == Segment::Critical;
        entries.meta_mut(id).set_priority(info.priority);
        if was_critical != (info.is_critical()) {
            if let Some(list) = self.list(segment) {
                list.replaced(entries, old, id, old_weight, info.weight);
            }
            self.unlink(entries, id);
            let to = if info.is_critical() {
                Segment::Critical
            } else {
                Segment::Protected
            };
            self.push(entries, id, to);
            self.rebalance(entries);
        } else {
            self.sketch.increment(info.hash);
            // A reordering hit, as `promote`'s, the entry leaving `old`'s place in one step.
            // The simulation only counts the three regions' entries, which a move among them
            // leaves as they are.
            let to = match segment {
                Segment::Window => Segment::Window,
                Segment::Probation | Segment::Protected => Segment::Protected,
                Segment::Critical => Segment::Critical,
                Segment::Absent => Segment::Absent,
            };
            if let Some(list) = self.list(segment) {
                list.remove_moved(entries, old, id, old_weight);
                if to != Segment::Window && self.newest == Some(id) {
                    self.newest = None;
                }
                entries.meta_mut(id).set_segment(to);
                if let Some(list) = self.list(to) {
                    list.push_back(entries, id);
                }
            }
            if info.priority != Priority::Critical {
                self.simulate(entries, info.hash, info.weight, Request::Replacing);
            }
            if to == Segment::Protected {
                self.rebalance(entries);
            }
        }
    }

    fn on_remove(&mut self, entries: &mut impl Entries<Meta>, id: SlotId) {
        self.pending = None;
        self.unlink(entries, id);
    }

    fn evict(&mut self, entries: &mut impl Entries<Meta>, spare_critical: bool) -> Option<SlotId> {
        // The insertion just before found the candidate, unless something moved since (a hit
        // on it under a read lock marks it; everything else clears `pending`). Promoting
        // victims below never changes the window.
        let candidate = match self.pending.take() {
            Some(id) if self.window.front == Some(id) => Some(id),
            _ => self.window_candidate(entries),
        };
        // An expired entry the hand can see goes first: the window's oldest or newest, then
        // main's.
        if let Some(expired) = [self.window.front, self.newest]
            .into_iter()
            .flatten()
            .find(|&id| entries.is_expired(id))
        {
            self.unlink(entries, expired);
            return Some(expired);
        }
        let mut chances = self.window.len + self.probation.len + self.protected.len;
        loop {
            let Some(victim) = self.probation.front.or(self.protected.front) else {
                // Main is empty (a window of the whole shard): the window's oldest unused
                // entry, as a CLOCK (an entry used without the policy being told goes to the
                // newest end once, as being told would have moved it), then (if allowed) the
                // Critical ring.
                if let Some(id) = self.window_victim(entries, &mut chances) {
                    self.unlink(entries, id);
                    return Some(id);
                }
                return if spare_critical {
                    None
                } else {
                    self.evict_critical(entries)
                };
            };
            if entries.is_expired(victim) {
                self.unlink(entries, victim);
                return Some(victim);
            }
            if chances > 0 && self.used_since(entries, victim) {
                chances -= 1;
                self.promote(entries, victim);
                continue;
            }
            if let Some(candidate) = candidate {
                // Frequency decides, with the incumbent favoured (see `ADMIT_MARGIN`). A
                // candidate seen no more than the margin loses whatever the victims' count (most
                // new keys of a stream of misses), which spares reading theirs.
                let hash = entries.hash(candidate);
                let seen = u32::from(self.frequency_hashed(entries, candidate, hash));
                if seen <= ADMIT_MARGIN
                    || seen <= self.victims_frequency(entries, victim, candidate) + ADMIT_MARGIN
                {
                    self.unlink_hashed(entries, candidate, Some(hash));
                    return Some(candidate);
                }
                // Admitted: to probation's newest end, and the victim goes.
                self.relink(entries, candidate, Segment::Probation);
            }
            self.unlink(entries, victim);
            return Some(victim);
        }
    }

    fn reserve(&mut self, entries: usize) {
        // The window's sizer needs the shard's size to sample keys for its miniature caches
        // (their memory stays bounded whatever the size). The sketch is sized once, instead of
        // doubling (and copying) as the shard fills, up to a bound: a capacity is an upper
        // bound, and a shard that never fills must not hold a sketch for a size it never
        // reaches.
        let entries = entries.min(u32::MAX as usize);
        self.reserved = self.reserved.max(entries);
        self.sketch.maintain(entries.min(SKETCH_AHEAD));
        self.sizer.reserve(entries);
    }

    fn for_table(shards: usize, mut make: impl FnMut() -> Self) -> alloc::vec::Vec<Self> {
        let mut policies: alloc::vec::Vec<Self> =
            (0..shards).map(|_| Self { shards, ..make() }).collect();
        // Every shard after the first pools its window evidence with the first's.
        if let Some((first, rest)) = policies.split_first_mut() {
            for policy in rest {
                policy.sizer.join(&mut first.sizer);
            }
        }
        policies
    }

    fn clear(&mut self) {
        let (reserved, shards, tuning) = (self.reserved, self.shards, self.sizer.tuning());
        // The sizer forgets what it learnt but keeps its miniature caches' room.
        self.sizer.clear();
        let sizer = core::mem::replace(&mut self.sizer, WindowSizer::new(tuning));
        *self = Self {
            sizer,
            shards,
            ..Self::with_tuning(tuning)
        };
        self.reserve(reserved);
    }

    fn heap_bytes(&self) -> usize {
        self.sketch.heap_bytes() + self.sizer.heap_bytes()
    }
}

#[cfg(test)]
mod meta_tests {
    use super::*;

    #[test]
    fn links_segment_and_priority_share_eight_bytes_without_touching_each_other() {
        let mut meta = Meta::default();
        assert_eq!(meta.segment(), Segment::Absent);
        let segments = [
            Segment::Window,
            Segment::Probation,
            Segment::Protected,
            Segment::Critical,
            Segment::Absent,
        ];
        let priorities = [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Critical,
        ];
        for (i, (&segment, &priority)) in segments
            .iter()
            .cycle()
            .zip(priorities.iter().cycle())
            .take(20)
            .enumerate()
        {
            let (prev, next) = (PREV_ID - i as u32, NEXT_ID - 7 * i as u32);
            meta.set_links(prev, next);
            meta.set_segment(segment);
            meta.set_priority(priority);
            assert_eq!(meta.links(), (prev, next));
            meta.set_prev(i as u32);
            meta.set_next(3 * i as u32);
            assert_eq!(meta.links(), (i as u32, 3 * i as u32));
            assert_eq!((meta.segment(), meta.priority()), (segment, priority));
        }
    }
}

#[cfg(test)]
mod replace_tests;
