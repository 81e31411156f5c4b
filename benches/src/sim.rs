//! The trace simulator's core: replays a trace through one cache at one capacity and counts
//! hits. Every subject is driven the same way a program would drive it: a lookup, and on a
//! miss an insertion (objects heavier than the whole cache are never admitted).

use std::hash::BuildHasher;
use std::str::FromStr;

use stratacache::l2::Shard;
use stratacache::l2::policy::Lru;

use crate::trace::Request;

/// What a simulation replays the trace through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Exact LRU: `stratacache`'s `Lru` policy in one shard, hits reordering at once.
    Lru,
    /// The real `stratacache::Cache` with default settings (L1 and L2), through `get` and
    /// `insert`.
    Default,
    /// moka's `sync::Cache`.
    Moka,
    /// quick_cache's `sync::Cache`.
    QuickCache,
    /// mini-moka's `sync::Cache`.
    MiniMoka,
}

impl Subject {
    /// Every subject, in table order.
    pub const ALL: [Self; 5] = [
        Self::Lru,
        Self::Default,
        Self::Moka,
        Self::QuickCache,
        Self::MiniMoka,
    ];

    /// The name used on the command line and in results.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lru => "lru",
            Self::Default => "default",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::MiniMoka => "mini_moka",
        }
    }

    /// Whether `threads` > 1 replays concurrently (single-shard policies run on one thread).
    pub const fn concurrent(self) -> bool {
        !matches!(self, Self::Lru)
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

/// Replays `requests` through `subject` holding at most `capacity` entries, or, `weighted`,
/// at most `capacity` bytes of objects (an object's weight is its size). With `threads` > 1,
/// concurrent subjects replay the trace split round-robin over that many threads.
pub fn simulate(
    subject: Subject,
    requests: &[Request],
    capacity: u64,
    weighted: bool,
    threads: usize,
) -> Outcome {
    let weight = |r: &Request| if weighted { u64::from(r.size) } else { 1 };
    let threads = if subject.concurrent() {
        threads.max(1)
    } else {
        1
    };
    let hits = match subject {
        Subject::Lru => {
            let hasher = foldhash::fast::FixedState::with_seed(7);
            let mut shard: Shard<u64, (), Lru> = Shard::with_policy(Lru::new());
            let mut hits = 0;
            for r in requests {
                let hash = hasher.hash_one(r.key);
                if shard.access(hash, &r.key).is_some() {
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
        Subject::Default if weighted => {
            let cache = stratacache::Cache::builder()
                .capacity(capacity)
                .weigher(|_: &u64, size: &u32| u64::from(*size))
                .build()
                .expect("a positive capacity");
            replay(requests, threads, |r| {
                let hit = cache.get(&r.key).is_some();
                if !hit {
                    // Refused when heavier than the whole cache: not admitted.
                    let _ = cache.insert(r.key, r.size);
                }
                hit
            })
        }
        Subject::Default => {
            let cache: stratacache::Cache<u64, u32> = stratacache::Cache::builder()
                .capacity(capacity)
                .build()
                .expect("a positive capacity");
            replay(requests, threads, |r| {
                let hit = cache.get(&r.key).is_some();
                if !hit {
                    let _ = cache.insert(r.key, r.size);
                }
                hit
            })
        }
        Subject::QuickCache => {
            let cache = quick_cache::sync::Cache::<u64, u32, SizeWeighter>::with_weighter(
                usize::try_from(if weighted { capacity / 4096 } else { capacity })
                    .unwrap_or(usize::MAX)
                    .max(1),
                capacity,
                SizeWeighter { weighted },
            );
            replay(requests, threads, |r| {
                cache.get(&r.key).is_some() || {
                    if weight(r) <= capacity {
                        cache.insert(r.key, r.size);
                    }
                    false
                }
            })
        }
        Subject::Moka => {
            let cache = moka::sync::Cache::<u64, u32>::builder()
                .max_capacity(capacity)
                .weigher(move |_, size: &u32| if weighted { *size } else { 1 })
                .build();
            replay(requests, threads, |r| {
                cache.get(&r.key).is_some() || {
                    if weight(r) <= capacity {
                        cache.insert(r.key, r.size);
                    }
                    false
                }
            })
        }
        Subject::MiniMoka => {
            let cache = mini_moka::sync::Cache::<u64, u32>::builder()
                .max_capacity(capacity)
                .weigher(move |_, size: &u32| if weighted { *size } else { 1 })
                .build();
            replay(requests, threads, |r| {
                cache.get(&r.key).is_some() || {
                    if weight(r) <= capacity {
                        cache.insert(r.key, r.size);
                    }
                    false
                }
            })
        }
    };
    Outcome {
        requests: requests.len() as u64,
        hits,
    }
}

/// Runs `access` on every request (true = hit), on `threads` threads taking the requests
/// round-robin, and counts the hits.
fn replay(requests: &[Request], threads: usize, access: impl Fn(&Request) -> bool + Sync) -> u64 {
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
