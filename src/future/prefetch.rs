//! Prefetching for the async facade: the detectors, their tables and counters (see
//! [`Prefetch`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::hash::{BuildHasher, Hash};
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::hash::FixedState;

/// A future the spawner runs to completion in the background.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type Next<K> = Arc<dyn Fn(&K) -> Option<K> + Send + Sync>;
type Neighbours<K> = Arc<dyn Fn(&K, &mut Vec<K>) + Send + Sync>;

/// Prefetching for the async facade: detectors that guess which keys a caller will ask for
/// next, and loads of those keys through the caller's loader, in the background, within a
/// budget of loads in flight.
///
/// - **Sequential**: a key that follows the one before it (by a `next` function: `k + 1`,
///   the next chunk of a file) twice in a row starts a run; the keys after it are loaded,
///   `depth` of them. Runs are told apart by key, not by caller, so interleaved streams each
///   keep theirs.
/// - **Spatial**: the neighbours of each key asked for (a function the user gives: the tiles
///   around a player, the entities in the same cell) are loaded if absent.
/// - **Temporal**: when key B was asked for right after key A on the same thread, the next
///   request for A loads B (a table of 4,096 pairs, the newest kept).
///
/// [`PrefetchStats`] counts loads issued, used (asked for before they left the cache), wasted
/// (gone unused), failed, and dropped for the budget, so a user can see whether it pays.
/// Give it to [`AsyncCache::prefetching`](super::AsyncCache::prefetching).
pub struct Prefetch<K> {
    pub(super) next: Option<(Next<K>, usize)>,
    pub(super) neighbours: Option<Neighbours<K>>,
    pub(super) temporal: bool,
    pub(super) in_flight: usize,
}

impl<K> Default for Prefetch<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Prefetch<K> {
    /// No detector yet, 32 loads in flight at most.
    pub fn new() -> Self {
        Self {
            next: None,
            neighbours: None,
            temporal: false,
            in_flight: 32,
        }
    }

    /// Sequential runs: `next` gives the key after a key (`None`: the last); a run loads the
    /// `depth` keys after the one asked for.
    #[must_use]
    pub fn sequential(
        mut self,
        next: impl Fn(&K) -> Option<K> + Send + Sync + 'static,
        depth: usize,
    ) -> Self {
        self.next = Some((Arc::new(next), depth.max(1)));
        self
    }

    /// Spatial neighbours: `neighbours` pushes the keys near a key.
    #[must_use]
    pub fn spatial(mut self, neighbours: impl Fn(&K, &mut Vec<K>) + Send + Sync + 'static) -> Self {
        self.neighbours = Some(Arc::new(neighbours));
        self
    }

    /// Temporal pairs: B asked for right after A, on one thread, is loaded on A's next request.
    #[must_use]
    pub fn temporal(mut self) -> Self {
        self.temporal = true;
        self
    }

    /// The most prefetches loading at once (default 32; at least 1): a guess beyond it is
    /// dropped (and counted).
    #[must_use]
    pub fn in_flight(mut self, loads: usize) -> Self {
        self.in_flight = loads.max(1);
        self
    }
}

/// What prefetching did since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrefetchStats {
    /// Loads started for keys guessed.
    pub issued: u64,
    /// Prefetched keys asked for while still in the cache.
    pub used: u64,
    /// Prefetched keys that left the cache, or were pushed out of the record of prefetched
    /// keys, before anyone asked for them.
    pub wasted: u64,
    /// Prefetches whose load failed (nothing stored).
    pub failed: u64,
    /// Guesses not loaded: the budget of loads in flight was spent.
    pub dropped: u64,
}

/// The most prefetched keys remembered as not yet used (older ones count as wasted).
const MARKS: usize = 16_384;
/// Slots of the sequential and temporal tables.
const TABLE: usize = 4_096;

/// The detectors' state and the counters.
pub(super) struct State<K> {
    pub(super) settings: Prefetch<K>,
    hasher: FixedState,
    /// Sequential: the key each slot expects next (a run's second step), by the key's hash.
    expected: Mutex<Vec<Option<K>>>,
    /// Temporal: the key that followed each key last time, by the first key's hash.
    followers: Mutex<Vec<Option<(u64, K)>>>,
    /// Prefetched keys not yet asked for.
    marks: Mutex<Marks<K>>,
    pub(super) loading: AtomicUsize,
    pub(super) issued: AtomicU64,
    pub(super) used: AtomicU64,
    pub(super) wasted: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) dropped: AtomicU64,
}

std::thread_local! {
    /// The last key's hash asked for on this thread, and whose prefetcher asked (the temporal
    /// detector's "just before").
    static LAST: core::cell::Cell<(usize, u64)> = const { core::cell::Cell::new((0, 0)) };
}

impl<K: Hash + Eq + Clone> State<K> {
    pub(super) fn new(settings: Prefetch<K>) -> Self {
        Self {
            settings,
            hasher: FixedState::with_seed(0x5eed),
            expected: Mutex::new((0..TABLE).map(|_| None).collect()),
            followers: Mutex::new((0..TABLE).map(|_| None).collect()),
            marks: Mutex::new(Marks {
                live: hashbrown::HashMap::with_hasher(FixedState::with_seed(0x3a7c)),
                order: alloc::collections::VecDeque::new(),
                next: 0,
            }),
            loading: AtomicUsize::new(0),
            issued: AtomicU64::new(0),
            used: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn slot(&self, key: &K) -> usize {
        self.hasher.hash_one(key) as usize % TABLE
    }

    /// A request for `key` (of this prefetcher, `id`): the keys worth loading now. The
    /// user's functions (`next`, `neighbours`) run with no lock held.
    pub(super) fn observe(&self, id: usize, key: &K) -> Vec<K> {
        let mut guesses = Vec::new();
        if let Some((next, depth)) = &self.settings.next {
            let mut at = next(key);
            let in_run = {
                let mut expected = lock(&self.expected);
                let in_run = expected[self.slot(key)].as_ref() == Some(key);
                if let Some(after) = &at {
                    expected[self.slot(after)] = Some(after.clone());
                }
                in_run
            };
            if in_run {
                for _ in 0..*depth {
                    let Some(key) = at else { break };
                    at = next(&key);
                    guesses.push(key);
                }
            }
        }
        if let Some(neighbours) = &self.settings.neighbours {
            neighbours(key, &mut guesses);
        }
        if self.settings.temporal {
            let hash = self.hasher.hash_one(key);
            let (last_id, last) = LAST.with(|last| last.replace((id, hash)));
            let mut followers = lock(&self.followers);
            if last_id == id && last != hash {
                followers[last as usize % TABLE] = Some((last, key.clone()));
            }
            if let Some((first, follower)) = &followers[hash as usize % TABLE]
                && *first == hash
            {
                guesses.push(follower.clone());
            }
        }
        guesses
    }

    /// Remembers that `key` (which the cache does not hold) is being prefetched; `false` if
    /// an earlier prefetch of it is still loading: no second load. One that landed and left
    /// the cache unasked counts as wasted.
    pub(super) fn mark(&self, key: &K) -> bool {
        let mut marks = lock(&self.marks);
        match marks.live.get(key) {
            Some((_, false)) => return false,
            Some((_, true)) => {
                self.wasted.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        marks.next += 1;
        let stamp = marks.next;
        marks.live.insert(key.clone(), (stamp, false));
        marks.order.push_back((key.clone(), stamp));
        while marks.live.len() > MARKS {
            let Some((old, stamp)) = marks.order.pop_front() else {
                break;
            };
            // Entries asked for since are gone from `live` (or marked again, newer).
            if marks.live.get(&old).is_some_and(|&(s, _)| s == stamp) {
                marks.live.remove(&old);
                self.wasted.fetch_add(1, Ordering::Relaxed);
            }
        }
        // The order keeps stale entries until they reach its front: bounded at twice.
        if marks.order.len() > 2 * MARKS {
            let Marks { live, order, .. } = &mut *marks;
            order.retain(|(key, stamp)| live.get(key).is_some_and(|(s, _)| s == stamp));
        }
        true
    }

    /// A prefetch of `key` finished loading.
    pub(super) fn landed(&self, key: &K) {
        if let Some((_, landed)) = lock(&self.marks).live.get_mut(key) {
            *landed = true;
        }
    }

    /// A request for `key`, which the cache held (`hit`): a prefetch used if it was one and
    /// the request found its value or joined its load still running; wasted if its value
    /// came and left before the request.
    pub(super) fn asked(&self, key: &K, hit: bool) {
        if let Some((_, landed)) = lock(&self.marks).live.remove(key) {
            let counter = if hit || !landed {
                &self.used
            } else {
                &self.wasted
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters, with the landed prefetches `gone` says left the cache counted as wasted.
    pub(super) fn stats(&self, gone: impl Fn(&K) -> bool) -> PrefetchStats {
        let mut marks = lock(&self.marks);
        let before = marks.live.len();
        marks
            .live
            .retain(|key, &mut (_, landed)| !(landed && gone(key)));
        let left = (before - marks.live.len()) as u64;
        drop(marks);
        self.wasted.fetch_add(left, Ordering::Relaxed);
        PrefetchStats {
            issued: self.issued.load(Ordering::Relaxed),
            used: self.used.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Prefetched keys not yet asked for: each with the stamp of its marking, and the order of
/// the markings, oldest first (stale entries skipped).
struct Marks<K> {
    /// Each key's marking stamp, and whether its load finished.
    live: hashbrown::HashMap<K, (u64, bool), FixedState>,
    order: alloc::collections::VecDeque<(K, u64)>,
    next: u64,
}

/// Locks, going on past a poisoned lock (holders run only this module's code).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a [`Prefetching`](super::Prefetching) cache's values come from: an async function of the key, which may
/// fail. Implemented for every `Fn(K) -> impl Future<Output = Result<V, E>>`.
pub trait Loader<K, V>: Send + Sync + 'static {
    /// Why a load failed.
    type Error: Send + Sync + 'static;
    /// Loads the value of `key`.
    fn load(&self, key: K) -> impl Future<Output = Result<V, Self::Error>> + Send + 'static;
}

impl<K, V, E, F, Fut> Loader<K, V> for F
where
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
    E: Send + Sync + 'static,
{
    type Error = E;

    fn load(&self, key: K) -> impl Future<Output = Result<V, E>> + Send + 'static {
        self(key)
    }
}

/// Gives back a load's place in the budget when the load ends, or is dropped unfinished.
pub(super) struct BudgetSlot<'a>(pub(super) &'a AtomicUsize);

impl Drop for BudgetSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
