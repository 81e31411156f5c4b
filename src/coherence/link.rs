//! The link to Redis: the callers' connections and the write script, the subscriber thread,
//! the versions of the keys written here or invalidated from elsewhere, and the counters.

use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::hash::{BuildHasher, Hash};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{CoherenceBuilder, CoherenceError, Recovery};
use crate::Cache;
use crate::hash::FixedState;
use crate::l2::Weigher;
use crate::l2::policy::Policy;
use crate::l3::Codec;

/// A write, in one round trip: takes the group's next version; replaces the key's value in the
/// remote tier (`set`), deletes it (`del`), or raises the group's floor (`all`: every value
/// stored before is stale); and publishes the invalidation. KEYS: the group's version counter,
/// the key's value, the group's floor. ARGV: the channel, the writer's id, the key (hex), the
/// operation, the value's bytes, its time to live in ms (0: none). A value is stored as
/// `version:bytes`.
const WRITE: &str = "local v = redis.call('INCR', KEYS[1]) \
    if ARGV[4] == 'set' then \
        if ARGV[6] ~= '0' then redis.call('SET', KEYS[2], v .. ':' .. ARGV[5], 'PX', ARGV[6]) \
        else redis.call('SET', KEYS[2], v .. ':' .. ARGV[5]) end \
    elseif ARGV[4] == 'all' then redis.call('SET', KEYS[3], v) \
    else redis.call('DEL', KEYS[2]) end \
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. ':' .. v .. ':' .. ARGV[3]) return v";
/// How long a caller waits for a connection when the pool is at its bound.
const POOL_WAIT: Duration = Duration::from_secs(1);
/// How long a call on a pooled connection waits for Redis' answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys written while disconnected, remembered for publication; past it, the whole group is
/// invalidated on reconnection.
const UNPUBLISHED: usize = 10_000;
/// Versions remembered per key; past it they are forgotten below a watermark.
const VERSIONS: usize = 1 << 20;
/// The key of an invalidation of every key of the group.
const ALL: &str = "*";

/// What coherence did since the cache joined its group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoherenceStats {
    /// Whether the subscriber is connected now.
    pub connected: bool,
    /// Invalidations this cache published.
    pub published: u64,
    /// Values this cache wrote to the group's remote tier ([`Coherent::insert_shared`]).
    ///
    /// [`Coherent::insert_shared`]: super::Coherent::insert_shared
    pub shared: u64,
    /// Local misses of [`Coherent::get_shared`] answered by the remote tier.
    ///
    /// [`Coherent::get_shared`]: super::Coherent::get_shared
    pub fetched: u64,
    /// Local misses of `get_shared` the remote tier did not hold either.
    pub fetch_misses: u64,
    /// Other members' invalidations that dropped (or would have dropped) a copy here.
    pub applied: u64,
    /// Other members' invalidations older than this cache's own write of the key, ignored.
    pub ignored: u64,
    /// Writes that could not be published when made (Redis out of reach, or a call that timed
    /// out): published on reconnection, or with the next write that is.
    pub unpublished: u64,
    /// Reconnections after a lost connection (or a failed start).
    pub reconnects: u64,
    /// Entries dropped on reconnection, since invalidations may have been missed.
    pub dropped_on_reconnect: u64,
    /// Time spent disconnected, in all (the current gap included).
    pub disconnected_for: Duration,
    /// The current gap: how long the link has been down (zero while connected).
    pub gap: Duration,
}

/// Which keys may be stale after a gap (a key range, say).
pub(crate) type Stale<K> = alloc::boxed::Box<dyn Fn(&K) -> bool + Send + Sync>;

/// The cache type a link serves (its type parameters, without owning one).
type Member<K, V, S, W, P> = fn() -> (K, V, S, W, P);

/// Per key (by the hash of its bytes): the newest version known here.
struct Versions {
    newest: hashbrown::HashMap<u64, u64, FixedState>,
    /// Versions below it were forgotten: a key without an entry may have had one.
    forgotten_below: u64,
}

pub(crate) struct Link<K, V, S, W, P: Policy> {
    settings: CoherenceBuilder,
    channel: String,
    counter: String,
    /// The prefix of the keys of the values in the remote tier (the key's hex follows).
    values: String,
    /// Values stored in the remote tier below this version are stale.
    floor: String,
    /// This member's id in the messages (its own invalidations come back to it).
    origin: String,
    client: redis::Client,
    script: redis::Script,
    /// The callers' connections (no idle one while the link is down), and the condition a
    /// caller waits on when all are out.
    pool: Mutex<Pool>,
    returned: Condvar,
    versions: Mutex<Versions>,
    /// Keys (hex) whose write could not be published, and whether more were.
    unpublished: Mutex<(Vec<String>, bool)>,
    /// Whether `unpublished` holds anything (read without its lock on every write).
    deferred: AtomicBool,
    hasher: FixedState,
    connected: AtomicBool,
    /// Since when the link has been down (`None`: up).
    down_since: Mutex<Option<Instant>>,
    down_total: AtomicU64,
    published: AtomicU64,
    shared: AtomicU64,
    fetched: AtomicU64,
    fetch_misses: AtomicU64,
    applied: AtomicU64,
    ignored: AtomicU64,
    unpublished_count: AtomicU64,
    reconnects: AtomicU64,
    dropped_on_reconnect: AtomicU64,
    stop: Arc<AtomicBool>,
    /// Which keys a reconnection drops (`None`: as `settings.recovery` says).
    stale: Option<Stale<K>>,
    _cache: core::marker::PhantomData<Member<K, V, S, W, P>>,
}

/// The callers' connections to Redis.
struct Pool {
    idle: Vec<redis::Connection>,
    /// Connections out with callers and idle (at most the settings' `max_connections`).
    open: usize,
}

/// What a write does to the remote tier.
#[derive(Clone, Copy)]
enum Write<'a> {
    /// Stores the value's bytes.
    Set(&'a [u8]),
    /// Deletes the key's value.
    Delete,
    /// Makes every value stored so far stale (the key is [`ALL`]).
    All,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

impl<K, V, S, W, P> Link<K, V, S, W, P>
where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    pub(crate) fn start(
        cache: Cache<K, V, S, W, P>,
        settings: CoherenceBuilder,
        stale: Option<Stale<K>>,
    ) -> Result<Arc<Self>, CoherenceError> {
        if settings.group.is_empty() {
            return Err(CoherenceError::Options("an empty group name"));
        }
        if settings.max_connections == 0 {
            return Err(CoherenceError::Options("max_connections of zero"));
        }
        let client = redis::Client::open(settings.url.as_str()).map_err(CoherenceError::Redis)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let origin = std::format!("{:x}-{:x}", std::process::id(), nanos);
        let stop = Arc::new(AtomicBool::new(false));
        let link = Arc::new(Self {
            // One hash tag, `{group}`: a script's keys must share a Redis Cluster slot.
            channel: std::format!("stratacache:{{{}}}:invalidations", settings.group),
            counter: std::format!("stratacache:{{{}}}:version", settings.group),
            values: std::format!("stratacache:{{{}}}:value:", settings.group),
            floor: std::format!("stratacache:{{{}}}:floor", settings.group),
            settings,
            origin,
            client,
            script: redis::Script::new(WRITE),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            versions: Mutex::new(Versions {
                newest: hashbrown::HashMap::with_hasher(FixedState::with_seed(0xc0)),
                forgotten_below: 0,
            }),
            unpublished: Mutex::new((Vec::new(), false)),
            deferred: AtomicBool::new(false),
            hasher: FixedState::with_seed(0xc1),
            connected: AtomicBool::new(false),
            down_since: Mutex::new(None),
            down_total: AtomicU64::new(0),
            published: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            fetch_misses: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            unpublished_count: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            dropped_on_reconnect: AtomicU64::new(0),
            stop: Arc::clone(&stop),
            stale,
            _cache: core::marker::PhantomData,
        });
        let weak = Arc::downgrade(&link);
        std::thread::Builder::new()
            .name(String::from("stratacache-coherence"))
            .spawn(move || subscribe(&weak, &cache, &stop))
            .map_err(|e| CoherenceError::Redis(redis::RedisError::from(e)))?;
        Ok(link)
    }

    fn key_hash(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one(bytes)
    }

    /// Publishes an invalidation of `key` with a new version (and deletes its value from the
    /// remote tier, or with `value` replaces it): the version, or `None` if Redis cannot be
    /// reached (the key is remembered for the reconnection, whose write deletes the remote
    /// value).
    pub(crate) fn publish(&self, key: &K, value: Option<&[u8]>) -> Option<u64> {
        let mut bytes = Vec::new();
        key.encode(&mut bytes);
        let key = hex(&bytes);
        let write = match value {
            Some(bytes) => Write::Set(bytes),
            None => Write::Delete,
        };
        match self.run(&key, write) {
            Ok(version) => {
                if self.deferred.load(Ordering::Relaxed) {
                    // Writes that failed while the link stayed up (a call timed out) would
                    // otherwise wait for a reconnection that may never come.
                    self.publish_deferred();
                }
                Some(version)
            }
            Err(_) => {
                self.unpublished_count.fetch_add(1, Ordering::Relaxed);
                self.defer(key);
                None
            }
        }
    }

    /// Remembers `key` (hex) for publication later (past [`UNPUBLISHED`] keys, the whole
    /// group is invalidated instead).
    fn defer(&self, key: String) {
        let mut unpublished = lock(&self.unpublished);
        if unpublished.0.len() < UNPUBLISHED {
            unpublished.0.push(key);
        } else {
            unpublished.1 = true;
        }
        self.deferred.store(true, Ordering::Relaxed);
    }

    /// Publishes the writes that could not be published when made: each key's invalidation,
    /// or one of the whole group if there were too many. What fails again stays deferred.
    fn publish_deferred(&self) {
        let (keys, overflow) = {
            let mut unpublished = lock(&self.unpublished);
            self.deferred.store(false, Ordering::Relaxed);
            core::mem::take(&mut *unpublished)
        };
        if overflow {
            if self.run(ALL, Write::All).is_err() {
                let mut unpublished = lock(&self.unpublished);
                unpublished.1 = true;
                self.deferred.store(true, Ordering::Relaxed);
            }
            return;
        }
        let mut keys = keys.into_iter();
        while let Some(key) = keys.next() {
            if self.run(&key, Write::Delete).is_err() {
                for key in core::iter::once(key).chain(keys) {
                    self.defer(key);
                }
                return;
            }
        }
    }

    /// Runs `f` on an idle connection, or a new one while fewer than the settings'
    /// `max_connections` are open, or else the first one another caller returns (waiting up
    /// to [`POOL_WAIT`]). The connection goes back to the pool if `f` succeeded. No lock is
    /// held while `f` waits on Redis.
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let io_error = |kind| redis::RedisError::from(std::io::Error::from(kind));
        let until = Instant::now() + POOL_WAIT;
        let mut pool = lock(&self.pool);
        let mut connection = loop {
            if let Some(connection) = pool.idle.pop() {
                drop(pool);
                break connection;
            }
            // Down: do not wait on a connection attempt per call.
            if !self.connected.load(Ordering::Relaxed) {
                return Err(io_error(std::io::ErrorKind::NotConnected));
            }
            if pool.open < self.settings.max_connections {
                pool.open += 1;
                drop(pool);
                match self.connect() {
                    Ok(connection) => break connection,
                    Err(error) => {
                        lock(&self.pool).open -= 1;
                        self.returned.notify_one();
                        return Err(error);
                    }
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io_error(std::io::ErrorKind::TimedOut));
            }
            pool = self
                .returned
                .wait_timeout(pool, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        };
        let result = f(&mut connection);
        let mut pool = lock(&self.pool);
        if result.is_ok() {
            pool.idle.push(connection);
        } else {
            pool.open -= 1;
        }
        drop(pool);
        self.returned.notify_one();
        result
    }

    /// A new connection for the callers' pool: a call on it that Redis does not answer
    /// within [`CALL_TIMEOUT`] fails (and the connection is dropped), so a stuck server holds
    /// no pooled connection for good.
    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self
            .client
            .get_connection_with_timeout(Duration::from_secs(1))?;
        connection.set_read_timeout(Some(CALL_TIMEOUT))?;
        connection.set_write_timeout(Some(CALL_TIMEOUT))?;
        Ok(connection)
    }

    /// Runs the write script for `key` (hex).
    fn run(&self, key: &str, write: Write<'_>) -> Result<u64, redis::RedisError> {
        let (operation, value): (&str, &[u8]) = match write {
            Write::Set(bytes) => ("set", bytes),
            Write::Delete => ("del", &[]),
            Write::All => ("all", &[]),
        };
        let ttl = self
            .settings
            .remote_ttl
            .map_or(0, |ttl| ttl.as_millis().max(1));
        let version = self.with_connection(|connection| {
            self.script
                .key(&self.counter)
                .key(std::format!("{}{key}", self.values))
                .key(&self.floor)
                .arg(&self.channel)
                .arg(&self.origin)
                .arg(key)
                .arg(operation)
                .arg(value)
                .arg(ttl.to_string())
                .invoke::<u64>(connection)
        })?;
        self.published.fetch_add(1, Ordering::Relaxed);
        if matches!(write, Write::Set(_)) {
            self.shared.fetch_add(1, Ordering::Relaxed);
        }
        Ok(version)
    }

    /// The value of `key` in the remote tier, with the version it was written at: `None` if
    /// the tier does not hold one, or holds one from before the group's floor.
    pub(crate) fn fetch(&self, key: &K) -> Result<Option<(u64, Vec<u8>)>, redis::RedisError> {
        let mut bytes = Vec::new();
        key.encode(&mut bytes);
        let name = std::format!("{}{}", self.values, hex(&bytes));
        let (stored, floor): (Option<Vec<u8>>, Option<u64>) =
            self.with_connection(|connection| {
                redis::cmd("MGET")
                    .arg(&name)
                    .arg(&self.floor)
                    .query(connection)
            })?;
        let found = stored.and_then(|stored| {
            let colon = stored.iter().position(|&byte| byte == b':')?;
            let version = core::str::from_utf8(&stored[..colon])
                .ok()?
                .parse::<u64>()
                .ok()?;
            (version >= floor.unwrap_or(0)).then(|| (version, stored[colon + 1..].to_vec()))
        });
        let counter = if found.is_some() {
            &self.fetched
        } else {
            &self.fetch_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(found)
    }

    /// The hash the versions are kept under: of `key`'s bytes, as the invalidations carry them.
    fn hash_of(&self, key: &K) -> u64 {
        let mut bytes = Vec::new();
        key.encode(&mut bytes);
        self.key_hash(&bytes)
    }

    /// A write of `key` here, at `version`.
    pub(crate) fn note_local(&self, key: &K, version: u64) {
        let hash = self.hash_of(key);
        let mut versions = lock(&self.versions);
        let newest = versions.newest.entry(hash).or_insert(0);
        *newest = (*newest).max(version);
    }

    /// Whether a version of `key` newer than `version` is known here (its invalidation
    /// arrived): a copy at `version` is stale.
    pub(crate) fn superseded(&self, key: &K, version: u64) -> bool {
        let hash = self.hash_of(key);
        let versions = lock(&self.versions);
        match versions.newest.get(&hash) {
            Some(&newest) => newest > version,
            None => versions.forgotten_below > version,
        }
    }

    /// Another member's invalidation of `key` (bytes) at `version`: whether the local copy
    /// must go (it is not of a newer version).
    fn invalidated(&self, key: &[u8], version: u64) -> bool {
        let hash = self.key_hash(key);
        let mut versions = lock(&self.versions);
        if versions.newest.len() >= VERSIONS {
            let watermark = versions.newest.values().copied().max().unwrap_or(0);
            versions.newest.clear();
            versions.forgotten_below = watermark;
        }
        let newest = versions.newest.entry(hash).or_insert(0);
        if *newest > version {
            self.ignored.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        *newest = version;
        self.applied.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn stats(&self) -> CoherenceStats {
        let current = lock(&self.down_since).map_or(0, |since| since.elapsed().as_nanos() as u64);
        let gap = Duration::from_nanos(current);
        CoherenceStats {
            connected: self.connected.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            shared: self.shared.load(Ordering::Relaxed),
            fetched: self.fetched.load(Ordering::Relaxed),
            fetch_misses: self.fetch_misses.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            unpublished: self.unpublished_count.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            dropped_on_reconnect: self.dropped_on_reconnect.load(Ordering::Relaxed),
            disconnected_for: Duration::from_nanos(
                self.down_total.load(Ordering::Relaxed) + current,
            ),
            gap,
        }
    }

    fn went_down(&self) {
        if self.connected.load(Ordering::Relaxed) {
            slow_path!(warn, group = %self.settings.group, "coherence: Redis unreachable");
        }
        self.connected.store(false, Ordering::Relaxed);
        lock(&self.down_since).get_or_insert_with(Instant::now);
        let mut pool = lock(&self.pool);
        pool.open -= pool.idle.len();
        pool.idle.clear();
    }

    /// Connected (again): the gap ends; after one, what was written here meanwhile is
    /// published and what may have been missed is dropped. Only then does the link count as
    /// connected.
    fn came_up(&self, cache: &Cache<K, V, S, W, P>, first: bool) {
        let gap = lock(&self.down_since).take();
        if let Some(since) = gap {
            self.down_total
                .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        if first && gap.is_none() {
            self.connected.store(true, Ordering::Relaxed);
            return;
        }
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        // A connection of the link's own publishes the gap's writes before the flag is set.
        if let Ok(connection) = self.connect() {
            let mut pool = lock(&self.pool);
            if pool.open < self.settings.max_connections {
                pool.open += 1;
                pool.idle.push(connection);
            }
        }
        self.publish_deferred();
        let mut dropped = 0;
        if let Some(stale) = &self.stale {
            // The user's function runs with no lock held (`retain`'s contract).
            dropped = cache.retain(|key, _| !stale(key)) as u64;
            self.dropped_on_reconnect
                .fetch_add(dropped, Ordering::Relaxed);
        } else if self.settings.recovery == Recovery::DropAll {
            dropped = cache.len() as u64;
            self.dropped_on_reconnect
                .fetch_add(dropped, Ordering::Relaxed);
            cache.clear();
        }
        self.connected.store(true, Ordering::Relaxed);
        slow_path!(info,
            group = %self.settings.group,
            gap_ms = gap.map_or(0, |since| since.elapsed().as_millis() as u64),
            dropped,
            "coherence: reconnected"
        );
        let _ = dropped;
    }
}

impl<K, V, S, W, P: Policy> Drop for Link<K, V, S, W, P> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The subscriber thread: connects, subscribes, applies invalidations, reconnects; ends once
/// the link is dropped.
fn subscribe<K, V, S, W, P>(
    link: &Weak<Link<K, V, S, W, P>>,
    cache: &Cache<K, V, S, W, P>,
    stop: &AtomicBool,
) where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let Some(this) = link.upgrade() else { return };
        let (client, channel, retry) = (
            this.client.clone(),
            this.channel.clone(),
            this.settings.retry,
        );
        drop(this);
        let connected = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|connection| {
                connection.set_read_timeout(Some(Duration::from_millis(100)))?;
                Ok(connection)
            });
        let mut connection = match connected {
            Ok(connection) => connection,
            Err(_) => {
                if let Some(this) = link.upgrade() {
                    this.went_down();
                }
                first = false;
                std::thread::sleep(retry);
                continue;
            }
        };
        let mut pubsub = connection.as_pubsub();
        if pubsub.subscribe(&channel).is_err() {
            std::thread::sleep(retry);
            continue;
        }
        if let Some(this) = link.upgrade() {
            this.came_up(cache, first);
        }
        first = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let message = match pubsub.get_message() {
                Ok(message) => message,
                Err(error) if error.is_timeout() => continue,
                Err(_) => break,
            };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Some(this) = link.upgrade() else { return };
            apply(&this, cache, &payload);
        }
        if let Some(this) = link.upgrade() {
            this.went_down();
        }
    }
}

/// Applies one invalidation, `origin:version:key`, unless it is this member's own.
fn apply<K, V, S, W, P>(link: &Link<K, V, S, W, P>, cache: &Cache<K, V, S, W, P>, payload: &str)
where
    K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
    W: Weigher<K, V> + Send + Sync + 'static,
    P: Policy + Send + Sync + 'static,
    P::Meta: Send + Sync,
{
    let mut parts = payload.splitn(3, ':');
    let (Some(origin), Some(version), Some(key)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    if origin == link.origin {
        return;
    }
    let Ok(version) = version.parse::<u64>() else {
        return;
    };
    if key == ALL {
        link.applied.fetch_add(1, Ordering::Relaxed);
        cache.clear();
        return;
    }
    let Some(bytes) = unhex(key) else { return };
    if link.invalidated(&bytes, version)
        && let Ok(key) = K::decode(&bytes)
    {
        cache.remove(&key);
    }
}

impl CoherenceStats {
    /// A one-line summary, for a log.
    pub fn summary(&self) -> String {
        std::format!(
            "{} published {} shared {} fetched {} fetch misses {} applied {} ignored {} unpublished {} reconnects {} dropped on reconnect {} down for {:?}",
            if self.connected { "connected," } else { "DISCONNECTED," },
            self.published,
            self.shared,
            self.fetched,
            self.fetch_misses,
            self.applied,
            self.ignored,
            self.unpublished,
            self.reconnects,
            self.dropped_on_reconnect,
            self.disconnected_for
        )
        .to_string()
    }
}
