//! What a tiered [`Cache`](crate::Cache) asks of its persistent store.
//!
//! The cache keys the store by its own 64-bit hash of each key ([`Store::rekey`] at build), so
//! that a lookup by a borrowed form of the key finds the record, and it makes every change to
//! the store's index under the shard lock of the key, in the order of its own writes: a value
//! its shard evicts is queued ([`Store::spill`]), a key it stores or removes loses its record
//! here ([`Store::hide`]). Neither waits for the writer thread nor reads the disk. Reads
//! ([`Store::fetch`]) run outside every lock; the cache takes a value read back into memory
//! only if, under the shard lock again, the record is still the one it read
//! ([`Store::still_holds`]), so a write since is never undone.

use core::sync::atomic::Ordering;
use std::fs;
use std::sync::MutexGuard;
use std::time::SystemTime;
use std::vec::Vec;

use super::record::{self, Compression, HEADER, Header};
use super::segment::{self, Segment};
use super::store::{Encoded, Index, Inner, Loc, Place, Shared, Store};
use super::{L3Error, nanos_of, priority_byte};
use crate::Priority;

/// A record the cache read back: the value's bytes, its order and its expiry.
pub(crate) struct Fetched {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) seq: u64,
    /// Nanoseconds since the Unix epoch; `u64::MAX` for never.
    pub(crate) expires: u64,
    pub(crate) priority: Priority,
}

impl Store {
    /// Keys the index by `hash` of each record's key bytes (`None`: a key the cache cannot
    /// read, dropped from the index). Reads each key from its record; one that cannot be read
    /// is dropped (counted as damaged).
    pub(crate) fn rekey(&self, hash: impl Fn(&[u8]) -> Option<u64>) {
        let mut inner = self.shared.lock();
        let old = core::mem::replace(
            &mut inner.index,
            Index::with_hasher(crate::hash::FixedState::with_seed(0)),
        );
        let mut entries = 0;
        for loc in old.into_values().flatten() {
            let key = match Shared::key_of(&inner, &loc) {
                Ok(Some(key)) => key.into_owned(),
                Ok(None) => continue,
                Err(_) => {
                    self.shared.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            match hash(&key) {
                Some(hash) => {
                    entries += u64::from(!loc.tombstone);
                    inner.index.entry(hash).or_default().push(loc);
                }
                None => {
                    if let Place::Disk { segment, .. } = loc.place
                        && let Some(segment) = inner.segments.get_mut(&segment)
                    {
                        segment.live -= u64::from(loc.len);
                    }
                }
            }
        }
        inner.entries = entries;
    }

    /// The record of the key of `hash` and `key` bytes, recognised without reading the disk:
    /// a queued record by its key, a written one by its hash and key length (two keys alike in
    /// both are taken for one: the other then loses its record here, a miss, never a wrong
    /// value, since reads compare the whole key).
    fn alike(inner: &Inner, hash: u64, key: &[u8]) -> Option<Loc> {
        inner
            .index
            .get(&hash)?
            .iter()
            .find(|loc| match &loc.place {
                Place::Queued { bytes, .. } => {
                    loc.key_len as usize == key.len() && &bytes[HEADER..HEADER + key.len()] == key
                }
                Place::Disk { .. } => loc.key_len as usize == key.len(),
            })
            .cloned()
    }

    fn encoded(&self, hash: u64, header: Header, key: &[u8], value: &[u8]) -> Encoded {
        let mut bytes = Vec::new();
        let payload = record::encode(&mut bytes, header, key, value, Compression::None);
        Encoded {
            bytes,
            payload,
            hash,
            key_len: key.len(),
            header,
        }
    }

    /// Queues `value` under `key` (of the cache's `hash`), an entry the cache evicted or
    /// writes back, uncompressed (it runs under the cache's lock; a compaction compresses what
    /// lasts): see [`spill_prepared`](Self::spill_prepared).
    pub(crate) fn spill(
        &self,
        hash: u64,
        (key, value): (&[u8], &[u8]),
        expires: Option<SystemTime>,
        priority: Priority,
        wait: bool,
    ) -> Option<u64> {
        let record = self.prepare(hash, (key, value), expires, priority, Compression::None)?;
        self.spill_prepared(record, wait)
    }

    /// A value record of `key` (of the cache's `hash`), encoded and compressed as `packing`
    /// says, for [`spill_prepared`](Self::spill_prepared): `None` when the disk budget can
    /// never hold it. A write-through prepares it before the cache's lock is taken.
    pub(crate) fn prepare(
        &self,
        hash: u64,
        (key, value): (&[u8], &[u8]),
        expires: Option<SystemTime>,
        priority: Priority,
        packing: Compression,
    ) -> Option<Encoded> {
        if key.len() > super::MAX_KEY || value.len() > super::MAX_VALUE {
            return None;
        }
        let header = Header::value(priority_byte(priority), 0, nanos_of(expires));
        let mut bytes = Vec::new();
        let payload = record::encode(&mut bytes, header, key, value, packing);
        let fits = self
            .shared
            .disk_budget
            .is_none_or(|budget| bytes.len() as u64 + segment::SEGMENT_HEADER as u64 <= budget / 2);
        fits.then_some(Encoded {
            bytes,
            payload,
            hash,
            key_len: key.len(),
            header,
        })
    }

    /// Queues a prepared `record`: its ticket, or `None` when the queue is full and `wait` is
    /// not set (the value is then not kept; nothing older of the key is here, since storing
    /// the key in memory hid or replaced it). With `wait`, waits for room in the queue (the
    /// writer thread needs no lock of the cache's).
    pub(crate) fn spill_prepared(&self, record: Encoded, wait: bool) -> Option<u64> {
        let shared = &*self.shared;
        let len = record.bytes.len();
        let inner = if wait {
            self.room(len).ok()?
        } else {
            let inner = shared.lock();
            if inner.queued_bytes > 0 && inner.queued_bytes + len > shared.queue_bytes {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            inner
        };
        let key = &record.bytes[HEADER..HEADER + record.key_len];
        let old = Self::alike(&inner, record.hash, key);
        let (inner, ticket) = self.queue(inner, old.as_ref(), record);
        drop(inner);
        Some(ticket)
    }

    /// Hides whatever the store holds of `key` (of the cache's `hash`), which the cache just
    /// stored or removed in memory: a removal record, queued without waiting (and never
    /// refused). Its ticket, for [`wait_synced`](Self::wait_synced), if one was queued.
    pub(crate) fn hide(&self, hash: u64, key: &[u8]) -> Option<u64> {
        let inner = self.shared.lock();
        let old = Self::alike(&inner, hash, key)?;
        if old.tombstone {
            return None;
        }
        let record = self.encoded(hash, Header::removal(), key, &[]);
        let (inner, ticket) = self.queue(inner, Some(&old), record);
        drop(inner);
        Some(ticket)
    }

    /// Hides the records of the cache's `hash` whose key bytes `matches` accepts (a removal of
    /// a key the cache no longer holds in memory). A written record's key is read from the
    /// file (the page cache, usually): the only read this makes under the caller's lock, and
    /// only for a key on disk alone. The last removal record's ticket, if one was queued.
    pub(crate) fn hide_matching(
        &self,
        hash: u64,
        mut matches: impl FnMut(&[u8]) -> bool,
    ) -> Option<u64> {
        let mut inner = self.shared.lock();
        let locs: Vec<Loc> = inner.index.get(&hash)?.clone();
        let mut last = None;
        for old in locs.iter().filter(|loc| !loc.tombstone) {
            let Ok(Some(key)) = Shared::key_of(&inner, old) else {
                continue;
            };
            if !matches(&key) {
                continue;
            }
            let record = self.encoded(hash, Header::removal(), &key, &[]);
            let (again, ticket) = self.queue(inner, Some(old), record);
            inner = again;
            last = Some(ticket);
        }
        last
    }

    /// Under [`SyncPolicy::Always`](super::SyncPolicy::Always), waits until the record of
    /// `ticket` is on disk.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the writer thread's write or sync failed.
    pub(crate) fn wait_synced(&self, ticket: u64) -> Result<(), L3Error> {
        if self.shared.sync != super::SyncPolicy::Always {
            return Ok(());
        }
        let inner = self.shared.lock();
        self.sync_through(inner, ticket).map(drop)
    }

    /// The live record of the cache's `hash` whose key bytes `matches` accepts (read outside
    /// every lock).
    ///
    /// # Errors
    /// [`L3Error::Io`] when a read fails.
    pub(crate) fn fetch_matching(
        &self,
        hash: u64,
        matches: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<Fetched>, L3Error> {
        self.fetch(hash, None, matches)
    }

    /// The `limit` live values to warm a cache with (the cache's hash and order of each):
    /// Critical ones first, then by priority, newest first within one (a write-back before a
    /// shutdown leaves what memory held newest).
    pub(crate) fn warm_order(&self, limit: usize) -> Vec<(u64, u64)> {
        let inner = self.shared.lock();
        let now = super::now_nanos();
        let mut live: Vec<(u8, u64, u64)> = inner
            .index
            .iter()
            .flat_map(|(&hash, locs)| {
                locs.iter()
                    .filter(move |loc| !loc.tombstone && loc.expires > now)
                    .map(move |loc| (loc.priority, loc.seq, hash))
            })
            .collect();
        drop(inner);
        let limit = limit.min(live.len());
        let first = |a: &(u8, u64, u64), b: &(u8, u64, u64)| (b.0, b.1).cmp(&(a.0, a.1));
        if limit < live.len() {
            live.select_nth_unstable_by(limit, first);
            live.truncate(limit);
        }
        live.sort_unstable_by(first);
        live.into_iter().map(|(_, seq, hash)| (hash, seq)).collect()
    }

    /// The live record of the cache's `hash` and order `seq`, if it is still current.
    ///
    /// # Errors
    /// [`L3Error::Io`] when the read fails.
    pub(crate) fn fetch_order(&self, hash: u64, seq: u64) -> Result<Option<Fetched>, L3Error> {
        let mut found = None;
        for (loc, file) in self.candidates(hash, None) {
            if loc.seq != seq || loc.tombstone {
                continue;
            }
            let Some(bytes) = self.record_bytes(&loc, file.as_deref())? else {
                continue;
            };
            if let Ok(decoded) = record::decode(&bytes)
                && let Ok(value) = decoded.value()
            {
                found = Some(Fetched {
                    key: decoded.key.to_vec(),
                    value,
                    seq,
                    expires: decoded.header.expires,
                    priority: super::priority_of(decoded.header.priority),
                });
            }
            break;
        }
        Ok(found)
    }

    /// Whether the store's record of `key` (of the cache's `hash`) is still the value of
    /// order `seq` that [`fetch`](Self::fetch) read.
    pub(crate) fn still_holds(&self, hash: u64, key: &[u8], seq: u64) -> bool {
        let inner = self.shared.lock();
        Self::alike(&inner, hash, key).is_some_and(|loc| loc.seq == seq && !loc.tombstone)
    }

    /// Whether the store's record of `key` (of the cache's `hash`) is a value. While the cache
    /// holds the key in memory, that value is the one memory holds (every write in memory
    /// hides the older record or writes through, and a read-back keeps its record), so an
    /// eviction or a write-back need not write it again.
    pub(crate) fn holds_value(&self, hash: u64, key: &[u8]) -> bool {
        let inner = self.shared.lock();
        Self::alike(&inner, hash, key).is_some_and(|loc| !loc.tombstone)
    }

    /// Removes every record: the segments are deleted and a new one started.
    ///
    /// # Errors
    /// [`L3Error::Io`] when a segment cannot be deleted or created.
    pub(crate) fn clear(&self) -> Result<(), L3Error> {
        let shared = &*self.shared;
        let mut inner: MutexGuard<'_, Inner> = shared.lock();
        inner.index.clear();
        inner.queue.clear();
        inner.queued_bytes = 0;
        inner.entries = 0;
        let next = inner.active + 1;
        for (_, segment) in core::mem::take(&mut inner.segments) {
            fs::remove_file(&segment.path)
                .map_err(|e| L3Error::io("delete a segment", &segment.path, e))?;
        }
        let segment = Segment::create(&shared.dir, next)
            .map_err(|e| L3Error::io("create a segment", &shared.dir, e))?;
        inner.disk_bytes = segment.len;
        inner.segments.insert(next, segment);
        inner.active = next;
        // Queued records are gone: whoever waits for them is released.
        inner.written = inner.enqueued;
        inner.synced = inner.enqueued;
        shared.progress.notify_all();
        Ok(())
    }
}
