//! Statistics without a shared contended atomic on the hit path: counters striped per thread
//! (per handle without `std`), summed when read.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU32, AtomicUsize, Ordering};

/// What the cache counts.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Event {
    L1Hit,
    L2Hit,
    /// A lookup answered by the persistent tier (feature `persistent`).
    #[cfg_attr(not(feature = "persistent"), allow(dead_code))]
    L3Hit,
    Miss,
    Insert,
    Promotion,
    EvictedCapacity,
    Expired,
    Replaced,
    Removed,
}

const EVENTS: usize = Event::Removed as usize + 1;

/// One stripe's counters, on cache lines of their own, and the low 32 bits of the hash of the
/// stripe's latest miss (see [`Counters::miss`]; 32, which every target has atomics for).
#[derive(Default)]
struct Stripe([AtomicUsize; EVENTS], AtomicU32);

/// Adds `n` to a stripe's `counter`.
#[inline]
fn bump(counter: &AtomicUsize, n: usize) {
    // Relaxed: statistics only; see [`Counters`] for why this is not a fetch_add.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Counters striped so that each thread (or handle) writes its own stripe.
///
/// A stripe is chosen once per thread (per handle without `std`), round-robin; with
/// `stripes` at four per CPU, threads share a stripe only when there are more than that. A
/// count is a relaxed load and store on the thread's own stripe, not a read-modify-write:
/// no locked instruction on the hit path. Two threads sharing a stripe *at the same moment*
/// may lose an increment, so counts are exact up to that (documented on [`CacheStats`]).
pub(crate) struct Counters {
    stripes: Box<[CachePadded<Stripe>]>,
    mask: usize,
    next: AtomicUsize,
}

impl Counters {
    pub(crate) fn new(stripes: usize) -> Self {
        let stripes = stripes.next_power_of_two().max(1);
        let mut list = Vec::with_capacity(stripes);
        list.extend((0..stripes).map(|_| CachePadded::new(Stripe::default())));
        Self {
            stripes: list.into_boxed_slice(),
            mask: stripes - 1,
            next: AtomicUsize::new(0),
        }
    }

    /// A stripe for a new handle.
    pub(crate) fn assign(&self) -> usize {
        // Relaxed: any distinct-enough number will do.
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn add(&self, stripe: usize, event: Event, n: usize) {
        bump(&self.stripes[stripe & self.mask].0[event as usize], n);
    }

    /// Counts a miss on a key of `hash` on `stripe` (the caller's own), and remembers it:
    /// whether the caller's next insertion stores that key is what
    /// [`EntryInfo::follows_miss`] tells the policy. The miss's stats line, so no other line
    /// is written.
    ///
    /// [`EntryInfo::follows_miss`]: crate::policy::EntryInfo::follows_miss
    #[inline]
    pub(crate) fn miss(&self, stripe: usize, hash: u64) {
        let Stripe(counters, noted) = &*self.stripes[stripe & self.mask];
        bump(&counters[Event::Miss as usize], 1);
        // Relaxed: a hint; a thread sharing the stripe at the same moment may replace it, which
        // only misjudges one insertion.
        noted.store(hash as u32, Ordering::Relaxed);
    }

    /// Whether the latest miss on `stripe` was on a key of `hash` (forgotten either way, so
    /// a later store of the key does not count as following it).
    #[inline]
    pub(crate) fn take_miss(&self, stripe: usize, hash: u64) -> bool {
        let slot = &self.stripes[stripe & self.mask].1;
        // Relaxed: see `miss`. A load first: a stripe without a miss is not written.
        let noted = slot.load(Ordering::Relaxed);
        if noted == 0 {
            return false;
        }
        slot.store(0, Ordering::Relaxed);
        noted == hash as u32
    }

    /// The count of `event` on `stripe` (the caller's own).
    #[inline]
    pub(crate) fn get(&self, stripe: usize, event: Event) -> usize {
        // Relaxed: statistics only.
        self.stripes[stripe & self.mask].0[event as usize].load(Ordering::Relaxed)
    }

    fn sum(&self, event: Event) -> u64 {
        self.stripes
            .iter()
            // Relaxed: a moment's view.
            .map(|s| s.0[event as usize].load(Ordering::Relaxed) as u64)
            .sum()
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            l1_hits: self.sum(Event::L1Hit),
            l2_hits: self.sum(Event::L2Hit),
            l3_hits: self.sum(Event::L3Hit),
            misses: self.sum(Event::Miss),
            inserts: self.sum(Event::Insert),
            promotions: self.sum(Event::Promotion),
            evicted_capacity: self.sum(Event::EvictedCapacity),
            expired: self.sum(Event::Expired),
            replaced: self.sum(Event::Replaced),
            removed: self.sum(Event::Removed),
            ..CacheStats::default()
        }
    }
}

/// The calling thread's stripe under `std`: handed out round-robin, once per thread, shared by
/// every cache.
#[cfg(all(feature = "std", not(loom)))]
#[inline]
pub(crate) fn thread_stripe() -> usize {
    with_thread_caller(|stripe, _| stripe)
}

/// Runs `f` with the calling thread's stripe and lookup sampler (one thread-local for both,
/// shared by every cache): what a plain call on a [`Cache`](crate::Cache) looks up with.
#[cfg(all(feature = "std", not(loom)))]
#[inline]
pub(crate) fn with_thread_caller<R>(f: impl FnOnce(usize, &Sampler) -> R) -> R {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        // Relaxed: any distinct-enough number will do.
        static CALLER: (usize, Sampler) = (NEXT.fetch_add(1, Ordering::Relaxed), Sampler::per_thread());
    }
    // With `metrics` the sampler is the thread's, and `f` counts it down inside the access.
    #[cfg(feature = "metrics")]
    return CALLER.with(|(stripe, sampler)| f(*stripe, sampler));
    // Without it the sampler is empty: only the stripe is read, and `f` (the whole lookup)
    // runs after the access instead of inside `LocalKey::with`'s call.
    #[cfg(not(feature = "metrics"))]
    {
        let stripe = CALLER.with(|(stripe, _)| *stripe);
        f(stripe, &Sampler {})
    }
}

/// Picks the lookups whose latency is timed into the metrics' histogram (feature `metrics`):
/// one in [`SAMPLE_EVERY`]. It counts down where the caller's stripe lives (the thread's
/// slot, a handle or a frame), so a lookup pays a decrement and a branch of memory only its
/// thread writes, named cache or not; the cache's name is read only when the count runs out.
/// Without the feature it is empty.
pub(crate) struct Sampler {
    #[cfg(feature = "metrics")]
    left: core::cell::Cell<u32>,
}

/// One lookup in this many is timed (per thread, handle or frame).
#[cfg(feature = "metrics")]
pub(crate) const SAMPLE_EVERY: u32 = 1_024;

impl Sampler {
    /// A sampler for a caller of a cache that times lookups (`timed`) or not. A timing one
    /// starts at a phase drawn per thread, so that frames shorter than [`SAMPLE_EVERY`]
    /// lookups are still sampled at that rate on average.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(timed: bool) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            left: core::cell::Cell::new(if timed { phase() } else { u32::MAX }),
        }
    }

    /// The sampler of a thread's plain calls: it times (the cache's name decides) one lookup
    /// in [`SAMPLE_EVERY`] from the thread's first.
    #[cfg(all(feature = "std", not(loom)))]
    fn per_thread() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            left: core::cell::Cell::new(SAMPLE_EVERY),
        }
    }

    /// Counts a lookup: whether the count ran out (then the caller asks [`rearm`](Self::rearm)
    /// whether to time this one).
    #[cfg(feature = "metrics")]
    #[inline(always)]
    pub(crate) fn tick(&self) -> bool {
        let left = self.left.get().wrapping_sub(1);
        self.left.set(left);
        left == 0
    }

    /// Starts the next count, and says whether to time the lookup that ran it out.
    #[cfg(feature = "metrics")]
    #[cold]
    pub(crate) fn rearm(&self, timed: bool) -> bool {
        self.left.set(if timed { SAMPLE_EVERY } else { u32::MAX });
        timed
    }
}

/// A phase in `1..=SAMPLE_EVERY`, from a per-thread xorshift.
#[cfg(feature = "metrics")]
fn phase() -> u32 {
    std::thread_local! {
        static STATE: core::cell::Cell<u32> = const { core::cell::Cell::new(0x9E37_79B9) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        x % SAMPLE_EVERY + 1
    })
}

/// A snapshot of a cache's statistics, from [`Cache::stats`](crate::Cache::stats).
///
/// Event counts are kept per thread (per handle without `std`) and summed here, so the hit
/// path writes no shared cache line. They are exact unless more threads than stripes (four per
/// CPU) use the cache at the same moment, when racing increments on a shared stripe can be
/// lost; on 32-bit targets they wrap at `u32::MAX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered by L1.
    pub l1_hits: u64,
    /// Lookups answered by L2.
    pub l2_hits: u64,
    /// Lookups answered by the persistent tier (feature `persistent`), the value taken back
    /// into L2.
    pub l3_hits: u64,
    /// Lookups that found nothing (or only an expired entry).
    pub misses: u64,
    /// Successful insertions (replacements included).
    pub inserts: u64,
    /// Copies made into L1 after enough L2 hits.
    pub promotions: u64,
    /// Entries evicted to stay within capacity.
    pub evicted_capacity: u64,
    /// Expired entries reclaimed (by the eviction hand, a lookup or
    /// [`evict_expired`](crate::Cache::evict_expired)).
    pub expired: u64,
    /// Values replaced by an insertion for the same key.
    pub replaced: u64,
    /// Entries removed by `remove` or `clear`.
    pub removed: u64,
    /// Entries in the cache when the snapshot was taken.
    pub entries: u64,
    /// Their total weight.
    pub weighted_size: u64,
    /// Heap bytes the cache's own structures hold: L1's sets and nodes, L2's arenas, indexes
    /// and policy history (what keys and values own themselves is not counted).
    pub memory_bytes: u64,
    /// L1 copies replaced, removed or displaced and not freed yet: waiting for the readers
    /// that might still see them, or for a quiet point ([`Cache::collect`], the end of a
    /// frame, the end of a write) to drop them. Promotions pause while this exceeds L1's
    /// capacity, which bounds it.
    ///
    /// [`Cache::collect`]: crate::Cache::collect
    pub retired: u64,
    /// What the L2 shards' arena holds, when the cache has one
    /// ([`CacheBuilder::memory`](crate::CacheBuilder::memory)): reserved, in use, budget.
    pub arena: Option<stratacache_alloc::ArenaStats>,
}

impl CacheStats {
    /// Lookups answered by any tier (L1, L2, and the disk tier if the cache has one).
    pub const fn hits(&self) -> u64 {
        self.l1_hits + self.l2_hits + self.l3_hits
    }

    /// All lookups.
    pub const fn lookups(&self) -> u64 {
        self.hits() + self.misses
    }

    /// Hits per lookup (0 when there was none).
    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits(), self.lookups())
    }

    /// L1 hits per lookup (0 when there was none).
    pub fn l1_hit_ratio(&self) -> f64 {
        ratio(self.l1_hits, self.lookups())
    }

    /// L2 hits per lookup that reached L2 (0 when none did).
    pub fn l2_hit_ratio(&self) -> f64 {
        ratio(self.l2_hits, self.l2_hits + self.l3_hits + self.misses)
    }

    /// Disk-tier hits per lookup that reached it (0 when none did, or without a disk tier).
    pub fn l3_hit_ratio(&self) -> f64 {
        ratio(self.l3_hits, self.l3_hits + self.misses)
    }

    /// Entries the cache dropped on its own: for capacity or expiry.
    pub const fn evictions(&self) -> u64 {
        self.evicted_capacity + self.expired
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
