//! The async facade (feature `async`): [`AsyncCache`], the tiered [`Cache`] with futures that
//! run on any executor.
//!
//! Lookups in memory (L1, L2) answer at once, as in the plain cache. Whatever would block runs
//! on a pool of threads for blocking work (the `blocking` crate, runtime-agnostic): the
//! persistent tier's disk reads and writes, so an executor thread never waits for the disk.
//! `get_with` is single flight across tasks: concurrent misses of one key run one load, the
//! other tasks wait as futures (no thread blocked, no lock held across an `.await`). It is
//! cancellation-safe: if the leading task's future is dropped, or its loader panics, the
//! waiting tasks are woken and one of them loads instead. Loads started by plain `Cache`
//! calls and by `AsyncCache` calls on the same cache join each other.
//!
//! ```
//! use stratacache::Cache;
//! use stratacache::future::AsyncCache;
//!
//! # futures::executor::block_on(async {
//! let cache: AsyncCache<u64, String> = Cache::builder().capacity(1_000).build()?.into();
//! // On any executor (tokio, smol, futures): one load for concurrent misses of a key.
//! let name = cache.get_with(&7, async { String::from("loaded once") }).await;
//! assert_eq!(name, "loaded once");
//! assert_eq!(cache.get(&7).await.as_deref(), Some("loaded once"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::borrow::ToOwned;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::convert::Infallible;
use core::future::Future;
use core::hash::{BuildHasher, Hash};

use core::sync::atomic::Ordering;

use crate::l2::policy::{DefaultPolicy, Policy};
use crate::l2::{UnitWeigher, Weigher};
use crate::tier::awaited::Next;
use crate::tier::flight::Settled;
use crate::{Cache, DefaultHashBuilder, InsertError, InsertOptions};

use crate::prefetch::{BudgetSlot, State};
pub use crate::prefetch::{Prefetch, PrefetchStats};

/// A future the spawner runs to completion in the background.
pub type Background = core::pin::Pin<alloc::boxed::Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where a [`Prefetching`] cache's values come from: an async function of the key, which may
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

/// The tiered cache with an async API: see the [module docs](self). Clones share the cache;
/// [`sync`](Self::sync) gives the plain [`Cache`] for everything that never waits (statistics,
/// iteration, frames).
pub struct AsyncCache<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    cache: Cache<K, V, S, W, P>,
}

impl<K, V, S, W, P: Policy> Clone for AsyncCache<K, V, S, W, P> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
        }
    }
}

impl<K, V, S, W, P: Policy> From<Cache<K, V, S, W, P>> for AsyncCache<K, V, S, W, P> {
    fn from(cache: Cache<K, V, S, W, P>) -> Self {
        Self { cache }
    }
}

impl<K, V, S, W, P> AsyncCache<K, V, S, W, P>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// The plain cache underneath (the same entries).
    pub fn sync(&self) -> &Cache<K, V, S, W, P> {
        &self.cache
    }

    /// Runs `work` on the cache where it may block: on the blocking pool if a persistent tier
    /// is below memory, else here.
    async fn maybe_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Cache<K, V, S, W, P>) -> R + Send + 'static,
    ) -> R {
        if self.cache.has_tier_below() {
            let cache = self.cache.clone();
            blocking::unblock(move || work(&cache)).await
        } else {
            work(&self.cache)
        }
    }

    /// The value of `key`: from memory at once, else from the persistent tier (read on the
    /// blocking pool).
    pub async fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    {
        self.get_hashed(key, self.cache.hash_of(key)).await
    }

    /// [`get`](Self::get) of a key of hash `hash`.
    async fn get_hashed<Q>(&self, key: &Q, hash: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    {
        if let Some(value) = self.cache.get_in_memory_hashed(hash, key) {
            return Some(value);
        }
        if !self.cache.has_tier_below() {
            return None;
        }
        let key = key.to_owned();
        self.maybe_blocking(move |cache| cache.get::<K>(&key)).await
    }

    /// The values of `keys`, in their order: memory answers at once, and the misses go to the
    /// persistent tier together, in one trip to the blocking pool.
    pub async fn get_many<'q, Q>(&self, keys: impl IntoIterator<Item = &'q Q>) -> Vec<Option<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq + 'q,
    {
        let mut found = Vec::new();
        let mut missed = Vec::new();
        for (at, key) in keys.into_iter().enumerate() {
            let value = self.cache.get_in_memory(key);
            if value.is_none() && self.cache.has_tier_below() {
                missed.push((at, key.to_owned()));
            }
            found.push(value);
        }
        if !missed.is_empty() {
            let read = self
                .maybe_blocking(move |cache| {
                    missed
                        .into_iter()
                        .map(|(at, key)| (at, cache.get::<K>(&key)))
                        .collect::<Vec<_>>()
                })
                .await;
            for (at, value) in read {
                found[at] = value;
            }
        }
        found
    }

    /// The values of `keys`, in their order, each loaded by `load` on a miss: the loads of
    /// the misses (and their reads of the persistent tier) run concurrently, each single
    /// flight as in [`try_get_with`](Self::try_get_with).
    ///
    /// # Errors
    /// Per key, the loader's error for it.
    pub async fn get_many_with<E, F>(
        &self,
        keys: &[K],
        load: impl Fn(&K) -> F,
    ) -> Vec<Result<V, Arc<E>>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let mut pending: Vec<_> = keys
            .iter()
            .map(|key| alloc::boxed::Box::pin(self.try_get_with(key, load(key))))
            .collect();
        let mut done: Vec<Option<Result<V, Arc<E>>>> = keys.iter().map(|_| None).collect();
        core::future::poll_fn(|cx| {
            let mut waiting = false;
            for (slot, future) in done.iter_mut().zip(&mut pending) {
                if slot.is_none() {
                    match future.as_mut().poll(cx) {
                        core::task::Poll::Ready(result) => *slot = Some(result),
                        core::task::Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                core::task::Poll::Pending
            } else {
                core::task::Poll::Ready(())
            }
        })
        .await;
        done.into_iter()
            .map(|result| result.expect("every future finished"))
            .collect()
    }

    /// Stores `value` under `key` (see [`Cache::insert`]).
    ///
    /// # Errors
    /// As [`Cache::insert`]: the key and value come back.
    pub async fn insert(&self, key: K, value: V) -> Result<(), InsertError<K, V>> {
        self.insert_with(key, value, InsertOptions::new()).await
    }

    /// Stores `value` under `key` with `options` (see [`Cache::insert_with`]).
    ///
    /// # Errors
    /// As [`Cache::insert_with`].
    pub async fn insert_with(
        &self,
        key: K,
        value: V,
        options: InsertOptions,
    ) -> Result<(), InsertError<K, V>> {
        self.maybe_blocking(move |cache| cache.insert_with(key, value, options))
            .await
    }

    /// Stores each entry, in one trip to the blocking pool where the persistent tier is below:
    /// the entries refused (see [`Cache::insert`]).
    pub async fn insert_many(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Vec<InsertError<K, V>> {
        let entries: Vec<(K, V)> = entries.into_iter().collect();
        self.maybe_blocking(move |cache| {
            entries
                .into_iter()
                .filter_map(|(key, value)| cache.insert(key, value).err())
                .collect()
        })
        .await
    }

    /// Removes `key`, returning its value if it was in memory (see [`Cache::remove`]).
    pub async fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    {
        if !self.cache.has_tier_below() {
            return self.cache.remove(key);
        }
        let key = key.to_owned();
        self.maybe_blocking(move |cache| cache.remove::<K>(&key))
            .await
    }

    /// The value of `key`, loaded by `init` on a miss, once for all the tasks (and threads)
    /// that miss it together; see the [module docs](self) for cancellation and panics.
    pub async fn get_with<Q>(&self, key: &Q, init: impl Future<Output = V>) -> V
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    {
        let loaded = self
            .try_get_with_options(
                key,
                async { Ok::<V, Infallible>(init.await) },
                InsertOptions::new(),
            )
            .await;
        match loaded {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// [`get_with`](Self::get_with) with a fallible loader: its error goes, in an `Arc`, to
    /// this task and to the tasks waiting on it that expect the same error type; nothing is
    /// stored.
    ///
    /// # Errors
    /// The error of the loader that ran for this miss.
    pub async fn try_get_with<Q, E>(
        &self,
        key: &Q,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        E: Send + Sync + 'static,
    {
        self.try_get_with_options(key, init, InsertOptions::new())
            .await
    }

    /// [`try_get_with`](Self::try_get_with) storing the loaded value with `options`.
    ///
    /// # Errors
    /// The error of the loader that ran for this miss.
    pub async fn try_get_with_options<Q, E>(
        &self,
        key: &Q,
        init: impl Future<Output = Result<V, E>>,
        options: InsertOptions,
    ) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        E: Send + Sync + 'static,
    {
        self.load(key, init, options, true).await
    }

    /// `try_get_with_options`' body; without `look`, the first look in memory is skipped (a
    /// prefetch, whose caller just saw the key absent: its lookups are not the user's).
    async fn load<Q, E>(
        &self,
        key: &Q,
        init: impl Future<Output = Result<V, E>>,
        options: InsertOptions,
        mut look: bool,
    ) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        E: Send + Sync + 'static,
    {
        let mut init = Some(init);
        let hash = self.cache.hash_of(key);
        loop {
            // Read before the lookup, when there is one: whether the flights' look again is
            // needed (see `flight::Ticket`).
            let ticket = look.then(|| self.cache.flight_ticket(hash));
            if look && let Some(value) = self.get_hashed(key, hash).await {
                return Ok(value);
            }
            look = true;
            match self.cache.join_or_lead(key, hash, ticket) {
                Next::Found(value) => return Ok(value),
                Next::Join(flight) => match Cache::<K, V, S, W, P>::wait_flight::<E>(&flight).await
                {
                    Settled::Value(value) => return Ok(value),
                    Settled::Failed(error) => return Err(error),
                    // The leader gave up (cancelled, panicked): start over, perhaps leading.
                    Settled::Retry => {}
                },
                Next::Lead(leading) => {
                    let init = init.take().expect("a task leads at most once: it returns");
                    // Dropped here (the task cancelled) or unwinding (the loader panicked),
                    // `leading` abandons the flight and wakes the waiters.
                    let value = match init.await {
                        Ok(value) => value,
                        Err(error) => {
                            let error = Arc::new(error);
                            leading.fail(&error);
                            return Err(error);
                        }
                    };
                    let (key, stored) = (key.to_owned(), value.clone());
                    self.maybe_blocking(move |cache| {
                        cache.finish_lead(leading, key, hash, stored, options);
                    })
                    .await;
                    return Ok(value);
                }
            }
        }
    }
}

/// An [`AsyncCache`] with one loader and prefetching: see [`AsyncCache::prefetching`].
pub struct Prefetching<K, V, L, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy>
{
    cache: AsyncCache<K, V, S, W, P>,
    inner: Arc<Inner<K, L>>,
}

struct Inner<K, L> {
    state: State<K>,
    loader: L,
    spawn: alloc::boxed::Box<dyn Fn(Background) + Send + Sync>,
}

impl<K, V, L, S, W, P: Policy> Clone for Prefetching<K, V, L, S, W, P> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S, W, P> AsyncCache<K, V, S, W, P>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// This cache, loading through `loader` and prefetching as `prefetch` says; `spawn`
    /// runs a prefetch's load in the background (`|load| { tokio::spawn(load); }`, or any
    /// executor's spawn: the library depends on none).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use stratacache::Cache;
    /// use stratacache::future::{AsyncCache, Prefetch};
    ///
    /// let pool = futures::executor::ThreadPool::new()?;
    /// let tiles: AsyncCache<(i32, i32), String> = Cache::builder().capacity(10_000).build()?.into();
    /// // A player walking a map: the tiles around the one asked for are loaded ahead.
    /// let around = |&(x, y): &(i32, i32), out: &mut Vec<(i32, i32)>| {
    ///     out.extend([(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)]);
    /// };
    /// let tiles = tiles.prefetching(
    ///     Prefetch::new().spatial(around).in_flight(16),
    ///     |(x, y): (i32, i32)| async move { Ok::<_, std::io::Error>(format!("tile {x},{y}")) },
    ///     move |load| pool.spawn_ok(load),
    /// );
    /// assert_eq!(tiles.get(&(0, 0)).await.unwrap(), "tile 0,0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefetching<L: Loader<K, V>>(
        self,
        prefetch: Prefetch<K>,
        loader: L,
        spawn: impl Fn(Background) + Send + Sync + 'static,
    ) -> Prefetching<K, V, L, S, W, P> {
        Prefetching {
            cache: self,
            inner: Arc::new(Inner {
                state: State::new(prefetch),
                loader,
                spawn: alloc::boxed::Box::new(spawn),
            }),
        }
    }
}

impl<K, V, L, S, W, P> Prefetching<K, V, L, S, W, P>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// The cache underneath.
    pub fn cache(&self) -> &AsyncCache<K, V, S, W, P> {
        &self.cache
    }

    /// The value of `key`, loaded on a miss (once for concurrent misses); the detectors see
    /// the request, and the keys they guess are loaded in the background.
    ///
    /// # Errors
    /// The loader's error for this key (shared with the requests that waited on it).
    pub async fn get(&self, key: &K) -> Result<V, Arc<L::Error>> {
        let found = self.cache.get(key).await;
        let state = &self.inner.state;
        for guess in state.requested(key, found.is_some()) {
            self.prefetch(guess);
        }
        match found {
            Some(value) => Ok(value),
            None => {
                let load = self.inner.loader.load(key.clone());
                self.cache.try_get_with(key, load).await
            }
        }
    }

    /// Loads `key` in the background unless the cache holds it or the budget is spent.
    fn prefetch(&self, key: K) {
        let inner = &*self.inner;
        let state = &inner.state;
        if self.cache.sync().contains_key(&key) || !state.admit(&key) {
            return;
        }
        let this = self.clone();
        (inner.spawn)(alloc::boxed::Box::pin(async move {
            let state = &this.inner.state;
            let _slot = BudgetSlot(&state.loading);
            let load = this.inner.loader.load(key.clone());
            let options = InsertOptions::new();
            let look = this.cache.cache.has_tier_below();
            if this.cache.load(&key, load, options, look).await.is_err() {
                state.failed.fetch_add(1, Ordering::Relaxed);
            }
            state.landed(&key);
        }));
    }

    /// What prefetching did so far.
    pub fn stats(&self) -> PrefetchStats {
        self.inner
            .state
            .stats(|key| !self.cache.sync().contains_key(key))
    }
}
