//! The store: its index and write queue under one lock, reads and encoding outside it, and
//! recovery. The writer thread ([`super::writer`]) is the only one that appends to segments.
//!
//! A write encodes its record outside the lock, then under it takes the next sequence number
//! (so the queue, the segments and the sequence numbers are in one order), points the index
//! at the queued bytes and wakes the writer thread. Reads find queued records in memory and
//! written ones on disk. Each key's index entry is its record with the highest sequence number,
//! as recovery would choose, so what a reopened store returns is what the open one did.

use core::hash::BuildHasher;
use core::sync::atomic::{AtomicU64, Ordering};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::vec::Vec;

mod compact;
mod recover;

use super::record::{self, Compression, HEADER, Header};
use super::segment::{self, SEGMENT_HEADER, Scanned, Segment};
use super::tiered::Fetched;
use super::{
    CompactionReport, L3Error, MAX_KEY, MAX_VALUE, OpenReport, PutOptions, StoreBuilder,
    StoreStats, SyncPolicy, nanos_of, now_nanos, priority_byte,
};

/// Where a record lies.
#[derive(Clone, Debug)]
pub(super) enum Place {
    /// Queued for the writer thread: the record's bytes, and its ticket (unique per queued
    /// record: what tells the writer thread's landing which index entry is its own).
    Queued { bytes: Arc<[u8]>, ticket: u64 },
    /// Written, at `offset` of segment `segment`.
    Disk { segment: u64, offset: u64 },
}

/// A key's latest record.
#[derive(Clone, Debug)]
pub(super) struct Loc {
    pub(super) place: Place,
    pub(super) len: u32,
    pub(super) key_len: u32,
    /// The record's order among the key's records (a compaction's copy keeps its
    /// original's); the highest wins, a value over a removal of the same.
    pub(super) seq: u64,
    /// Nanoseconds since the Unix epoch; `u64::MAX` for never.
    pub(super) expires: u64,
    pub(super) tombstone: bool,
    /// The record's priority byte (warming takes Critical entries first).
    pub(super) priority: u8,
}

impl Loc {
    /// Whether `self` is the record `other` (not merely of the same key).
    fn is(&self, other: &Loc) -> bool {
        match (&self.place, &other.place) {
            (Place::Queued { ticket: a, .. }, Place::Queued { ticket: b, .. }) => a == b,
            (
                Place::Disk { segment, offset },
                Place::Disk {
                    segment: s,
                    offset: o,
                },
            ) => segment == s && offset == o,
            _ => false,
        }
    }

    /// Whether this record is newer than `other`, a record of the same key: a higher order,
    /// or the same order and a value over a removal (recovery chooses the same way).
    pub(super) fn newer_than(&self, other: &Loc) -> bool {
        self.seq > other.seq || (self.seq == other.seq && other.tombstone && !self.tombstone)
    }
}

/// Key hash to the latest records of the keys with that hash (nearly always one).
pub(super) type Index = hashbrown::HashMap<u64, Vec<Loc>, crate::hash::FixedState>;

/// A record its writer encoded outside the lock: its bytes, the checksum of its payload (for
/// stamping its order under the lock), and what the index keeps of it.
pub(crate) struct Encoded {
    pub(super) bytes: Vec<u8>,
    pub(super) payload: u32,
    pub(super) hash: u64,
    pub(super) key_len: usize,
    pub(super) header: Header,
}

/// A record waiting for the writer thread.
pub(super) struct Queued {
    pub(super) hash: u64,
    pub(super) ticket: u64,
    pub(super) bytes: Arc<[u8]>,
}

/// What the lock guards.
pub(super) struct Inner {
    pub(super) segments: BTreeMap<u64, Segment>,
    /// The segment the writer thread appends to.
    pub(super) active: u64,
    pub(super) index: Index,
    pub(super) next_seq: u64,
    pub(super) disk_bytes: u64,
    /// Keys with a live value.
    pub(super) entries: u64,
    pub(super) queue: VecDeque<Queued>,
    pub(super) queued_bytes: usize,
    /// Records queued since opening: a write's ticket is the count just after its own.
    pub(super) enqueued: u64,
    /// Records written, in queue order.
    pub(super) written: u64,
    /// Records written and synced.
    pub(super) synced: u64,
    /// A sync through this ticket was asked for ([`Store::sync`], compaction).
    pub(super) sync_wanted: u64,
    /// Whether the writer thread waits for work (a write wakes it only then).
    pub(super) idle: bool,
    /// The writer thread's last failure, until a batch succeeds again.
    pub(super) failure: Option<(std::io::ErrorKind, String)>,
    /// Failed writes and syncs so far: a waiting write reports only a failure that came after
    /// it began to wait (an older one may be over: the writer thread retries).
    pub(super) failures: u64,
    pub(super) closing: bool,
}

/// The store's counters.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) bytes_read: AtomicU64,
    pub(super) bytes_written: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) corrupt: AtomicU64,
    pub(super) evicted_segments: AtomicU64,
    pub(super) dropped: AtomicU64,
}

/// What the store and its writer thread share.
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) segment_bytes: u64,
    pub(super) disk_budget: Option<u64>,
    pub(super) sync: SyncPolicy,
    pub(super) queue_bytes: usize,
    pub(super) inner: Mutex<Inner>,
    /// The writer thread waits here for work.
    pub(super) work: Condvar,
    /// Writes waiting for room in the queue, or for their record's sync, wait here.
    pub(super) progress: Condvar,
    pub(super) counters: Counters,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every step under the lock leaves the index consistent (I/O errors are returned, not
        // thrown), so a panic elsewhere does not make it unusable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Points the index at `loc` for a key whose current record is `old`, unless `loc` is not
    /// newer (see [`Loc::newer_than`]); whether it did.
    pub(super) fn set(inner: &mut Inner, hash: u64, old: Option<&Loc>, loc: Loc) -> bool {
        if old.is_some_and(|old| !loc.newer_than(old)) {
            return false;
        }
        let was_live = old.is_some_and(|old| !old.tombstone);
        if let Some(old) = old {
            Self::unlink(inner, hash, old);
        }
        match (was_live, loc.tombstone) {
            (false, false) => inner.entries += 1,
            (true, true) => inner.entries -= 1,
            _ => {}
        }
        if let Place::Disk { segment, .. } = loc.place
            && let Some(segment) = inner.segments.get_mut(&segment)
        {
            segment.live += u64::from(loc.len);
        }
        inner.index.entry(hash).or_default().push(loc);
        true
    }

    /// Takes record `loc` out of the index (entries are not recounted); whether it was there.
    fn unlink(inner: &mut Inner, hash: u64, loc: &Loc) -> bool {
        let Some(locs) = inner.index.get_mut(&hash) else {
            return false;
        };
        let before = locs.len();
        locs.retain(|l| !l.is(loc));
        let removed = before != locs.len();
        if locs.is_empty() {
            inner.index.remove(&hash);
        }
        if removed
            && let Place::Disk { segment, .. } = loc.place
            && let Some(segment) = inner.segments.get_mut(&segment)
        {
            segment.live -= u64::from(loc.len);
        }
        removed
    }

    /// Drops record `loc` from the index (damaged, expired, or a removal nothing is left
    /// under), if the index still points at it.
    pub(super) fn forget(inner: &mut Inner, hash: u64, loc: &Loc) {
        if Self::unlink(inner, hash, loc) && !loc.tombstone {
            inner.entries -= 1;
        }
    }

    /// The queued record of `hash` and ticket `ticket` was written at `offset` of `segment`:
    /// the index points there now (if it still points at the record).
    pub(super) fn land(inner: &mut Inner, hash: u64, ticket: u64, segment: u64, offset: u64) {
        let present = match inner.segments.get_mut(&segment) {
            Some(segment) => {
                segment.in_flight -= 1;
                true
            }
            None => false,
        };
        let Some(loc) = inner.index.get_mut(&hash).and_then(|locs| {
            locs.iter_mut()
                .find(|l| matches!(l.place, Place::Queued { ticket: t, .. } if t == ticket))
        }) else {
            return;
        };
        if !present {
            // The disk budget dropped the segment in the same batch: the record is gone.
            let gone = loc.clone();
            Self::forget(inner, hash, &gone);
            return;
        }
        loc.place = Place::Disk { segment, offset };
        let len = u64::from(loc.len);
        if let Some(segment) = inner.segments.get_mut(&segment) {
            segment.live += len;
        }
    }

    /// The current record of `key` (live, removal or expired), comparing stored keys where
    /// hashes collide.
    fn find(&self, inner: &Inner, hash: u64, key: &[u8]) -> Result<Option<Loc>, L3Error> {
        let Some(locs) = inner.index.get(&hash) else {
            return Ok(None);
        };
        for loc in locs {
            if loc.key_len as usize == key.len()
                && Self::key_of(inner, loc)?.is_some_and(|stored| *stored == *key)
            {
                return Ok(Some(loc.clone()));
            }
        }
        Ok(None)
    }

    /// The key of record `loc`: from its queued bytes, or read from its segment (`None` when
    /// the segment is gone).
    ///
    /// # Errors
    /// [`L3Error::Io`] when the read fails.
    pub(super) fn key_of<'a>(
        inner: &Inner,
        loc: &'a Loc,
    ) -> Result<Option<Cow<'a, [u8]>>, L3Error> {
        let len = loc.key_len as usize;
        match &loc.place {
            Place::Queued { bytes, .. } => Ok(Some(Cow::Borrowed(&bytes[HEADER..HEADER + len]))),
            Place::Disk { segment, offset } => {
                let Some(segment) = inner.segments.get(segment) else {
                    return Ok(None);
                };
                let mut key = std::vec![0u8; len];
                segment
                    .file
                    .read_exact_at(&mut key, offset + HEADER as u64)
                    .map_err(|e| L3Error::io("read a key", &segment.path, e))?;
                Ok(Some(Cow::Owned(key)))
            }
        }
    }
}

/// The name of the lock file in a store's directory.
const LOCK_FILE: &str = "LOCK";

/// A persistent store of byte keys and values: see the [module docs](super).
///
/// Thread-safe. Writes are encoded by their callers and queued (bounded) for one writer
/// thread, which appends them in batches; a read holds the lock only to find the record, then
/// reads and verifies it outside.
pub struct Store {
    pub(super) shared: Arc<Shared>,
    pub(super) hasher: crate::hash::FixedState,
    compress_from: Option<usize>,
    writer: Option<JoinHandle<()>>,
    /// Held (locked) while the store is open: a second store on the directory is refused.
    _lock: File,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(super) fn open(options: StoreBuilder) -> Result<(Self, OpenReport), L3Error> {
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
        let (inner, report) = recover::recover(&dir, &ids, options.segment_bytes, &hasher)?;
        let shared = Arc::new(Shared {
            dir,
            segment_bytes: options.segment_bytes,
            disk_budget: options.disk_budget,
            sync: options.sync,
            queue_bytes: options.queue_bytes,
            inner: Mutex::new(inner),
            work: Condvar::new(),
            progress: Condvar::new(),
            counters: Counters::default(),
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("stratacache-l3-writer".into())
                .spawn(move || super::writer::run(&shared))
                .map_err(|e| L3Error::io("start the writer thread", &options.dir, e))?
        };
        Ok((
            Self {
                shared,
                hasher,
                compress_from: options.compress_from,
                writer: Some(writer),
                _lock: lock,
            },
            report,
        ))
    }

    /// Stores `value` under `key` with the default [`PutOptions`].
    ///
    /// Returns once the record is queued (the value is readable from then on), or under
    /// [`SyncPolicy::Always`] once it is on disk.
    ///
    /// # Errors
    /// [`L3Error::TooLarge`] for a key or value beyond [`MAX_KEY`] or [`MAX_VALUE`] or a
    /// record the disk budget cannot hold; [`L3Error::Io`] when the writer thread's last
    /// write failed (the store retries; under `Always` this write is not acknowledged).
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
        let packing = options
            .compression
            .unwrap_or_else(|| self.default_packing(value.len()));
        let header = Header::value(
            priority_byte(options.priority),
            options.hits,
            nanos_of(options.expires),
        );
        let record = self.encode(header, key, value, packing);
        self.check_fits(record.bytes.len())?;
        let inner = self.room(record.bytes.len())?;
        let old = self.shared.find(&inner, record.hash, key)?;
        self.enqueue(inner, old.as_ref(), record)
    }

    /// Removes `key`; whether it had a live value. A removal is a record too (a tombstone),
    /// so that the value does not come back when the directory is opened again.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn remove(&self, key: &[u8]) -> Result<bool, L3Error> {
        let record = self.encode(Header::removal(), key, &[], Compression::None);
        let inner = self.room(record.bytes.len())?;
        let Some(old) = self.shared.find(&inner, record.hash, key)? else {
            return Ok(false);
        };
        if old.tombstone || old.expires <= now_nanos() {
            return Ok(false);
        }
        self.enqueue(inner, Some(&old), record)?;
        Ok(true)
    }

    /// Encodes a record outside the lock.
    pub(super) fn encode(
        &self,
        header: Header,
        key: &[u8],
        value: &[u8],
        packing: Compression,
    ) -> Encoded {
        let mut bytes = Vec::new();
        let payload = record::encode(&mut bytes, header, key, value, packing);
        Encoded {
            bytes,
            payload,
            hash: self.hasher.hash_one(key),
            key_len: key.len(),
            header,
        }
    }

    /// A record the disk budget can never hold is refused before it is queued.
    fn check_fits(&self, len: usize) -> Result<(), L3Error> {
        match self.shared.disk_budget {
            Some(budget) if len as u64 + SEGMENT_HEADER as u64 > budget / 2 => {
                Err(L3Error::TooLarge {
                    bytes: len as u64,
                    limit: budget / 2 - SEGMENT_HEADER as u64,
                })
            }
            _ => Ok(()),
        }
    }

    /// The lock, once the queue has room for a record of `len` bytes (an empty queue takes
    /// any record).
    pub(super) fn room(&self, len: usize) -> Result<MutexGuard<'_, Inner>, L3Error> {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        let seen = inner.failures;
        while inner.queued_bytes > 0 && inner.queued_bytes + len > shared.queue_bytes {
            if let Some(error) = failure(&inner, &shared.dir, seen) {
                return Err(error);
            }
            inner = wait(&shared.progress, inner);
        }
        Ok(inner)
    }

    /// Stamps `record` with the next sequence number, points the index at it (the key's
    /// current record is `old`) and queues it; under [`SyncPolicy::Always`], waits for its
    /// sync.
    pub(super) fn enqueue(
        &self,
        inner: MutexGuard<'_, Inner>,
        old: Option<&Loc>,
        record: Encoded,
    ) -> Result<(), L3Error> {
        let (inner, ticket) = self.queue(inner, old, record);
        if self.shared.sync == SyncPolicy::Always {
            drop(self.sync_through(inner, ticket)?);
        }
        Ok(())
    }

    /// [`enqueue`](Self::enqueue) without waiting for the sync: the record's ticket.
    pub(super) fn queue<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        old: Option<&Loc>,
        record: Encoded,
    ) -> (MutexGuard<'a, Inner>, u64) {
        let shared = &*self.shared;
        let Encoded {
            mut bytes,
            payload,
            hash,
            key_len,
            header,
        } = record;
        let seq = inner.next_seq;
        inner.next_seq += 1;
        record::restamp(&mut bytes, seq, payload);
        let bytes: Arc<[u8]> = bytes.into();
        inner.enqueued += 1;
        let ticket = inner.enqueued;
        let loc = Loc {
            place: Place::Queued {
                bytes: Arc::clone(&bytes),
                ticket,
            },
            len: u32::try_from(bytes.len()).expect("bounded by MAX_KEY and MAX_VALUE"),
            key_len: u32::try_from(key_len).expect("bounded by MAX_KEY"),
            seq,
            expires: header.expires,
            tombstone: header.tombstone,
            priority: header.priority,
        };
        Shared::set(&mut inner, hash, old, loc);
        inner.queued_bytes += bytes.len();
        inner.queue.push_back(Queued {
            hash,
            ticket,
            bytes,
        });
        if inner.idle {
            shared.work.notify_one();
        }
        (inner, ticket)
    }

    /// The value stored under `key`, if live. A record that fails its checksum is dropped
    /// (counted in [`StoreStats::corrupt_records`]) and reads as a miss.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the read fails.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, L3Error> {
        let hash = self.hasher.hash_one(key);
        let found = self.fetch(hash, Some(key.len()), |stored| stored == key)?;
        Ok(found.map(|found| found.value))
    }

    /// The live value of the first record of `hash` (and key length `len`, if given) whose key
    /// `matches` accepts, read outside the lock and verified; a damaged record is dropped from
    /// the index and counted. Counts a hit or a miss.
    ///
    /// # Errors
    /// [`L3Error::Io`] when a read fails.
    pub(super) fn fetch(
        &self,
        hash: u64,
        len: Option<usize>,
        mut matches: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<Fetched>, L3Error> {
        let counters = &self.shared.counters;
        let now = now_nanos();
        for (loc, file) in self.candidates(hash, len) {
            let Some(bytes) = self.record_bytes(&loc, file.as_deref())? else {
                continue;
            };
            match record::decode(&bytes).and_then(|d| Ok((d.value()?, d))) {
                Ok((value, decoded)) => {
                    if !matches(decoded.key) {
                        continue;
                    }
                    let header = decoded.header;
                    if header.tombstone || header.expires <= now {
                        break;
                    }
                    counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(Fetched {
                        key: decoded.key.to_vec(),
                        value,
                        seq: header.seq,
                        expires: header.expires,
                        priority: super::priority_of(header.priority),
                    }));
                }
                Err(_) => {
                    counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    Shared::forget(&mut self.shared.lock(), hash, &loc);
                }
            }
        }
        counters.misses.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// The bytes of record `loc`: its queued bytes, or read from `file` (and counted);
    /// `None` for a written record without its file.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the read fails.
    pub(super) fn record_bytes<'a>(
        &self,
        loc: &'a Loc,
        file: Option<&File>,
    ) -> Result<Option<Cow<'a, [u8]>>, L3Error> {
        match (&loc.place, file) {
            (Place::Queued { bytes, .. }, _) => Ok(Some(Cow::Borrowed(bytes))),
            (Place::Disk { offset, .. }, Some(file)) => {
                let read = segment::read_record(file, *offset, loc.len)
                    .map_err(|e| L3Error::io("read a record", &self.shared.dir, e))?;
                self.shared
                    .counters
                    .bytes_read
                    .fetch_add(u64::from(loc.len), Ordering::Relaxed);
                Ok(Some(Cow::Owned(read)))
            }
            (Place::Disk { .. }, None) => Ok(None),
        }
    }

    /// The index's records of `hash` (of key length `len`, if given), each with its file.
    pub(super) fn candidates(
        &self,
        hash: u64,
        len: Option<usize>,
    ) -> Vec<(Loc, Option<Arc<File>>)> {
        let inner = self.shared.lock();
        inner
            .index
            .get(&hash)
            .into_iter()
            .flatten()
            .filter(|loc| len.is_none_or(|len| loc.key_len as usize == len))
            .filter_map(|loc| {
                let file = match loc.place {
                    Place::Disk { segment, .. } => {
                        Some(Arc::clone(&inner.segments.get(&segment)?.file))
                    }
                    Place::Queued { .. } => None,
                };
                Some((loc.clone(), file))
            })
            .collect()
    }

    /// Puts every write so far on disk (whatever the sync policy).
    ///
    /// # Errors
    /// [`L3Error::Io`] when the writer thread's write or sync failed.
    pub fn sync(&self) -> Result<(), L3Error> {
        let inner = self.shared.lock();
        let target = inner.enqueued;
        self.sync_through(inner, target).map(drop)
    }

    /// Waits until the records through ticket `target` are written and synced; the lock
    /// again.
    pub(super) fn sync_through<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        target: u64,
    ) -> Result<MutexGuard<'a, Inner>, L3Error> {
        let shared = &*self.shared;
        let seen = inner.failures;
        if inner.synced < target {
            inner.sync_wanted = inner.sync_wanted.max(target);
            shared.work.notify_one();
        }
        while inner.synced < target {
            if let Some(error) = failure(&inner, &shared.dir, seen) {
                return Err(error);
            }
            inner = wait(&shared.progress, inner);
        }
        Ok(inner)
    }

    /// How a value of `len` bytes is stored unless its writer says: lz4 from the store's
    /// [`compress_from`](StoreBuilder::compress_from) up.
    pub(crate) fn default_packing(&self, len: usize) -> Compression {
        if self.compress_from.is_some_and(|from| len >= from) {
            Compression::Lz4
        } else {
            Compression::None
        }
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        let counters = &self.shared.counters;
        let (disk_bytes, entries) = {
            let inner = self.shared.lock();
            (inner.disk_bytes, inner.entries)
        };
        StoreStats {
            hits: counters.hits.load(Ordering::Relaxed),
            misses: counters.misses.load(Ordering::Relaxed),
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            bytes_written: counters.bytes_written.load(Ordering::Relaxed),
            compactions: counters.compactions.load(Ordering::Relaxed),
            corrupt_records: counters.corrupt.load(Ordering::Relaxed),
            evicted_segments: counters.evicted_segments.load(Ordering::Relaxed),
            dropped_writes: counters.dropped.load(Ordering::Relaxed),
            disk_bytes,
            disk_budget: self.shared.disk_budget,
            entries,
        }
    }

    /// Keys with a live value (expired ones are counted until a read or a compaction meets
    /// them).
    pub fn len(&self) -> usize {
        self.shared.lock().entries as usize
    }

    /// Whether no key has a live value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The writer thread writes what is queued (and syncs, unless the policy is `Never`),
        // then ends.
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread's failure as an error for a write that began waiting when `seen`
/// failures had happened: only one since then counts.
fn failure(inner: &Inner, dir: &Path, seen: u64) -> Option<L3Error> {
    if inner.failures <= seen {
        return None;
    }
    inner.failure.as_ref().map(|(kind, message)| {
        L3Error::io(
            "write to a segment",
            dir,
            std::io::Error::new(*kind, message.clone()),
        )
    })
}

/// Waits on `condvar`, going on with a poisoned lock (see [`Shared::lock`]).
pub(super) fn wait<'a>(condvar: &Condvar, guard: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
    condvar
        .wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
