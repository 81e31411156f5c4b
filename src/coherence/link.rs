//! The link to Redis: the writers' connection and script, the subscriber thread, the versions
//! of the keys written here or invalidated from elsewhere, and the counters.

use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::hash::{BuildHasher, Hash};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{CoherenceBuilder, CoherenceError, Recovery};
use crate::Cache;
use crate::hash::FixedState;
use crate::l2::Weigher;
use crate::l2::policy::Policy;
use crate::l3::Codec;

/// Takes the group's next version and publishes an invalidation, in one round trip. KEYS[1]:
/// the group's version counter; ARGV: the channel, the writer's id, the key (hex).
const PUBLISH: &str = "local v = redis.call('INCR', KEYS[1]) \
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. ':' .. v .. ':' .. ARGV[3]) return v";
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
    /// Other members' invalidations that dropped (or would have dropped) a copy here.
    pub applied: u64,
    /// Other members' invalidations older than this cache's own write of the key, ignored.
    pub ignored: u64,
    /// Writes made while Redis could not be reached (published on reconnection).
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
    /// This member's id in the messages (its own invalidations come back to it).
    origin: String,
    client: redis::Client,
    script: redis::Script,
    writer: Mutex<Option<redis::Connection>>,
    versions: Mutex<Versions>,
    /// Keys (hex) written while disconnected, and whether more were.
    unpublished: Mutex<(Vec<String>, bool)>,
    hasher: FixedState,
    connected: AtomicBool,
    /// Since when the link has been down (`None`: up).
    down_since: Mutex<Option<Instant>>,
    down_total: AtomicU64,
    published: AtomicU64,
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
        let client = redis::Client::open(settings.url.as_str()).map_err(CoherenceError::Redis)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let origin = std::format!("{:x}-{:x}", std::process::id(), nanos);
        let stop = Arc::new(AtomicBool::new(false));
        let link = Arc::new(Self {
            channel: std::format!("stratacache:{}:invalidations", settings.group),
            counter: std::format!("stratacache:{}:version", settings.group),
            settings,
            origin,
            client,
            script: redis::Script::new(PUBLISH),
            writer: Mutex::new(None),
            versions: Mutex::new(Versions {
                newest: hashbrown::HashMap::with_hasher(FixedState::with_seed(0xc0)),
                forgotten_below: 0,
            }),
            unpublished: Mutex::new((Vec::new(), false)),
            hasher: FixedState::with_seed(0xc1),
            connected: AtomicBool::new(false),
            down_since: Mutex::new(None),
            down_total: AtomicU64::new(0),
            published: AtomicU64::new(0),
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

    /// Publishes an invalidation of `key` with a new version: the version, or `None` if Redis
    /// cannot be reached (the key is remembered for the reconnection).
    pub(crate) fn publish(&self, key: &K) -> Option<u64> {
        let mut bytes = Vec::new();
        key.encode(&mut bytes);
        let key = hex(&bytes);
        match self.run(&key) {
            Ok(version) => Some(version),
            Err(_) => {
                self.unpublished_count.fetch_add(1, Ordering::Relaxed);
                let mut unpublished = lock(&self.unpublished);
                if unpublished.0.len() < UNPUBLISHED {
                    unpublished.0.push(key);
                } else {
                    unpublished.1 = true;
                }
                None
            }
        }
    }

    /// Runs the publishing script for `key` (hex) on the writers' connection.
    fn run(&self, key: &str) -> Result<u64, redis::RedisError> {
        let mut writer = lock(&self.writer);
        if writer.is_none() {
            if !self.connected.load(Ordering::Relaxed) {
                // Down: do not wait on a connection attempt per write.
                return Err(redis::RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::NotConnected,
                )));
            }
            *writer = Some(
                self.client
                    .get_connection_with_timeout(Duration::from_secs(1))?,
            );
        }
        let connection = writer.as_mut().expect("connected above");
        let version = self
            .script
            .key(&self.counter)
            .arg(&self.channel)
            .arg(&self.origin)
            .arg(key)
            .invoke::<u64>(connection);
        match version {
            Ok(version) => {
                self.published.fetch_add(1, Ordering::Relaxed);
                Ok(version)
            }
            Err(error) => {
                *writer = None;
                Err(error)
            }
        }
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
        *lock(&self.writer) = None;
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
        // The writers' connection may publish the gap's writes before the flag is set.
        *lock(&self.writer) = self
            .client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok();
        let (keys, overflow) = core::mem::take(&mut *lock(&self.unpublished));
        if overflow {
            let _ = self.run(ALL);
        } else {
            for key in keys {
                let _ = self.run(&key);
            }
        }
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
            "{} published {} applied {} ignored {} unpublished {} reconnects {} dropped on reconnect {} down for {:?}",
            if self.connected { "connected," } else { "DISCONNECTED," },
            self.published,
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
