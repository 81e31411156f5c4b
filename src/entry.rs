//! What a caller says about an entry when storing it, and why entries leave.

use core::time::Duration;

/// How much an entry matters, from the source design's four levels.
///
/// | priority | where an insert puts it | how the default L2 policy (W-TinyLFU) treats it |
/// |---|---|---|
/// | `Critical` | L2 **and** L1 at once | kept apart from the other entries and evicted only when the whole cache holds nothing else to evict (see below) |
/// | `High` (default) | L2 | ordinary standing: admitted from the window when the frequency sketch has seen it more often than the victim |
/// | `Medium` | L2 | counts half its frequency when it meets a victim |
/// | `Low` | L2 | counts no frequency: it lives in the window and never displaces an incumbent |
///
/// **How Critical entries are evicted last.** The default policy keeps them in a ring of their
/// own. An insertion that puts the cache over budget first evicts only non-Critical entries,
/// across every shard (its own shard, then the others, then the new entry itself); only if
/// the cache is still over budget, because it holds nothing but Critical entries (and the new
/// one), does it evict Critical entries, by CLOCK among themselves. Expired entries of any
/// priority are never returned and are reclaimed first.
///
/// Other policies read priorities their own way: the CLOCK family ([`ClockPolicy`], and
/// `ProbationClock` and `S3Fifo` of the `policies` feature) saturates an entry's use counter
/// at [`max_uses`](Self::max_uses), so under pressure `Medium` and `Low` entries age out before
/// `High` ones with the same use; every policy passes over `Critical` entries while it may.
///
/// [`ClockPolicy`]: crate::policy::ClockPolicy
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Priority {
    /// Background data: the first to go under pressure.
    Low = 0,
    /// Useful but cheap to recompute (UI data).
    Medium = 1,
    /// The ordinary standing of a cached entry (protocol messages): what `insert` uses.
    #[default]
    High = 2,
    /// Must stay (match state): stored in L1 at once, evicted last.
    Critical = 3,
}

impl Priority {
    /// The most second chances a CLOCK hand gives an entry of this priority.
    pub const fn max_uses(self) -> u8 {
        match self {
            Self::Low => 1,
            Self::Medium => 2,
            Self::High | Self::Critical => 3,
        }
    }
}

/// Options for [`Cache::insert_with`](crate::Cache::insert_with): priority, time to live and
/// an explicit weight. The default is what [`insert`](crate::Cache::insert) uses.
///
/// ```
/// use core::time::Duration;
/// use stratacache::{InsertOptions, Priority};
///
/// let options = InsertOptions::new()
///     .priority(Priority::Critical)
///     .time_to_live(Duration::from_secs(30))
///     .weight(4);
/// assert_eq!(options.get_priority(), Priority::Critical);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub struct InsertOptions {
    pub(crate) priority: Priority,
    pub(crate) ttl: Ttl,
    pub(crate) weight: Option<u64>,
    /// Whether the entry is written to the persistent tier as it is stored (`None`: as the
    /// cache's [`write_through`](crate::CacheBuilder::write_through) setting says).
    #[cfg(feature = "persistent")]
    pub(crate) write_through: Option<bool>,
    /// How a written-through record is compressed (`None`: as the store's threshold says).
    #[cfg(feature = "persistent")]
    pub(crate) compression: Option<crate::l3::Compression>,
}

/// An entry's lifetime as the caller asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Ttl {
    /// The cache's default time to live (none unless the builder set one).
    #[default]
    CacheDefault,
    /// Never expires, whatever the cache's default.
    Never,
    /// Expires this long after the insertion.
    For(Duration),
}

impl InsertOptions {
    /// The defaults: `High` priority, the cache's default time to live, the weigher's weight.
    pub const fn new() -> Self {
        Self {
            priority: Priority::High,
            ttl: Ttl::CacheDefault,
            weight: None,
            #[cfg(feature = "persistent")]
            write_through: None,
            #[cfg(feature = "persistent")]
            compression: None,
        }
    }

    /// Stores the entry at `priority`.
    pub const fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The entry expires `ttl` after the insertion (by the cache's [`Clock`](crate::Clock)):
    /// from then on it is never returned, and it is reclaimed by the eviction hand, by the
    /// first lookup that finds it, or by [`Cache::evict_expired`](crate::Cache::evict_expired).
    pub const fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Ttl::For(ttl);
        self
    }

    /// The entry never expires, even if the cache has a default time to live.
    pub const fn never_expire(mut self) -> Self {
        self.ttl = Ttl::Never;
        self
    }

    /// The entry weighs `weight`, whatever the cache's weigher says (the weigher is not
    /// called).
    pub const fn weight(mut self, weight: u64) -> Self {
        self.weight = Some(weight);
        self
    }

    /// With a persistent tier: whether the entry is also written there as it is stored
    /// (write-through), whatever the cache's
    /// [`write_through`](crate::CacheBuilder::write_through) setting. Under
    /// [`SyncPolicy::Always`](crate::l3::SyncPolicy::Always) the insertion returns once the
    /// disk has it; otherwise the store's policy says when it gets there.
    #[cfg(feature = "persistent")]
    pub const fn write_through(mut self, yes: bool) -> Self {
        self.write_through = Some(yes);
        self
    }

    /// With a persistent tier: how the entry's record is compressed when it is written
    /// through (prepared on the caller's thread before any lock is taken): lz4 for values
    /// read often, zstd for cold ones. By default the store's size threshold chooses lz4 or
    /// nothing. What memory evicts is stored uncompressed, and compressed (zstd) when a
    /// compaction finds it still live.
    #[cfg(feature = "persistent")]
    pub const fn compression(mut self, compression: crate::l3::Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The priority these options store at.
    pub const fn get_priority(&self) -> Priority {
        self.priority
    }
}

/// Why an entry left the cache, as the eviction listener is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Evicted to keep the cache within its capacity.
    Capacity,
    /// Its time to live ran out.
    Expired,
    /// Its value was replaced by an insertion for the same key (the listener sees the old
    /// value).
    Replaced,
    /// Removed by `remove` or `clear`.
    Removed,
}

impl RemovalCause {
    /// Whether the cache chose to drop the entry (capacity or expiry), as opposed to a caller
    /// replacing or removing it.
    pub const fn was_evicted(self) -> bool {
        matches!(self, Self::Capacity | Self::Expired)
    }
}

/// Each entry's time to live, chosen from the entry itself when it is stored (moka's
/// `Expiry`): a session by its kind, an asset by its size, a replay by its length.
///
/// The entry's own deadline, which the hooks choose, is one that reads may move: the write
/// hooks run on the inserting thread before it takes any lock, for insertions that keep the
/// cache's default time to live (an [`InsertOptions::time_to_live`] or
/// [`InsertOptions::never_expire`] overrides them), and the read hook on the reading thread,
/// with no lock held, on reads that reach L2 (L1's copies of such an entry live at most a
/// 32nd of its remaining time, so a read entry is asked about at least that often). A
/// cache-wide time to live or time to idle still applies: the earliest deadline ends the
/// entry. Whether the key is new or replaced is read just before (a concurrent write of the
/// same key may change it meanwhile). Like the weigher, a write hook runs while a loader's
/// single flight is pending: it must not load the key being stored; a read hook that reads
/// the cache recurses. Such a cache keeps 8 bytes beside each entry for its own deadline.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stratacache::{Cache, Expiry, ManualClock};
///
/// /// A shield lasts as many seconds as its strength.
/// struct ShieldTime;
///
/// impl Expiry<&'static str, u64> for ShieldTime {
///     fn expire_after_create(&self, _: &&'static str, strength: &u64) -> Option<Duration> {
///         Some(Duration::from_secs(*strength))
///     }
/// }
///
/// let clock = Arc::new(ManualClock::new());
/// let cache: Cache<&str, u64> = Cache::builder()
///     .capacity(100)
///     .clock(Arc::clone(&clock))
///     .expiry(ShieldTime)
///     .build()?;
/// cache.insert("weak", 2)?;
/// cache.insert("strong", 9)?;
/// clock.advance(Duration::from_secs(3));
/// assert_eq!((cache.get("weak"), cache.get("strong")), (None, Some(9)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Expiry<K, V>: Send + Sync {
    /// How long a new entry lives (`None`: no deadline of its own). By default, none.
    fn expire_after_create(&self, key: &K, value: &V) -> Option<Duration> {
        let _ = (key, value);
        None
    }

    /// How long an entry lives after its value was replaced, given what was `left` of the
    /// old one's time (`None`: it had no deadline). By default, what was left.
    fn expire_after_update(&self, key: &K, value: &V, left: Option<Duration>) -> Option<Duration> {
        let _ = (key, value);
        left
    }

    /// How long an entry lives after a read, given what was `left` of its time (`None`: it
    /// had no deadline). By default, what was left: reads change nothing.
    fn expire_after_read(&self, key: &K, value: &V, left: Option<Duration>) -> Option<Duration> {
        let _ = (key, value);
        left
    }
}
