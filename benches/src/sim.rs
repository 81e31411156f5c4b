//! The trace simulator's core: replays a trace through one cache at one capacity and counts
//! hits. Every subject is driven the same way a program would drive it: a lookup, and on a
//! miss an insertion (objects heavier than the whole cache are never admitted).

use std::hash::BuildHasher;

use mini_moka::sync::ConcurrentCacheExt as _;
use std::str::FromStr;

use stratacache::policy::Harness;
use stratacache::policy::ProbationClock;
use stratacache::policy::{
    ArcPolicy, ClockPolicy, Lfu, Lru, Policy, Predictive, S3Fifo, Sieve, WTinyLfu, WindowTuning,
};

use crate::trace::Request;

/// What a simulation replays the trace through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Exact LRU: `stratacache`'s `Lru` policy in one shard, hits reordering at once.
    Lru,
    /// CLOCK with 2-bit counters, one shard.
    Clock,
    /// SIEVE, one shard.
    Sieve,
    /// S3-FIFO as the paper has it (exact ghost), one shard.
    S3Fifo,
    /// W-TinyLFU (adaptive window, segmented LRU, frequency-sketch admission): the default
    /// cache's L2 policy, alone in one shard.
    WTinyLfu,
    /// The same with its window fixed at 1 % (no miniature simulations): what the adaptive
    /// window buys.
    WTinyLfuFixed,
    /// The same with its window moved by Caffeine's hill climber instead of miniature
    /// simulations: what the simulations buy over the cheaper adaptation.
    WTinyLfuClimber,
    /// ARC (adaptive: recency and frequency lists with ghosts), one shard.
    Arc,
    /// LFU with ageing, one shard.
    Lfu,
    /// The predictive policy (online-learned scores, sampled eviction), one shard.
    Predictive,
    /// The S3-FIFO-family policy (probationary FIFO, ghost, CLOCK; the default before
    /// W-TinyLFU), one shard.
    ProbationClock,
    /// The real `stratacache::Cache` with default settings (L1 and L2; a fixed hash seed so
    /// runs repeat exactly), through `get` and `insert`.
    Default,
    /// The same without L1 (`l1_entries(0)`): beside `default`, what L1 costs or gains the
    /// hit ratio (its hits must reach the L2 policy as real uses).
    DefaultNoL1,
    /// moka's `sync::Cache`.
    Moka,
    /// quick_cache's `sync::Cache`.
    QuickCache,
    /// mini-moka's `sync::Cache`.
    MiniMoka,
    /// Belady's offline optimum (evicts the entry needed furthest in the future, and does not
    /// admit an object needed later than everything cached): the ceiling.
    Belady,
}

impl Subject {
    /// Every subject, in table order.
    pub const ALL: [Self; 17] = [
        Self::Lru,
        Self::Clock,
        Self::Sieve,
        Self::S3Fifo,
        Self::WTinyLfu,
        Self::WTinyLfuFixed,
        Self::WTinyLfuClimber,
        Self::Arc,
        Self::Lfu,
        Self::Predictive,
        Self::ProbationClock,
        Self::Default,
        Self::DefaultNoL1,
        Self::Moka,
        Self::QuickCache,
        Self::MiniMoka,
        Self::Belady,
    ];

    /// The name used on the command line and in results.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lru => "lru",
            Self::Clock => "clock",
            Self::Sieve => "sieve",
            Self::S3Fifo => "s3fifo",
            Self::WTinyLfu => "wtinylfu",
            Self::WTinyLfuFixed => "wtinylfu_fixed",
            Self::WTinyLfuClimber => "wtinylfu_climber",
            Self::Arc => "arc",
            Self::Lfu => "lfu",
            Self::Predictive => "predictive",
            Self::ProbationClock => "probation_clock",
            Self::Default => "default",
            Self::DefaultNoL1 => "default_no_l1",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::MiniMoka => "mini_moka",
            Self::Belady => "belady",
        }
    }

    /// Whether `threads` > 1 replays concurrently (single-shard policies and Belady run on
    /// one thread).
    pub const fn concurrent(self) -> bool {
        matches!(
            self,
            Self::Default | Self::DefaultNoL1 | Self::Moka | Self::QuickCache | Self::MiniMoka
        )
    }
}

impl FromStr for Subject {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|subject| subject.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown policy `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How the simulated caches are set up beyond their capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Weigh each object by its size (the capacity is then in bytes).
    pub weighted: bool,
    /// Threads for concurrent subjects (the trace is split round-robin).
    pub threads: usize,
    /// L2 shards of the `default` cache (`None`: its default, four per CPU but at most one per
    /// 256 entries).
    pub shards: Option<usize>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            weighted: false,
            threads: 1,
            shards: None,
        }
    }
}

/// How a replay went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that hit.
    pub hits: u64,
}

impl Outcome {
    /// Hits per request, in percent.
    pub fn hit_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.requests as f64
        }
    }

    /// Requests that missed.
    pub fn misses(&self) -> u64 {
        self.requests - self.hits
    }
}

/// Replays `requests` through `subject` holding at most `capacity` entries, or, weighted, at
/// most `capacity` bytes of objects (an object's weight is its size).
pub fn simulate(subject: Subject, requests: &[Request], capacity: u64, setup: Setup) -> Outcome {
    let weighted = setup.weighted;
    let weight = move |r: &Request| if weighted { u64::from(r.size) } else { 1 };
    let threads = if subject.concurrent() {
        setup.threads.max(1)
    } else {
        1
    };
    // Peers admit every object no heavier than the whole cache.
    let admit = |r: &Request, insert: &dyn Fn()| {
        if weight(r) <= capacity {
            insert();
        }
    };
    let hits = match subject {
        Subject::Lru => in_one_shard(Lru::new(), requests, capacity, weighted),
        Subject::Clock => in_one_shard(ClockPolicy::<2>::new(), requests, capacity, weighted),
        Subject::Sieve => in_one_shard(Sieve::new(), requests, capacity, weighted),
        Subject::S3Fifo => in_one_shard(S3Fifo::new(), requests, capacity, weighted),
        Subject::WTinyLfu => in_one_shard(WTinyLfu::new(), requests, capacity, weighted),
        Subject::WTinyLfuFixed => in_one_shard(
            WTinyLfu::with_tuning(WindowTuning::fixed(1)),
            requests,
            capacity,
            weighted,
        ),
        Subject::WTinyLfuClimber => in_one_shard(
            WTinyLfu::with_tuning(WindowTuning::climbing()),
            requests,
            capacity,
            weighted,
        ),
        Subject::Arc => in_one_shard(ArcPolicy::new(), requests, capacity, weighted),
        Subject::Lfu => in_one_shard(Lfu::new(), requests, capacity, weighted),
        Subject::Predictive => in_one_shard(Predictive::new(), requests, capacity, weighted),
        Subject::ProbationClock => {
            in_one_shard(ProbationClock::new(), requests, capacity, weighted)
        }
        Subject::Belady => belady(requests, capacity, weight),
        Subject::Default | Subject::DefaultNoL1 => {
            let l1 = (subject == Subject::DefaultNoL1).then_some(0);
            default_cache(requests, capacity, setup, l1)
        }
        Subject::QuickCache => {
            // A fixed hasher seed, so a rerun replays the same cache: quick_cache's default
            // hasher is seeded at random, which moved its hit ratios between runs.
            let cache = quick_cache::sync::Cache::<u64, u32, SizeWeighter, _>::with(
                usize::try_from(if weighted { capacity / 4096 } else { capacity })
                    .unwrap_or(usize::MAX)
                    .max(1),
                capacity,
                SizeWeighter { weighted },
                PEER_HASHER,
                Default::default(),
            );
            replay(
                requests,
                threads,
                |r| cache.get(&r.key).is_some(),
                |r| admit(r, &|| cache.insert(r.key, r.size)),
            )
        }
        Subject::Moka => {
            let cache = moka::sync::Cache::<u64, u32>::builder()
                .max_capacity(capacity)
                .weigher(move |_, size: &u32| if weighted { *size } else { 1 })
                .build_with_hasher(PEER_HASHER);
            // Moka applies an insertion's evictions later, in batches: until its next
            // maintenance pass it holds up to 64 entries beyond its capacity (164 at a
            // capacity of 100 on sprite). Running the pending work after every insertion
            // measures it at the capacity it was given, like every other subject.
            replay(
                requests,
                threads,
                |r| cache.get(&r.key).is_some(),
                |r| {
                    admit(r, &|| cache.insert(r.key, r.size));
                    cache.run_pending_tasks();
                },
            )
        }
        Subject::MiniMoka => {
            let cache = mini_moka::sync::Cache::<u64, u32>::builder()
                .max_capacity(capacity)
                .weigher(move |_, size: &u32| if weighted { *size } else { 1 })
                .build_with_hasher(PEER_HASHER);
            // As moka: its evictions are batched, so it is brought within capacity after
            // every insertion.
            replay(
                requests,
                threads,
                |r| cache.get(&r.key).is_some(),
                |r| {
                    admit(r, &|| cache.insert(r.key, r.size));
                    cache.sync();
                },
            )
        }
    };
    Outcome {
        requests: requests.len() as u64,
        hits,
    }
}

/// Hits of the real `stratacache::Cache` with default settings but a fixed hash seed (so that
/// results repeat), `l1` entries of L1 if given, through `get` and `insert`. Weighted, an
/// insertion heavier than the whole cache is refused: not admitted.
fn default_cache(requests: &[Request], capacity: u64, setup: Setup, l1: Option<usize>) -> u64 {
    // One set-up for both weigher types (a counting cache has no weigher at all: its shards
    // are sized for the capacity, which a weighted cache's cannot be).
    macro_rules! replay_through {
        ($builder:expr) => {{
            let mut builder = $builder;
            if let Some(shards) = setup.shards {
                builder = builder.shards(shards);
            }
            if let Some(entries) = l1 {
                builder = builder.l1_entries(entries);
            }
            let cache = builder.build().expect("a positive capacity");
            replay(
                requests,
                setup.threads.max(1),
                |r| cache.get(&r.key).is_some(),
                |r| drop(cache.insert(r.key, r.size)),
            )
        }};
    }
    let builder = stratacache::Cache::<u64, u32, _>::builder()
        .hasher(stratacache::hash::FixedState::with_seed(0x5EED))
        .capacity(capacity);
    if setup.weighted {
        replay_through!(builder.weigher(|_: &u64, size: &u32| u64::from(*size)))
    } else {
        replay_through!(builder)
    }
}

/// Replays `requests` through one shard evicting by `policy` (any [`Policy`], including ones
/// configured beyond `Subject`'s rows), at `capacity` entries or, weighted, bytes.
pub fn simulate_policy<P: Policy>(
    policy: P,
    requests: &[Request],
    capacity: u64,
    weighted: bool,
) -> Outcome {
    Outcome {
        requests: requests.len() as u64,
        hits: in_one_shard(policy, requests, capacity, weighted),
    }
}

/// Replays through one shard evicting by `policy`, with exclusive access (so policies that
/// reorder on a hit, like LRU, are exact). Objects heavier than the cache are not admitted.
fn in_one_shard<P: Policy>(policy: P, requests: &[Request], capacity: u64, weighted: bool) -> u64 {
    let weight = |r: &Request| if weighted { u64::from(r.size) } else { 1 };
    let hasher = foldhash::fast::FixedState::with_seed(7);
    let mut shard: Harness<u64, (), P> = Harness::with_policy(policy);
    if !weighted {
        // As the cache does when the capacity counts entries (policies may size their history
        // for it).
        // Never more than the trace's requests: a larger cache evicts nothing, so its figure is
        // the same, and a capacity beyond the memory (`--size 99999999999999`) must not abort.
        let most = u64::try_from(requests.len()).unwrap_or(u64::MAX);
        shard.reserve(usize::try_from(capacity.min(most)).unwrap_or(usize::MAX));
    }
    let mut hits = 0;
    for r in requests {
        let hash = hasher.hash_one(r.key);
        if shard.get(hash, &r.key).is_some() {
            hits += 1;
            continue;
        }
        let w = weight(r);
        if w > capacity {
            continue;
        }
        shard.insert(hash, r.key, (), w);
        while shard.weight() > capacity {
            shard.evict();
        }
    }
    hits
}

/// Belady's MIN with bypass: on a miss the object is admitted unless it is needed later than
/// everything cached; victims are the objects needed furthest ahead (size-oblivious when
/// weighted, as libCacheSim's "Belady").
fn belady(requests: &[Request], capacity: u64, weight: impl Fn(&Request) -> u64) -> u64 {
    use std::collections::{BinaryHeap, HashMap};
    // next[i]: the index of the next request for the same key (usize::MAX: never).
    let mut next = vec![usize::MAX; requests.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, r) in requests.iter().enumerate().rev() {
        if let Some(&later) = seen.get(&r.key) {
            next[i] = later;
        }
        seen.insert(r.key, i);
    }
    // Cached keys with their next use and weight; a max-heap by next use, with stale records
    // skipped when popped.
    let mut cached: HashMap<u64, (usize, u64)> = HashMap::new();
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut used = 0u64;
    let mut hits = 0;
    for (i, r) in requests.iter().enumerate() {
        let w = weight(r);
        if let Some(entry) = cached.get_mut(&r.key) {
            hits += 1;
            entry.0 = next[i];
            heap.push((next[i], r.key));
            continue;
        }
        if w > capacity || next[i] == usize::MAX {
            continue; // never needed again (or too big): not worth a place
        }
        while used + w > capacity {
            let Some((at, key)) = heap.pop() else { break };
            match cached.get(&key) {
                Some(&(current, _)) if current == at => {
                    if at <= next[i] {
                        // Everything cached is needed sooner than this object: bypass it.
                        heap.push((at, key));
                        break;
                    }
                    let (_, weight) = cached.remove(&key).expect("present");
                    used -= weight;
                }
                _ => {} // stale record
            }
        }
        if used + w <= capacity {
            cached.insert(r.key, (next[i], w));
            heap.push((next[i], r.key));
            used += w;
        }
    }
    hits
}

/// Looks every request up with `hit` and, on a miss, stores it with `admit`, on `threads`
/// threads taking the requests round-robin; counts the hits.
fn replay(
    requests: &[Request],
    threads: usize,
    hit: impl Fn(&Request) -> bool + Sync,
    admit: impl Fn(&Request) + Sync,
) -> u64 {
    let access = |r: &Request| {
        hit(r) || {
            admit(r);
            false
        }
    };
    if threads <= 1 {
        return requests.iter().filter(|r| access(r)).count() as u64;
    }
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let access = &access;
                s.spawn(move || {
                    requests
                        .iter()
                        .skip(t)
                        .step_by(threads)
                        .filter(|r| access(r))
                        .count() as u64
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("replay thread"))
            .sum()
    })
}

/// The peers' hasher: fixed, so their hit ratios are the same on every run (their own defaults
/// are seeded at random).
const PEER_HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5EED);

/// quick_cache's weight: the object size, or 1 per entry.
#[derive(Clone)]
struct SizeWeighter {
    weighted: bool,
}

impl quick_cache::Weighter<u64, u32> for SizeWeighter {
    fn weight(&self, _: &u64, size: &u32) -> u64 {
        if self.weighted { u64::from(*size) } else { 1 }
    }
}
