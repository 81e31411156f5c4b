//! The adaptive window of the default policy, judged by what the cache keeps: readers that
//! only `get` (they never store what they miss) beside a writer that stores keys no one
//! reads. A window that grows there flushes keys the readers will never bring back. The
//! policy tells such callers from read-through ones by what each insertion tells it.

use std::sync::Mutex;

use stratacache::hash::FixedState;
use stratacache::policy::{ClockMeta, ClockPolicy, Entries, EntryInfo, HitReports, Policy, SlotId};
use stratacache::{Cache, UnitWeigher};

/// A small deterministic generator (xorshift64*): the tests need no seeded crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A rank in `0..n`, skewed as a zipf of exponent one (density 1/x).
    fn skewed(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).saturating_sub(1).min(n - 1)
    }
}

fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Fills a cache of `capacity` with ranks `0..capacity`, then alternates a skewed `get` of
/// those ranks (cycling through a fixed sample of them, as a frame's reads repeat) with the
/// store of a new key; the readers' hit ratio in percent over the last half of the run.
fn get_only_beside_a_writer(capacity: u64, reads: u64) -> f64 {
    let cache: Cache<u64, u64, FixedState> = Cache::builder()
        .capacity(capacity)
        .hasher(FixedState::with_seed(0x5EED))
        .build()
        .expect("a positive capacity");
    for rank in 0..capacity {
        cache.insert(key_of(rank), rank).expect("room");
    }
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let sample: Vec<u64> = (0..capacity / 2).map(|_| rng.skewed(capacity)).collect();
    let handle = cache.handle();
    let (mut hits, mut next) = (0u64, capacity);
    for read in 0..reads {
        let rank = sample[read as usize % sample.len()];
        let hit = handle.get(&key_of(rank)).is_some();
        if read >= reads / 2 {
            hits += u64::from(hit);
        }
        cache.insert(key_of(next), next).expect("room");
        next += 1;
    }
    hits as f64 * 100.0 / (reads / 2) as f64
}

#[test]
fn a_window_does_not_grow_to_flush_what_get_only_readers_cannot_bring_back() {
    // A window fixed at 1 % keeps nearly every key read here (99.9 %); larger ones lose more
    // of them (10 %: 99.1; 50 %: 95.0; pure LRU about half), since the writer reaches the
    // fill's hottest keys first, and a key lost is never stored again. The miniature caches
    // once took the keys they lacked back at a reader's hit, as if the reader had stored
    // them, and grew the window to 100 % (18.6 % here).
    let ratio = get_only_beside_a_writer(100_000, 2_000_000);
    assert!(ratio > 99.0, "the readers hit {ratio:.2} %");
}

/// What each insertion told the policy: whether it followed its caller's miss on the key.
static FOLLOWED: Mutex<Vec<(u64, bool)>> = Mutex::new(Vec::new());

/// CLOCK, noting what each insertion tells it.
#[derive(Default)]
struct Noting(ClockPolicy);

impl Policy for Noting {
    type Meta = ClockMeta;

    fn on_insert(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId, info: EntryInfo) {
        FOLLOWED
            .lock()
            .unwrap()
            .push((info.hash, info.follows_miss));
        self.0.on_insert(entries, id, info);
    }

    fn on_access(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId) {
        self.0.on_access(entries, id);
    }

    fn hit_reports(&self) -> HitReports {
        self.0.hit_reports()
    }

    fn on_replace(
        &mut self,
        entries: &mut impl Entries<ClockMeta>,
        old: SlotId,
        new: SlotId,
        old_weight: u64,
        info: EntryInfo,
    ) {
        self.0.on_replace(entries, old, new, old_weight, info);
    }

    fn on_remove(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId) {
        self.0.on_remove(entries, id);
    }

    fn evict(
        &mut self,
        entries: &mut impl Entries<ClockMeta>,
        spare_critical: bool,
    ) -> Option<SlotId> {
        self.0.evict(entries, spare_critical)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[test]
fn an_insertion_tells_the_policy_whether_it_follows_its_callers_miss() {
    let cache: Cache<u64, u64, FixedState, UnitWeigher, Noting> = Cache::builder()
        .capacity(1_000)
        .hasher(FixedState::with_seed(7))
        .policy::<Noting>()
        .build()
        .expect("a positive capacity");
    let followed = || -> Vec<bool> {
        let mut noted = FOLLOWED.lock().unwrap();
        noted.drain(..).map(|(_, followed)| followed).collect()
    };
    // Read-through: a miss, then the same key stored.
    assert!(cache.get(&1).is_none());
    cache.insert(1, 1).unwrap();
    // A store nobody missed; a miss on one key, then another key stored; the missed key
    // stored after that (a store in between took the miss).
    cache.insert(2, 2).unwrap();
    assert!(cache.get(&3).is_none());
    cache.insert(4, 4).unwrap();
    cache.insert(3, 3).unwrap();
    // A loader's value follows its miss, through a handle too.
    cache.get_with(&5, || 5);
    let handle = cache.handle();
    assert!(handle.get(&6).is_none());
    handle.insert(6, 6).unwrap();
    assert_eq!(
        followed(),
        [true, false, false, false, true, true],
        "keys 1, 2, 4, 3, 5, 6"
    );
}
