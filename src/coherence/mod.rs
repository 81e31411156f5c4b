//! Coherence across processes over Redis (feature `redis`): caches of one *group*, in any
//! number of processes, stop serving a key's old value once another writes it.
//!
//! A write through [`Coherent::insert`] or [`Coherent::remove`] takes a new version of its key
//! from Redis (`INCR`, so versions are ordered across processes) and publishes an
//! invalidation (the key and that version) on the group's channel, both in one script (one
//! round trip), then changes the local cache. A subscriber thread applies every other
//! member's invalidations: it drops the local copy of the key unless the local copy is of a
//! newer version (written here after it). Two processes writing one key at once end agreeing:
//! the higher version's writer keeps its value, the other drops its copy.
//!
//! Faults: Redis down at start, a lost connection, a restarted server, a call that times out.
//! The cache goes on serving and writing locally; writes that could not be published are
//! remembered (up to 10,000 keys, beyond which the whole group is invalidated) and published
//! on reconnection or with the next write that is; and since the invalidations sent during a
//! gap are lost, the cache drops what it cannot prove fresh when it reconnects
//! ([`Recovery`]). [`CoherenceStats`] says what happened, the gap included.
//!
//! Redis can also hold the values, as a **remote tier** shared by the group behind each
//! member's own tiers: [`Coherent::insert_shared`] stores the value there in the same script
//! that takes its version and publishes the invalidation, and [`Coherent::get_shared`] answers
//! a local miss from there (filling the local cache at the version it was written at, so a
//! value overtaken meanwhile is not kept). Every other write of a key deletes its remote value
//! in that same script, so the remote tier never holds a value older than the newest write.
//! Its memory is Redis': give values a time to live there ([`CoherenceBuilder::remote_ttl`])
//! or run Redis with an eviction policy (`maxmemory-policy allkeys-lru`).

mod link;

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;

use crate::l2::Weigher;
use crate::l2::policy::{DefaultPolicy, Policy};
use crate::l3::Codec;
use crate::{Cache, Concern, DefaultHashBuilder, Health, InsertError, UnitWeigher};

pub use link::CoherenceStats;

/// What a cache drops when it reconnects after a gap, during which it may have missed
/// invalidations (per key range: [`Cache::coherent_dropping`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// Every entry (the default): nothing is served that another process may have written
    /// meanwhile.
    DropAll,
    /// Nothing: the caller accepts stale values after a gap (data written by this process
    /// only, say).
    Keep,
}

/// Why coherence could not be set up, or a write could not be published.
#[derive(Debug)]
#[non_exhaustive]
pub enum CoherenceError {
    /// The settings cannot work (an empty group name, a bad URL).
    Options(&'static str),
    /// The remote tier holds bytes the value type cannot decode (a member of the group
    /// stores another type under the same keys).
    Undecodable(crate::l3::CodecError),
    /// Redis answered with an error, or could not be reached.
    Redis(redis::RedisError),
}

impl fmt::Display for CoherenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Options(why) => write!(f, "coherence settings that cannot work: {why}"),
            Self::Undecodable(error) => write!(f, "a value in the remote tier: {error}"),
            Self::Redis(error) => write!(f, "Redis: {error}"),
        }
    }
}

impl core::error::Error for CoherenceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Redis(error) => Some(error),
            Self::Undecodable(error) => Some(error),
            Self::Options(_) => None,
        }
    }
}

/// Sets up a cache's membership in a group: see [`Coherence::builder`].
#[derive(Clone, Debug)]
pub struct CoherenceBuilder {
    pub(crate) url: String,
    pub(crate) group: String,
    pub(crate) recovery: Recovery,
    pub(crate) retry: Duration,
    pub(crate) remote_ttl: Option<Duration>,
    pub(crate) max_connections: usize,
}

/// Coherence settings: the Redis server and the group.
pub struct Coherence;

impl Coherence {
    /// Membership of group `group` through the Redis server at `url`
    /// (`redis://host:port/`).
    pub fn builder(url: impl Into<String>, group: impl Into<String>) -> CoherenceBuilder {
        CoherenceBuilder {
            url: url.into(),
            group: group.into(),
            recovery: Recovery::DropAll,
            retry: Duration::from_millis(200),
            remote_ttl: None,
            max_connections: 16,
        }
    }
}

impl CoherenceBuilder {
    /// What is dropped on reconnection (default [`Recovery::DropAll`]).
    #[must_use]
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }

    /// How long the subscriber waits between attempts to reconnect (default 200 ms).
    #[must_use]
    pub fn retry_after(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// The most connections to Redis the cache's writes and remote reads hold at once
    /// (default 16; zero is refused when the cache joins). Beyond it a caller waits, up to a
    /// second, for one to be returned: a burst of threads missing at once does not open a
    /// connection each. The subscriber's connection is its own.
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a value stored in the remote tier by [`Coherent::insert_shared`] stays there
    /// (default: until the key is written again, or Redis evicts it).
    #[must_use]
    pub fn remote_ttl(mut self, ttl: Duration) -> Self {
        self.remote_ttl = Some(ttl);
        self
    }
}

/// A [`Cache`] kept coherent with the other members of its group: see the [module
/// docs](self). Reads are the plain cache's ([`cache`](Self::cache)); writes go through here.
pub struct Coherent<K, V, S = DefaultHashBuilder, W = UnitWeigher, P: Policy = DefaultPolicy> {
    cache: Cache<K, V, S, W, P>,
    link: Arc<link::Link<K, V, S, W, P>>,
}

impl<K, V, S, W, P: Policy> Clone for Coherent<K, V, S, W, P> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            link: Arc::clone(&self.link),
        }
    }
}

impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// This cache as a member of a group: a subscriber thread starts, and writes through the
    /// result publish invalidations. If Redis cannot be reached now, the cache starts
    /// disconnected and keeps trying (see the module docs).
    ///
    /// # Errors
    /// [`CoherenceError::Options`] for an empty group, a URL that does not parse, or no
    /// connections allowed.
    pub fn coherent(
        self,
        settings: CoherenceBuilder,
    ) -> Result<Coherent<K, V, S, W, P>, CoherenceError> {
        let link = link::Link::start(self.clone(), settings, None)?;
        Ok(Coherent { cache: self, link })
    }

    /// [`coherent`](Self::coherent), dropping on reconnection only the entries whose key
    /// `stale` accepts (a key range the other members write, say), whatever
    /// [`Recovery`] the settings give: the rest is trusted. `stale` runs with no lock held.
    ///
    /// # Errors
    /// As [`coherent`](Self::coherent).
    pub fn coherent_dropping(
        self,
        settings: CoherenceBuilder,
        stale: impl Fn(&K) -> bool + Send + Sync + 'static,
    ) -> Result<Coherent<K, V, S, W, P>, CoherenceError> {
        let link = link::Link::start(self.clone(), settings, Some(alloc::boxed::Box::new(stale)))?;
        Ok(Coherent { cache: self, link })
    }
}

impl<K, V, S, W, P> Coherent<K, V, S, W, P>
where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// The cache (reads, statistics, everything that does not write).
    pub fn cache(&self) -> &Cache<K, V, S, W, P> {
        &self.cache
    }

    /// Stores `value` under `key` here and invalidates the other members' copies: the
    /// key's new version, or `None` while Redis cannot be reached (the write is published
    /// on reconnection).
    ///
    /// # Errors
    /// As [`Cache::insert`].
    pub fn insert(&self, key: K, value: V) -> Result<Option<u64>, InsertError<K, V>> {
        let version = self.link.publish(&key, None);
        self.store(key, value, version)
    }

    /// The local half of a write published at `version` (`None`: unpublished).
    fn store(
        &self,
        key: K,
        value: V,
        version: Option<u64>,
    ) -> Result<Option<u64>, InsertError<K, V>> {
        match version {
            Some(at) => {
                self.link.note_local(&key, at);
                self.insert_at(key, value, at)?;
            }
            None => self.cache.insert(key, value)?,
        }
        Ok(version)
    }

    /// Stores `value` of `key` at `version`, and takes it out again if a newer version's
    /// invalidation arrived before it landed (the copy is already stale): whether it stayed.
    fn insert_at(&self, key: K, value: V, version: u64) -> Result<bool, InsertError<K, V>> {
        let check = key.clone();
        self.cache.insert(key, value)?;
        if self.link.superseded(&check, version) {
            self.cache.remove(&check);
            return Ok(false);
        }
        Ok(true)
    }

    /// [`insert`](Self::insert) of the value `make` builds from the key's new version
    /// (`None` while Redis cannot be reached): for values that carry their version, so that
    /// readers can tell which write they see.
    ///
    /// # Errors
    /// As [`Cache::insert`].
    pub fn insert_versioned(
        &self,
        key: K,
        make: impl FnOnce(Option<u64>) -> V,
    ) -> Result<Option<u64>, InsertError<K, V>> {
        let version = self.link.publish(&key, None);
        self.store(key, make(version), version)
    }

    /// Stores `value`, which the caller loaded from the source of truth where it was at
    /// `version` (the version its writer got), unless a newer write of the key is known here
    /// (its invalidation arrived while the value was being loaded): then nothing is stored,
    /// `false`. Publishes nothing. This is the read-through's insertion: a plain insert of a
    /// value loaded before an invalidation would bring the old value back.
    ///
    /// # Errors
    /// As [`Cache::insert`].
    pub fn fill(&self, key: K, value: V, version: u64) -> Result<bool, InsertError<K, V>> {
        if self.link.superseded(&key, version) {
            return Ok(false);
        }
        self.insert_at(key, value, version)
    }

    /// Removes `key` here and in every other member: its new version, or `None` while Redis
    /// cannot be reached.
    pub fn remove(&self, key: &K) -> Option<u64> {
        let version = self.link.publish(key, None);
        if let Some(at) = version {
            self.link.note_local(key, at);
        }
        self.cache.remove(key);
        version
    }

    /// What coherence did so far, and whether the link to Redis is up.
    pub fn stats(&self) -> CoherenceStats {
        self.link.stats()
    }

    /// The cache's [`health`](Cache::health), and [`Concern::Disconnected`] while the link
    /// to Redis is down (with the gap so far).
    pub fn health(&self) -> Health {
        let mut health = self.cache.health();
        let stats = self.link.stats();
        if !stats.connected {
            health
                .concerns
                .push(Concern::Disconnected { for_: stats.gap });
        }
        health
    }
}

impl<K, V, S, W, P> Coherent<K, V, S, W, P>
where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Codec + Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    /// [`insert`](Self::insert), storing the value in the group's remote tier too (in the
    /// same round trip), where every member's [`get_shared`](Self::get_shared) finds it: the
    /// key's new version, or `None` while Redis cannot be reached (then only the local cache
    /// has the value, and the reconnection deletes the remote one).
    ///
    /// # Errors
    /// As [`Cache::insert`] (the remote tier has the value all the same).
    pub fn insert_shared(&self, key: K, value: V) -> Result<Option<u64>, InsertError<K, V>> {
        let mut bytes = alloc::vec::Vec::new();
        value.encode(&mut bytes);
        let version = self.link.publish(&key, Some(&bytes));
        self.store(key, value, version)
    }

    /// The value of `key`: from the local cache, or on a local miss from the group's remote
    /// tier (what a member's [`insert_shared`](Self::insert_shared) stored), which fills the
    /// local cache unless a newer write of the key is known here. `None` if neither holds it.
    ///
    /// # Errors
    /// [`CoherenceError::Redis`] when the remote tier cannot be reached (the local cache
    /// still answers its hits); [`CoherenceError::Undecodable`] for remote bytes `V` cannot
    /// read.
    pub fn get_shared(&self, key: &K) -> Result<Option<V>, CoherenceError> {
        if let Some(value) = self.cache.get(key) {
            return Ok(Some(value));
        }
        let Some((version, bytes)) = self.link.fetch(key).map_err(CoherenceError::Redis)? else {
            return Ok(None);
        };
        let value = V::decode(&bytes).map_err(CoherenceError::Undecodable)?;
        // A value too heavy for the local cache is still the answer.
        let _ = self.fill(key.clone(), value.clone(), version);
        Ok(Some(value))
    }
}
