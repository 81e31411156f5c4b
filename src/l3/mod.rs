//! The persistent L3 (feature `persistent`): a log-structured store of byte keys and values in
//! a directory, which survives restarts.
//!
//! Writes append checksummed records ([`record`](self) format: magic, version, lengths,
//! flags, expiry, sequence number, CRC32C) to the newest of a series of segment files; an
//! in-memory index maps each key's hash to where its latest record lies, and a read is one
//! positional read, verified before anything is returned. Opening a directory rebuilds the
//! index from the segments, keeps the record with the highest sequence number per key, steps
//! over damaged records, cuts a torn tail, and reports what it found ([`OpenReport`]).
//! [`Store::compact`] rewrites the live records of mostly dead segments; a disk budget drops
//! whole segments, oldest first. Values can be stored lz4-compressed where that saves bytes.
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

mod error;
mod record;
mod segment;

use core::hash::BuildHasher;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

pub use error::L3Error;
pub use record::{MAX_KEY, MAX_VALUE};

use record::Header;
use segment::{SEGMENT_HEADER, Scanned, Segment};

use crate::Priority;

/// When the store asks the operating system to put its writes on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never explicitly: the operating system writes back when it chooses. Survives a
    /// process crash, not a power loss.
    Never,
    /// At most this long after a write (checked at the next write or [`Store::sync`]).
    Every(Duration),
    /// Before each write returns: an acknowledged write survives a power loss.
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
    /// Whether to try lz4 on the value (`None`: the store's size threshold decides). The value
    /// is stored compressed only where that saves bytes.
    pub compress: Option<bool>,
}

impl Default for PutOptions {
    fn default() -> Self {
        Self {
            expires: None,
            priority: Priority::High,
            hits: 0,
            compress: None,
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
    /// Record bytes read by lookups and compactions.
    pub bytes_read: u64,
    /// Record bytes written (puts, removals, compaction copies).
    pub bytes_written: u64,
    /// Segments compacted.
    pub compactions: u64,
    /// Records found damaged when read (dropped, never returned).
    pub corrupt_records: u64,
    /// Segments dropped whole to keep within the disk budget.
    pub evicted_segments: u64,
    /// Bytes the segment files hold now.
    pub disk_bytes: u64,
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

    /// Values of at least this many bytes are lz4-compressed where that saves bytes (default
    /// 512; `None`: only where [`PutOptions::compress`] asks).
    #[must_use]
    pub fn compress_from(mut self, bytes: Option<usize>) -> Self {
        self.compress_from = bytes;
        self
    }

    /// Opens (creating it if missing) and recovers the directory.
    ///
    /// # Errors
    /// [`L3Error::Options`] for settings that cannot work, [`L3Error::Io`] when the directory
    /// cannot be created, read or written, [`L3Error::Locked`] when another store holds it,
    /// [`L3Error::NewerFormat`] when a newer build wrote it (nothing is changed then).
    pub fn open(self) -> Result<(Store, OpenReport), L3Error> {
        Store::open(self)
    }
}

/// Where a key's latest record lies.
#[derive(Clone, Copy, Debug)]
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
    key_len: u32,
    seq: u64,
    /// Nanoseconds since the Unix epoch; `u64::MAX` for never.
    expires: u64,
    tombstone: bool,
}

/// The index: key hash to the records of the keys with that hash (nearly always one).
type Index = hashbrown::HashMap<u64, Vec<Loc>, crate::hash::FixedState>;

struct Inner {
    segments: BTreeMap<u64, Segment>,
    active: u64,
    index: Index,
    next_seq: u64,
    last_sync: Instant,
    unsynced: bool,
    disk_bytes: u64,
    entries: u64,
    buf: Vec<u8>,
}

/// A persistent store of byte keys and values: see the [module docs](self).
///
/// Thread-safe: writes take turns under one lock; a read holds it only to find where the
/// record lies, then reads and verifies it outside.
pub struct Store {
    dir: PathBuf,
    segment_bytes: u64,
    disk_budget: Option<u64>,
    sync: SyncPolicy,
    compress_from: Option<usize>,
    hasher: crate::hash::FixedState,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    compactions: AtomicU64,
    corrupt: AtomicU64,
    evicted_segments: AtomicU64,
    /// Held (locked) while the store is open: a second store on the directory is refused.
    _lock: File,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The name of the lock file in a store's directory.
const LOCK_FILE: &str = "LOCK";

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1))
}

fn nanos_of(at: Option<SystemTime>) -> u64 {
    at.map_or(u64::MAX, |at| {
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1))
    })
}

fn priority_byte(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Critical => 3,
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
        }
    }

    fn open(options: StoreBuilder) -> Result<(Self, OpenReport), L3Error> {
        if options.segment_bytes < 4096 {
            return Err(L3Error::Options("segments must be at least 4 KiB"));
        }
        if options
            .disk_budget
            .is_some_and(|budget| budget < 2 * options.segment_bytes)
        {
            return Err(L3Error::Options(
                "the disk budget must hold at least two segments",
            ));
        }
        let dir = options.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| L3Error::io("create the directory", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| L3Error::io("open the lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(L3Error::Locked(dir)),
            Err(fs::TryLockError::Error(e)) => {
                return Err(L3Error::io("lock the directory", &lock_path, e));
            }
        }
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| L3Error::io("list the directory", &dir, e))? {
            let entry = entry.map_err(|e| L3Error::io("list the directory", &dir, e))?;
            if let Some(id) = entry.file_name().to_str().and_then(segment::id_of) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let hasher = crate::hash::FixedState::with_seed(0x5c1_3a7e);
        let (inner, report) = Self::recover(&dir, &ids, options.segment_bytes, &hasher)?;
        let store = Self {
            dir,
            segment_bytes: options.segment_bytes,
            disk_budget: options.disk_budget,
            sync: options.sync,
            compress_from: options.compress_from,
            hasher,
            inner: Mutex::new(inner),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            evicted_segments: AtomicU64::new(0),
            _lock: lock,
        };
        Ok((store, report))
    }

    /// Reads every segment back and indexes each key's latest record by `hasher`; the newest
    /// segment takes new writes unless full.
    fn recover(
        dir: &Path,
        ids: &[u64],
        segment_bytes: u64,
        hasher: &crate::hash::FixedState,
    ) -> Result<(Inner, OpenReport), L3Error> {
        let mut report = OpenReport {
            segments: ids.len(),
            ..OpenReport::default()
        };
        // Recovery keeps the winning record of each key by the key itself (keys are in memory
        // only while opening).
        let mut latest: std::collections::HashMap<Vec<u8>, Loc> = std::collections::HashMap::new();
        let mut segments = BTreeMap::new();
        for (at, &id) in ids.iter().enumerate() {
            let path = dir.join(segment::file_name(id));
            let newest = at + 1 == ids.len();
            let Scanned {
                segment,
                records,
                corrupt,
                dropped_bytes,
                torn_tail,
            } = match segment::scan(&path, id, newest) {
                Ok(scanned) => scanned,
                Err(segment::ScanError::Version(version)) => {
                    return Err(L3Error::NewerFormat { path, version });
                }
                Err(segment::ScanError::Io(e)) => {
                    return Err(L3Error::io("read a segment", &path, e));
                }
            };
            report.corrupt_records += corrupt;
            report.dropped_bytes += dropped_bytes;
            report.torn_tail |= newest && torn_tail;
            for (offset, header, key) in records {
                let loc = Loc {
                    segment: id,
                    offset,
                    len: u32::try_from(header.record_len()).expect("bounded by MAX_*"),
                    key_len: header.key_len,
                    seq: header.seq,
                    expires: header.expires,
                    tombstone: header.tombstone,
                };
                match latest.entry(key) {
                    std::collections::hash_map::Entry::Occupied(mut held) => {
                        if held.get().seq < loc.seq {
                            held.insert(loc);
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(free) => {
                        free.insert(loc);
                    }
                }
            }
            segments.insert(id, segment);
        }
        let now = now_nanos();
        let mut next_seq = 0;
        let mut index = Index::with_hasher(crate::hash::FixedState::with_seed(0));
        for (key, loc) in latest {
            next_seq = next_seq.max(loc.seq + 1);
            if loc.tombstone {
                report.tombstones += 1;
            } else if loc.expires <= now {
                report.expired += 1;
                continue;
            } else {
                report.entries += 1;
            }
            if let Some(segment) = segments.get_mut(&loc.segment) {
                segment.live += u64::from(loc.len);
            }
            index
                .entry(hasher.hash_one(&key[..]))
                .or_default()
                .push(loc);
        }
        let disk_bytes = segments.values().map(|s| s.len).sum();
        let mut inner = Inner {
            segments,
            active: 0,
            index,
            next_seq,
            last_sync: Instant::now(),
            unsynced: false,
            disk_bytes,
            entries: report.entries as u64,
            buf: Vec::new(),
        };
        match inner.segments.last_key_value() {
            Some((&id, segment)) if segment.len < segment_bytes => inner.active = id,
            last => {
                let id = last.map_or(0, |(&id, _)| id + 1);
                let segment = Segment::create(dir, id)
                    .map_err(|e| L3Error::io("create a segment", dir, e))?;
                inner.disk_bytes += segment.len;
                inner.segments.insert(id, segment);
                inner.active = id;
            }
        }
        Ok((inner, report))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock (an I/O error is returned, not thrown) leaves the index as
        // consistent as each step makes it: go on with it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `value` under `key` with the default [`PutOptions`].
    ///
    /// # Errors
    /// [`L3Error::TooLarge`] for a key or value beyond [`MAX_KEY`] or [`MAX_VALUE`] or a
    /// record the disk budget cannot hold; [`L3Error::Io`] when the write fails (nothing is
    /// changed then: the segment is cut back and the key keeps its previous value).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), L3Error> {
        self.put_with(key, value, PutOptions::default())
    }

    /// Stores `value` under `key` as `options` say. See [`put`](Self::put).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn put_with(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<(), L3Error> {
        for (bytes, limit) in [(key.len(), MAX_KEY), (value.len(), MAX_VALUE)] {
            if bytes > limit {
                return Err(L3Error::TooLarge {
                    bytes: bytes as u64,
                    limit: limit as u64,
                });
            }
        }
        let compress = options
            .compress
            .unwrap_or_else(|| self.compress_from.is_some_and(|from| value.len() >= from));
        let header = Header {
            tombstone: false,
            lz4: false,
            priority: priority_byte(options.priority),
            key_len: 0,
            value_len: 0,
            raw_len: 0,
            hits: options.hits,
            expires: nanos_of(options.expires),
            seq: 0,
        };
        let hash = self.hasher.hash_one(key);
        let mut inner = self.lock();
        self.write(&mut inner, hash, key, value, header, compress)
    }

    /// Removes `key`; whether it had a live value. A removal is a record too (a tombstone),
    /// so that the value does not come back when the directory is opened again.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the tombstone cannot be written (the key keeps its value).
    pub fn remove(&self, key: &[u8]) -> Result<bool, L3Error> {
        let hash = self.hasher.hash_one(key);
        let mut inner = self.lock();
        let Some(old) = self.find(&inner, hash, key)? else {
            return Ok(false);
        };
        if old.tombstone || old.expires <= now_nanos() {
            return Ok(false);
        }
        let header = Header {
            tombstone: true,
            lz4: false,
            priority: 0,
            key_len: 0,
            value_len: 0,
            raw_len: 0,
            hits: 0,
            expires: u64::MAX,
            seq: 0,
        };
        self.write(&mut inner, hash, key, &[], header, false)?;
        Ok(true)
    }

    /// Appends one record and points the index at it.
    fn write(
        &self,
        inner: &mut Inner,
        hash: u64,
        key: &[u8],
        value: &[u8],
        mut header: Header,
        compress: bool,
    ) -> Result<(), L3Error> {
        header.seq = inner.next_seq;
        let mut buf = core::mem::take(&mut inner.buf);
        buf.clear();
        record::encode(&mut buf, header, key, value, compress);
        let result = self.append(inner, &buf).and_then(|(segment, offset)| {
            let old = self.find(inner, hash, key)?;
            let loc = Loc {
                segment,
                offset,
                len: u32::try_from(buf.len()).expect("bounded by MAX_*"),
                key_len: u32::try_from(key.len()).expect("bounded by MAX_KEY"),
                seq: header.seq,
                expires: header.expires,
                tombstone: header.tombstone,
            };
            inner.next_seq += 1;
            self.set(inner, hash, old, loc);
            Ok(())
        });
        inner.buf = buf;
        result
    }

    /// Points the index at `loc` for a key whose previous record was `old`.
    fn set(&self, inner: &mut Inner, hash: u64, old: Option<Loc>, loc: Loc) {
        let was_live = old.is_some_and(|old| !old.tombstone);
        let locs = inner.index.entry(hash).or_default();
        if let Some(old) = old {
            locs.retain(|l| !(l.segment == old.segment && l.offset == old.offset));
        }
        locs.push(loc);
        if let Some(old) = old
            && let Some(segment) = inner.segments.get_mut(&old.segment)
        {
            segment.live -= u64::from(old.len);
        }
        if let Some(segment) = inner.segments.get_mut(&loc.segment) {
            segment.live += u64::from(loc.len);
        }
        match (was_live, loc.tombstone) {
            (false, false) => inner.entries += 1,
            (true, true) => inner.entries -= 1,
            _ => {}
        }
    }

    /// Appends `bytes` to the active segment (rolling over, and dropping old segments for the
    /// budget, first); where they went.
    fn append(&self, inner: &mut Inner, bytes: &[u8]) -> Result<(u64, u64), L3Error> {
        let len = bytes.len() as u64;
        if let Some(budget) = self.disk_budget
            && len + SEGMENT_HEADER as u64 > budget / 2
        {
            return Err(L3Error::TooLarge {
                bytes: len,
                limit: budget / 2 - SEGMENT_HEADER as u64,
            });
        }
        let active = &inner.segments[&inner.active];
        if active.len > SEGMENT_HEADER as u64 && active.len + len > self.segment_bytes {
            self.roll(inner)?;
        }
        if let Some(budget) = self.disk_budget {
            while inner.disk_bytes + len > budget && inner.segments.len() > 1 {
                self.evict_oldest(inner)?;
            }
        }
        let id = inner.active;
        let segment = inner.segments.get_mut(&id).expect("the active segment");
        let offset = segment
            .append(bytes)
            .map_err(|e| L3Error::io("append to a segment", &segment.path, e))?;
        inner.disk_bytes += len;
        self.bytes_written.fetch_add(len, Ordering::Relaxed);
        match self.sync {
            SyncPolicy::Always => self.sync_active(inner)?,
            SyncPolicy::Every(period) => {
                inner.unsynced = true;
                if inner.last_sync.elapsed() >= period {
                    self.sync_active(inner)?;
                }
            }
            SyncPolicy::Never => {}
        }
        Ok((id, offset))
    }

    fn sync_active(&self, inner: &mut Inner) -> Result<(), L3Error> {
        let segment = &inner.segments[&inner.active];
        segment
            .file
            .sync_data()
            .map_err(|e| L3Error::io("sync a segment", &segment.path, e))?;
        inner.last_sync = Instant::now();
        inner.unsynced = false;
        Ok(())
    }

    /// Seals the active segment and starts the next.
    fn roll(&self, inner: &mut Inner) -> Result<(), L3Error> {
        if inner.unsynced || self.sync == SyncPolicy::Always {
            self.sync_active(inner)?;
        }
        let id = inner.active + 1;
        let segment = Segment::create(&self.dir, id)
            .map_err(|e| L3Error::io("create a segment", &self.dir, e))?;
        if self.sync == SyncPolicy::Always {
            // The new file's name must survive too.
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| L3Error::io("sync the directory", &self.dir, e))?;
        }
        inner.disk_bytes += segment.len;
        inner.segments.insert(id, segment);
        inner.active = id;
        Ok(())
    }

    /// Drops the oldest segment and every index entry into it.
    fn evict_oldest(&self, inner: &mut Inner) -> Result<(), L3Error> {
        let (&id, _) = inner
            .segments
            .first_key_value()
            .expect("more than one segment");
        let segment = inner.segments.remove(&id).expect("present");
        let mut lost = 0;
        inner.index.retain(|_, locs| {
            locs.retain(|loc| {
                let gone = loc.segment == id;
                lost += u64::from(gone && !loc.tombstone);
                !gone
            });
            !locs.is_empty()
        });
        inner.entries -= lost;
        inner.disk_bytes -= segment.len;
        self.evicted_segments.fetch_add(1, Ordering::Relaxed);
        fs::remove_file(&segment.path)
            .map_err(|e| L3Error::io("delete a segment", &segment.path, e))
    }

    /// The latest record of `key` (live, tombstone or expired), checking stored keys where
    /// hashes collide.
    fn find(&self, inner: &Inner, hash: u64, key: &[u8]) -> Result<Option<Loc>, L3Error> {
        let Some(locs) = inner.index.get(&hash) else {
            return Ok(None);
        };
        for &loc in locs {
            if loc.key_len as usize == key.len() && self.key_matches(inner, loc, key)? {
                return Ok(Some(loc));
            }
        }
        Ok(None)
    }

    fn key_matches(&self, inner: &Inner, loc: Loc, key: &[u8]) -> Result<bool, L3Error> {
        let segment = &inner.segments[&loc.segment];
        let mut stored = std::vec![0u8; key.len()];
        use std::os::unix::fs::FileExt;
        segment
            .file
            .read_exact_at(&mut stored, loc.offset + record::HEADER as u64)
            .map_err(|e| L3Error::io("read a key", &segment.path, e))?;
        Ok(stored == key)
    }

    /// The value stored under `key`, if live. A record that fails its checksum is dropped
    /// (counted in [`StoreStats::corrupt_records`]) and reads as a miss.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the read fails.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, L3Error> {
        let hash = self.hasher.hash_one(key);
        let candidates: Vec<(Loc, Arc<File>)> = {
            let inner = self.lock();
            inner
                .index
                .get(&hash)
                .into_iter()
                .flatten()
                .filter(|loc| loc.key_len as usize == key.len())
                .map(|&loc| (loc, Arc::clone(&inner.segments[&loc.segment].file)))
                .collect()
        };
        let now = now_nanos();
        for (loc, file) in candidates {
            let bytes = segment::read_record(&file, loc.offset, loc.len)
                .map_err(|e| L3Error::io("read a record", &self.dir, e))?;
            self.bytes_read
                .fetch_add(u64::from(loc.len), Ordering::Relaxed);
            let decoded = record::decode(&bytes).and_then(|d| {
                let value = d.value()?;
                Ok((d.key == key, d.header, value))
            });
            match decoded {
                Ok((false, ..)) => {}
                Ok((true, header, value)) => {
                    if header.tombstone || header.expires <= now {
                        break;
                    }
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(value));
                }
                Err(_) => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    self.forget(hash, loc);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// Drops a damaged record from the index (if the index still points at it).
    fn forget(&self, hash: u64, loc: Loc) {
        Self::forget_in(&mut self.lock(), hash, loc);
    }

    /// As [`forget`](Self::forget), the lock held.
    fn forget_in(inner: &mut Inner, hash: u64, loc: Loc) {
        let Some(locs) = inner.index.get_mut(&hash) else {
            return;
        };
        let before = locs.len();
        locs.retain(|l| !(l.segment == loc.segment && l.offset == loc.offset));
        let removed = before != locs.len();
        if locs.is_empty() {
            inner.index.remove(&hash);
        }
        if removed {
            if !loc.tombstone {
                inner.entries -= 1;
            }
            if let Some(segment) = inner.segments.get_mut(&loc.segment) {
                segment.live -= u64::from(loc.len);
            }
        }
    }

    /// Puts every write so far on disk.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the operating system reports a failure.
    pub fn sync(&self) -> Result<(), L3Error> {
        let mut inner = self.lock();
        self.sync_active(&mut inner)
    }

    /// Rewrites the live records of every sealed segment at most half live into the active
    /// one, then deletes it. The copies are on disk before the old segment goes.
    ///
    /// # Errors
    /// [`L3Error::Io`] when a read, write or deletion fails; what was compacted before stays
    /// compacted, and no record is lost.
    pub fn compact(&self) -> Result<CompactionReport, L3Error> {
        let mut inner = self.lock();
        let mut report = CompactionReport::default();
        let now = now_nanos();
        let candidates: Vec<u64> = inner
            .segments
            .values()
            .filter(|s| s.id != inner.active && s.live * 2 <= s.len - SEGMENT_HEADER as u64)
            .map(|s| s.id)
            .collect();
        for id in candidates {
            let oldest = inner.segments.first_key_value().map(|(&first, _)| first) == Some(id);
            let file = Arc::clone(&inner.segments[&id].file);
            let moving: Vec<(u64, Loc)> = inner
                .index
                .iter()
                .flat_map(|(&hash, locs)| locs.iter().map(move |&loc| (hash, loc)))
                .filter(|(_, loc)| loc.segment == id)
                .collect();
            for (hash, loc) in moving {
                // Dropped: tombstones nothing older can be under, and expired values.
                let droppable = (loc.tombstone && oldest) || (!loc.tombstone && loc.expires <= now);
                let bytes = segment::read_record(&file, loc.offset, loc.len)
                    .map_err(|e| L3Error::io("read a record", &self.dir, e))?;
                self.bytes_read
                    .fetch_add(u64::from(loc.len), Ordering::Relaxed);
                if droppable || record::decode(&bytes).is_err() {
                    if !droppable {
                        self.corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                    Self::forget_in(&mut inner, hash, loc);
                    continue;
                }
                let (segment, offset) = self.append(&mut inner, &bytes)?;
                let moved = Loc {
                    segment,
                    offset,
                    ..loc
                };
                self.set(&mut inner, hash, Some(loc), moved);
                report.records_moved += 1;
            }
            self.sync_active(&mut inner)?;
            if let Some(segment) = inner.segments.remove(&id) {
                inner.disk_bytes -= segment.len;
                report.bytes_freed += segment.len;
                fs::remove_file(&segment.path)
                    .map_err(|e| L3Error::io("delete a segment", &segment.path, e))?;
            }
            report.segments += 1;
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        let (disk_bytes, entries) = {
            let inner = self.lock();
            (inner.disk_bytes, inner.entries)
        };
        StoreStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            compactions: self.compactions.load(Ordering::Relaxed),
            corrupt_records: self.corrupt.load(Ordering::Relaxed),
            evicted_segments: self.evicted_segments.load(Ordering::Relaxed),
            disk_bytes,
            entries,
        }
    }

    /// Keys with a live value (expired ones are counted until a read or a compaction meets
    /// them).
    pub fn len(&self) -> usize {
        self.lock().entries as usize
    }

    /// Whether no key has a live value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Writes under `Every` reach the disk at the latest when the store closes.
        let inner = self
            .inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.unsynced
            && let Some(segment) = inner.segments.get(&inner.active)
        {
            let _ = segment.file.sync_data();
        }
    }
}
