//! The persistent L3 (feature `persistent`): a log-structured store of byte keys and values in
//! a directory, which survives restarts.
//!
//! Writes are checksummed records (magic, format version, lengths, flags, expiry, sequence
//! number, CRC32C), encoded by the caller and queued, bounded, for one writer thread that
//! appends them in batches to the newest of a series of segment files and syncs as the
//! [`SyncPolicy`] says (under `Always`, writes waiting together share one sync). An in-memory
//! index maps each key's hash to its latest record, queued or written; a read of a written one
//! is one positional read, verified before anything is returned. Opening a directory rebuilds
//! the index from the segments, keeps the record with the highest sequence number per key,
//! steps over damaged records, cuts a torn tail, and reports what it found ([`OpenReport`]).
//! [`Store::compact`] rewrites the live records of mostly dead segments; a disk budget drops
//! whole segments, oldest first. Values can be stored compressed where that saves bytes: lz4
//! for what is read often, zstd for what is cold (a compaction's copies).
//!
//! A write the disk refuses (full, failing) is an [`L3Error::Io`] naming the directory and the
//! cause, for the write that waits on it and those after; the writer thread cuts the segment
//! back, keeps the records queued and readable, and retries every 100 ms, so writes go on once
//! there is room. A store closed while the disk still refuses drops what it could not write:
//! under [`SyncPolicy::Always`] none of it was acknowledged.
//!
//! ```
//! # fn main() -> Result<(), stratacache::l3::L3Error> {
//! # let dir = std::env::temp_dir().join(format!("stratacache-doc-{}", std::process::id()));
//! use stratacache::l3::{Store, SyncPolicy};
//!
//! let (store, report) = Store::builder(&dir).sync(SyncPolicy::Always).open()?;
//! assert_eq!(report.entries, 0);
//! store.put(b"player:7", b"{\"hp\":90}")?;
//! drop(store);
//!
//! // Another run finds it.
//! let (store, report) = Store::builder(&dir).open()?;
//! assert_eq!(report.entries, 1);
//! assert_eq!(store.get(b"player:7")?.as_deref(), Some(&b"{\"hp\":90}"[..]));
//! # drop(store); std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

mod codec;
mod error;
mod record;
mod segment;
mod store;
mod tiered;
#[cfg(feature = "serde")]
mod typed;
mod writer;

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use codec::{Codec, CodecError};
pub use error::L3Error;
pub use record::{Compression, MAX_KEY, MAX_VALUE};
pub(crate) use store::Encoded;
pub use store::Store;
pub(crate) use tiered::Fetched;
#[cfg(feature = "serde")]
pub use typed::Serde;

use crate::Priority;

/// When the store asks the operating system to put its writes on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never explicitly: the operating system writes back when it chooses. Survives a
    /// process crash, not a power loss.
    Never,
    /// At most this long after a write (the writer thread syncs when the period has passed
    /// since its last sync, and on [`Store::sync`] and close).
    Every(Duration),
    /// Before each write returns: an acknowledged write survives a power loss. Writes waiting
    /// together share one sync (group commit).
    Always,
}

/// How one record is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutOptions {
    /// When the entry stops being returned (`None`: never).
    pub expires: Option<SystemTime>,
    /// Kept in the record for warming: Critical entries first.
    pub priority: Priority,
    /// Kept in the record for warming: the hottest first.
    pub hits: u32,
    /// How to compress the value (`None`: lz4 if it is at least the store's
    /// [`compress_from`](StoreBuilder::compress_from) bytes). The value is stored compressed
    /// only where that saves bytes.
    pub compression: Option<Compression>,
}

impl Default for PutOptions {
    fn default() -> Self {
        Self {
            expires: None,
            priority: Priority::High,
            hits: 0,
            compression: None,
        }
    }
}

/// What opening a directory found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Segment files read.
    pub segments: usize,
    /// Keys with a live value.
    pub entries: usize,
    /// Keys whose latest record is a removal.
    pub tombstones: usize,
    /// Records dropped because their time had run out.
    pub expired: usize,
    /// Damaged stretches stepped over (a record whose checksum failed, garbage).
    pub corrupt_records: u64,
    /// Bytes dropped: damaged stretches and torn tails.
    pub dropped_bytes: u64,
    /// Whether the newest segment ended in a record cut short (a write a crash
    /// interrupted, never acknowledged under [`SyncPolicy::Always`]); it was cut off.
    pub torn_tail: bool,
}

/// What [`Store::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Segments rewritten and deleted.
    pub segments: usize,
    /// Live records copied forward.
    pub records_moved: usize,
    /// Disk bytes given back.
    pub bytes_freed: u64,
}

/// The store's counters since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Lookups that found a live value.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Record bytes read by lookups, warming and compactions.
    pub bytes_read: u64,
    /// Record bytes written (puts, removals, compaction copies).
    pub bytes_written: u64,
    /// Segments compacted.
    pub compactions: u64,
    /// Records found damaged when read (dropped, never returned).
    pub corrupt_records: u64,
    /// Segments dropped whole to keep within the disk budget.
    pub evicted_segments: u64,
    /// Values a cache evicted and the store did not keep, its write queue being full.
    pub dropped_writes: u64,
    /// Bytes the segment files hold now.
    pub disk_bytes: u64,
    /// The disk budget, if one was set.
    pub disk_budget: Option<u64>,
    /// Keys with a live value now.
    pub entries: u64,
}

/// Sets up a [`Store`]: see [`Store::builder`].
#[derive(Clone, Debug)]
pub struct StoreBuilder {
    dir: PathBuf,
    segment_bytes: u64,
    disk_budget: Option<u64>,
    sync: SyncPolicy,
    compress_from: Option<usize>,
    queue_bytes: usize,
}

impl StoreBuilder {
    /// Segments roll over at this size (default 64 MiB; at least 4 KiB). A record larger than
    /// a segment gets a segment of its own.
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The most bytes the segment files may hold; past it, whole segments are dropped, oldest
    /// first (default: no limit). At least two segments' worth.
    #[must_use]
    pub fn disk_budget(mut self, bytes: u64) -> Self {
        self.disk_budget = Some(bytes);
        self
    }

    /// When writes are put on disk (default [`SyncPolicy::Every`] 100 ms).
    #[must_use]
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// Values of at least this many bytes are lz4-compressed where that saves bytes, and
    /// recompressed with zstd when a compaction copies them (they outlived their segment: cold
    /// data). Default 512; `None`: only where [`PutOptions::compression`] asks.
    #[must_use]
    pub fn compress_from(mut self, bytes: Option<usize>) -> Self {
        self.compress_from = bytes;
        self
    }

    /// The most bytes of records waiting for the writer thread (default 16 MiB): a write finds
    /// room or waits for it, so a disk slower than the writes holds them back instead of
    /// filling memory. At least one record always fits.
    #[must_use]
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Opens (creating it if missing) and recovers the directory.
    ///
    /// # Errors
    /// [`L3Error::Options`] for settings that cannot work, [`L3Error::Io`] when the directory
    /// cannot be created, read or written, [`L3Error::Locked`] when another store holds it,
    /// [`L3Error::NewerFormat`] when a newer build wrote it (nothing is changed then).
    pub fn open(self) -> Result<(Store, OpenReport), L3Error> {
        #[cfg(feature = "tracing")]
        let started = std::time::Instant::now();
        let opened = Store::open(self);
        #[cfg(feature = "tracing")]
        match &opened {
            Ok((_, report)) => slow_path!(
                info,
                segments = report.segments,
                entries = report.entries,
                corrupt_records = report.corrupt_records,
                dropped_bytes = report.dropped_bytes,
                torn_tail = report.torn_tail,
                ms = started.elapsed().as_millis() as u64,
                "disk tier recovered"
            ),
            Err(error) => slow_path!(warn, %error, "disk tier could not open"),
        }
        opened
    }
}

impl Store {
    /// A builder for a store in directory `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> StoreBuilder {
        StoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            segment_bytes: 64 << 20,
            disk_budget: None,
            sync: SyncPolicy::Every(Duration::from_millis(100)),
            compress_from: Some(512),
            queue_bytes: 16 << 20,
        }
    }
}

/// Nanoseconds since the Unix epoch now.
fn now_nanos() -> u64 {
    nanos_of(Some(SystemTime::now()))
}

/// `at` in nanoseconds since the Unix epoch (`u64::MAX` for never; 0 before the epoch).
fn nanos_of(at: Option<SystemTime>) -> u64 {
    at.map_or(u64::MAX, |at| {
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1))
    })
}

/// A priority as a record stores it.
fn priority_byte(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    }
}

/// A record's priority byte as a priority (an unknown byte, from a damaged or newer record
/// that passed its checksum, reads as the default, `High`).
fn priority_of(byte: u8) -> Priority {
    match byte {
        0 => Priority::Low,
        1 => Priority::Medium,
        3 => Priority::Critical,
        _ => Priority::High,
    }
}
