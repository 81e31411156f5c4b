//! Prefetching: detectors that guess the keys a caller will ask for next, and a cache that
//! loads them in the background through one loader ([`Prefetching`], plain calls; its async
//! twin is `future::Prefetching`). See [`Prefetch`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{BuildHasher, Hash};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::hash::FixedState;
use crate::l2::Weigher;
use crate::l2::policy::{DefaultPolicy, Policy};
use crate::{Cache, DefaultHashBuilder, UnitWeigher};

type Next<K> = Arc<dyn Fn(&K) -> Option<K> + Send + Sync>;
type Neighbours<K> = Arc<dyn Fn(&K, &mut Vec<K>) + Send + Sync>;

/// Prefetching: detectors that guess which keys a caller will ask for
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
/// Give it to [`Cache::prefetching`](crate::Cache::prefetching) or, with the `async` feature,
/// to `AsyncCache::prefetching`.
pub struct Prefetch<K> {
    pub(crate) next: Option<(Next<K>, usize)>,
    pub(crate) neighbours: Option<Neighbours<K>>,
    pub(crate) temporal: bool,
    pub(crate) in_flight: usize,
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
pub(crate) struct State<K> {
    pub(crate) settings: Prefetch<K>,
    hasher: FixedState,
    /// Sequential: the key each slot expects next (a run's second step), by the key's hash.
    expected: Mutex<Vec<Option<K>>>,
    /// Temporal: the key that followed each key last time, by the first key's hash.
    followers: Mutex<Vec<Option<(u64, K)>>>,
    /// Prefetched keys not yet asked for.
    marks: Mutex<Marks<K>>,
    pub(crate) loading: AtomicUsize,
    pub(crate) issued: AtomicU64,
    pub(crate) used: AtomicU64,
    pub(crate) wasted: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

std::thread_local! {
    /// The last key's hash asked for on this thread, and whose prefetcher asked (the temporal
    /// detector's "just before").
    static LAST: core::cell::Cell<(usize, u64)> = const { core::cell::Cell::new((0, 0)) };
}

impl<K: Hash + Eq + Clone> State<K> {
    pub(crate) fn new(settings: Prefetch<K>) -> Self {
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

    /// A request for `key`, which the cache held (`hit`): the prefetch it used or wasted is
    /// counted, and the detectors' guesses come back, to be loaded.
    pub(crate) fn requested(&self, key: &K, hit: bool) -> Vec<K> {
        self.asked(key, hit);
        // This prefetcher's id for the temporal detector: its state's address.
        self.observe(core::ptr::from_ref(self).addr(), key)
    }

    /// A request for `key` (of this prefetcher, `id`): the keys worth loading now. The
    /// user's functions (`next`, `neighbours`) run with no lock held.
    fn observe(&self, id: usize, key: &K) -> Vec<K> {
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

    /// Whether to load `key` (which the cache does not hold) now: within the budget of loads in
    /// flight (a place is taken, given back by the load's [`BudgetSlot`]) and not loading
    /// already. Counted as issued or dropped.
    pub(crate) fn admit(&self, key: &K) -> bool {
        if self.loading.fetch_add(1, Ordering::Relaxed) >= self.settings.in_flight {
            self.loading.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if !self.mark(key) {
            self.loading.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        self.issued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Remembers that `key` (which the cache does not hold) is being prefetched; `false` if
    /// an earlier prefetch of it is still loading: no second load. One that landed and left
    /// the cache unasked counts as wasted.
    fn mark(&self, key: &K) -> bool {
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
    pub(crate) fn landed(&self, key: &K) {
        if let Some((_, landed)) = lock(&self.marks).live.get_mut(key) {
            *landed = true;
        }
    }

    /// A request for `key`, which the cache held (`hit`): a prefetch used if it was one and
    /// the request found its value or joined its load still running; wasted if its value
    /// came and left before the request.
    fn asked(&self, key: &K, hit: bool) {
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
    pub(crate) fn stats(&self, gone: impl Fn(&K) -> bool) -> PrefetchStats {
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

/// Gives back a load's place in the budget when the load ends, or is dropped unfinished.
pub(crate) struct BudgetSlot<'a>(pub(crate) &'a AtomicUsize);

impl Drop for BudgetSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A job the spawner runs in the background (on a thread of a pool, say).
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A [`Cache`] with one loader and prefetching: see [`Cache::prefetching`].
pub struct Prefetching<K, V, L, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy>
{
    cache: Cache<K, V, S, W, P>,
    inner: Arc<Inner<K, L>>,
}

struct Inner<K, L> {
    state: State<K>,
    loader: L,
    spawn: Box<dyn Fn(Job) + Send + Sync>,
}

impl<K, V, L, S, W, P: Policy> Clone for Prefetching<K, V, L, S, W, P> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// This cache, loading through `loader` and prefetching as `prefetch` says; `spawn` runs
    /// a prefetch's load in the background (on a thread pool of yours: the loader blocks).
    ///
    /// ```
    /// use stratacache::Cache;
    /// use stratacache::prefetch::Prefetch;
    ///
    /// let chunks: Cache<u64, Vec<u8>> = Cache::builder().capacity(10_000).build()?;
    /// let read = |&chunk: &u64| Ok::<_, std::io::Error>(vec![chunk as u8; 64]); // a file read
    /// let chunks = chunks.prefetching(
    ///     Prefetch::new().sequential(|&k| Some(k + 1), 4),
    ///     read,
    ///     |job| drop(std::thread::spawn(job)),
    /// );
    /// for chunk in 0..100 {
    ///     assert_eq!(chunks.get(&chunk).unwrap()[0], chunk as u8);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefetching<L, E>(
        self,
        prefetch: Prefetch<K>,
        loader: L,
        spawn: impl Fn(Job) + Send + Sync + 'static,
    ) -> Prefetching<K, V, L, S, W, P>
    where
        L: Fn(&K) -> Result<V, E> + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        Prefetching {
            cache: self,
            inner: Arc::new(Inner {
                state: State::new(prefetch),
                loader,
                spawn: Box::new(spawn),
            }),
        }
    }
}

impl<K, V, L, E, S, W, P> Prefetching<K, V, L, S, W, P>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Fn(&K) -> Result<V, E> + Send + Sync + 'static,
    E: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// The cache underneath.
    pub fn cache(&self) -> &Cache<K, V, S, W, P> {
        &self.cache
    }

    /// The value of `key`, loaded on a miss (once for concurrent misses); the detectors see
    /// the request, and the keys they guess are loaded in the background.
    ///
    /// # Errors
    /// The loader's error for this key (shared with the callers that waited on it).
    pub fn get(&self, key: &K) -> Result<V, Arc<E>> {
        let found = self.cache.get(key);
        let state = &self.inner.state;
        for guess in state.requested(key, found.is_some()) {
            self.prefetch(guess);
        }
        match found {
            Some(value) => Ok(value),
            None => self.cache.try_get_with(key, || (self.inner.loader)(key)),
        }
    }

    fn prefetch(&self, key: K) {
        let state = &self.inner.state;
        if self.cache.contains_key(&key) || !state.admit(&key) {
            return;
        }
        let this = self.clone();
        (self.inner.spawn)(Box::new(move || {
            let state = &this.inner.state;
            let _slot = BudgetSlot(&state.loading);
            if this
                .cache
                .try_get_with(&key, || (this.inner.loader)(&key))
                .is_err()
            {
                state.failed.fetch_add(1, Ordering::Relaxed);
            }
            state.landed(&key);
        }));
    }

    /// What prefetching did so far.
    pub fn stats(&self) -> PrefetchStats {
        self.inner.state.stats(|key| !self.cache.contains_key(key))
    }
}
