//! game_loop's fleet mode (`--redis URL --instances N`, feature `redis`): the world's entities
//! are shared by every instance. Writes go through `Coherent::insert_versioned` (every other
//! instance drops its copy) and also record the entity's newest state in a Redis hash, the
//! world's database: a miss loads from it. A sample of the reads that hit compares the local
//! copy's version with the database's; a copy older than a write acknowledged more than
//! `STALE_AFTER` ago is a stale read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stratacache::coherence::{Coherence, Coherent};

use super::{GameCache, STATE_BYTES, State};

/// A read is stale if it returns a version older than one written this long before it: ten
/// times the p99.9 delay `coherence_delay` measures on one machine.
pub const STALE_AFTER: Duration = Duration::from_millis(5);

/// Writes the newest state of an entity: field ARGV[1] of hash KEYS[1] becomes ARGV[3]
/// ("version:micros:hex") unless it holds a version of at least ARGV[2].
const RECORD: &str = "local cur = redis.call('HGET', KEYS[1], ARGV[1]) \
    if cur and tonumber(string.match(cur, '^(%d+)')) >= tonumber(ARGV[2]) then return 0 end \
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1";

pub struct Fleet {
    member: Coherent<u64, [u8; STATE_BYTES]>,
    client: redis::Client,
    script: redis::Script,
    pub checked: AtomicU64,
    pub stale: AtomicU64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fleet {
    /// Joins the fleet's group with `cache`.
    pub fn join(cache: &GameCache, url: &str) -> Result<Self, String> {
        let member = cache
            .clone()
            .coherent(Coherence::builder(url, "game_loop"))
            .map_err(|e| format!("cannot join the fleet: {e}"))?;
        let client = redis::Client::open(url).map_err(|e| format!("bad --redis URL: {e}"))?;
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !member.stats().connected {
            if std::time::Instant::now() > until {
                return Err(format!("cannot reach Redis at {url}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self {
            member,
            client,
            script: redis::Script::new(RECORD),
            checked: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        })
    }

    /// A connection for one worker.
    pub fn connect(&self) -> redis::Connection {
        self.client.get_connection().expect("a connection to Redis")
    }

    /// The world's newest state of `key`, if any instance wrote one.
    fn newest(connection: &mut redis::Connection, key: u64) -> Option<(u64, u64, State)> {
        let text: Option<String> = redis::cmd("HGET")
            .arg("game_loop:world")
            .arg(key)
            .query(connection)
            .ok()?;
        let text = text?;
        let mut parts = text.splitn(3, ':');
        let version = parts.next()?.parse().ok()?;
        let at = parts.next()?.parse().ok()?;
        let hex = parts.next()?;
        let mut bytes = [0u8; STATE_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some((version, at, State::from_bytes(&bytes)))
    }

    /// A miss: loads the world's newest state (or the initial one, version 0) and stores it
    /// unless a newer write's invalidation arrived meanwhile (`Coherent::fill`).
    pub fn load(&self, connection: &mut redis::Connection, key: u64) -> State {
        let (version, state) = Self::newest(connection, key).map_or_else(
            || (0, State::load(key)),
            |(version, _, state)| (version, state),
        );
        let _ = self.member.fill(key, state.to_bytes(), version);
        state
    }

    /// Writes `state` of `key` through coherence and into the world's database.
    pub fn write(&self, connection: &mut redis::Connection, key: u64, state: State) {
        let mut written = state;
        let version = self.member.insert_versioned(key, |version| {
            written.version = version.unwrap_or(0) as u32;
            written.to_bytes()
        });
        if let Ok(Some(version)) = version {
            let value = format!("{version}:{}:{}", now_micros(), hex(&written.to_bytes()));
            let _: Result<i64, _> = self
                .script
                .key("game_loop:world")
                .arg(key)
                .arg(version)
                .arg(value)
                .invoke(connection);
        }
    }

    /// Checks a read that hit: stale if the database has a newer version written more than
    /// `STALE_AFTER` ago.
    pub fn check(&self, connection: &mut redis::Connection, key: u64, read: &State) {
        self.checked.fetch_add(1, Ordering::Relaxed);
        if let Some((version, at, _)) = Self::newest(connection, key)
            && version > u64::from(read.version)
            && now_micros().saturating_sub(at) > STALE_AFTER.as_micros() as u64
        {
            self.stale.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn summary(&self) -> String {
        self.member.stats().summary()
    }
}
