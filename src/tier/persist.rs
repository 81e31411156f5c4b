//! The persistent tier below L2 (feature `persistent`): what a shard evicts is written to the
//! cache's [`Store`], a miss in L2 looks there, and a key stored or removed in memory loses
//! its record there.
//!
//! Per key, no tier ever returns a value older than a completed write (DESIGN.md §9). Every
//! change to the store's index happens under the shard lock of the key, in the order of the
//! shard's own writes: an eviction queues the value ([`Store::spill`]), a store or a removal
//! queues a removal of the older record ([`Store::hide`]); neither waits for the disk. So the
//! store never holds a value older than the key's latest write unless memory holds that
//! write. A value read back from the store (outside every lock) is taken into L2 only if,
//! under the shard lock, the key is still absent there and the store's record is still the
//! one read; otherwise the lookup is a miss. An eviction's encoding runs under the lock, which
//! is why [`Codec`] is implemented by the crate only (byte buffers, strings, integers, and
//! `Serde`, whose bytes are made when a value is wrapped), never by user code. A write-through
//! (`CacheBuilder::write_through`, `InsertOptions::write_through`) encodes and compresses its
//! record before the lock; under it, the record takes the older one's place in the index.

use alloc::vec::Vec;
use core::borrow::Borrow;
use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Priority;
use crate::l2::NEVER;
use crate::l3::{Codec, CodecError, Store, StoreStats};
use crate::l3::{Encoded, Fetched};

/// A value read back from the store: its key, its record's order, its deadline on the
/// cache's clock, its priority and its key's bytes.
pub(super) struct Back<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) seq: u64,
    pub(super) expires: u64,
    pub(super) priority: Priority,
    pub(super) key_bytes: Vec<u8>,
}

/// Why an entry memory holds is written to the store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// Evicted: never waits for room in the write queue (dropped if it is full).
    Spill,
    /// Written back before a shutdown: waits for room.
    WriteBack,
}

/// What [`Persistent::write_back`] did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Queued, with its ticket.
    Queued(u64),
    /// The store's record is this value already.
    Held,
    /// Not kept: expired, too large, or the queue full (`Kept::Spill`) or failing.
    Refused,
}

/// The cache's store and how its keys and values become bytes.
pub(super) struct Persistent<K, V> {
    pub(super) store: Store,
    /// Entries stored at this priority or higher are written through.
    through_from: Option<Priority>,
    encode_key: fn(&K, &mut Vec<u8>),
    encode_value: fn(&V, &mut Vec<u8>),
    decode_key: fn(&[u8]) -> Result<K, CodecError>,
    decode_value: fn(&[u8]) -> Result<V, CodecError>,
}

impl<K: Codec, V: Codec> Persistent<K, V> {
    pub(super) fn new(store: Store, through_from: Option<Priority>) -> Self {
        Self {
            store,
            through_from,
            encode_key: K::encode,
            encode_value: V::encode,
            decode_key: K::decode,
            decode_value: V::decode,
        }
    }
}

/// What the shard lock's holder needs of the cache: the key's 64-bit hash (the store is keyed
/// by it) and the clock.
pub(super) trait Around<K> {
    fn hash_key(&self, key: &K) -> u64;
    fn clock_now(&self) -> u64;
}

/// The cache's deadline `at` (its clock's nanoseconds, [`NEVER`] for none) as a time on the
/// wall clock, which survives a restart.
fn wall_time(at: u64, now: u64) -> Option<SystemTime> {
    (at != NEVER).then(|| SystemTime::now() + Duration::from_nanos(at.saturating_sub(now)))
}

/// A record's expiry (nanoseconds since the Unix epoch) as the cache's deadline.
pub(super) fn deadline(expires: u64, now: u64) -> u64 {
    if expires == u64::MAX {
        return NEVER;
    }
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    now.saturating_add(expires.saturating_sub(wall))
}

/// What the shard lock's holder tells the store (through the L1 keeper, `TierSync`).
pub(super) struct Below<'g, K, V> {
    pub(super) l3: &'g Persistent<K, V>,
    pub(super) around: &'g dyn Around<K>,
    /// Storing a value read back from the store: its record stays there.
    pub(super) promoting: bool,
    /// Storing a value written through to the store too: its record, prepared before the
    /// lock was taken.
    pub(super) through: Option<Encoded>,
    /// The last record queued, for a write under `SyncPolicy::Always` to wait on once its
    /// locks are released.
    pub(super) ticket: Option<u64>,
}

impl<K, V> Below<'_, K, V> {
    pub(super) fn spilled(&mut self, key: &K, value: &V, expires: u64) {
        // An eviction never waits for the disk: dropped if the queue is full.
        self.l3.write_back(
            self.around,
            (key, value, expires),
            Priority::High,
            Kept::Spill,
        );
    }

    pub(super) fn written(&mut self, key: &K) {
        if self.promoting {
            return;
        }
        if let Some(record) = self.through.take() {
            // Written through: the new record supersedes the older one. Waits for room in
            // the queue (the writer thread takes no lock of the cache's); if the disk is
            // failing, the older record is hidden instead.
            if let Some(ticket) = self.l3.store.spill_prepared(record, true) {
                self.ticket = Some(ticket);
                return;
            }
        }
        let mut k = Vec::new();
        (self.l3.encode_key)(key, &mut k);
        if let Some(ticket) = self.l3.store.hide(self.around.hash_key(key), &k) {
            self.ticket = Some(ticket);
        }
    }
}

impl<K, V> Below<'_, K, V> {
    pub(super) fn absent<Q>(&mut self, hash: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let decode = self.l3.decode_key;
        let matches = |bytes: &[u8]| decode(bytes).is_ok_and(|stored| stored.borrow() == key);
        if let Some(ticket) = self.l3.store.hide_matching(hash, matches) {
            self.ticket = Some(ticket);
        }
    }
}

impl<K, V> Persistent<K, V> {
    /// The record of an entry (of the cache's `hash`; deadline `expires` on the cache's
    /// clock at `now`) stored with `options`, if it is written through: encoded and compressed
    /// here, before the shard lock is taken.
    pub(super) fn through(
        &self,
        hash: u64,
        (key, value): (&K, &V),
        (expires, now): (u64, u64),
        options: &crate::InsertOptions,
    ) -> Option<Encoded> {
        let priority = options.get_priority();
        let through = options
            .write_through
            .unwrap_or_else(|| self.through_from.is_some_and(|from| priority >= from));
        if !through || (expires != NEVER && expires <= now) {
            return None;
        }
        let (mut k, mut v) = (Vec::new(), Vec::new());
        (self.encode_key)(key, &mut k);
        (self.encode_value)(value, &mut v);
        let packing = options
            .compression
            .unwrap_or_else(|| self.store.default_packing(v.len()));
        let at = wall_time(expires, now);
        self.store.prepare(hash, (&k, &v), at, priority, packing)
    }

    /// Writes an entry memory holds (key, value, deadline on the cache's clock) to the store
    /// too, under its shard's lock, at `priority`, as `how` says.
    pub(super) fn write_back(
        &self,
        around: &dyn Around<K>,
        (key, value, expires): (&K, &V, u64),
        priority: Priority,
        how: Kept,
    ) -> Written {
        let now = around.clock_now();
        if expires != NEVER && expires <= now {
            return Written::Refused;
        }
        let mut k = Vec::new();
        (self.encode_key)(key, &mut k);
        let hash = around.hash_key(key);
        if self.store.holds_value(hash, &k) {
            // Written through or read back: the record is this value already (and keeps its
            // priority).
            return Written::Held;
        }
        let mut v = Vec::new();
        (self.encode_value)(value, &mut v);
        let at = wall_time(expires, now);
        let wait = how == Kept::WriteBack;
        match self.store.spill(hash, (&k, &v), at, priority, wait) {
            Some(ticket) => Written::Queued(ticket),
            None => Written::Refused,
        }
    }

    /// The live value of a key of the cache's `hash` equal to `key`, read from the store
    /// (outside every lock), its deadline on the cache's clock (at `now`).
    pub(super) fn fetch<Q>(&self, hash: u64, key: &Q, now: u64) -> Option<Back<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let fetched = self
            .store
            .fetch_matching(hash, |bytes| {
                (self.decode_key)(bytes).is_ok_and(|stored| stored.borrow() == key)
            })
            // A failed read is a miss: the store counts it.
            .ok()??;
        self.back(fetched, now)
    }

    /// The record of `hash` and order `seq`, decoded, its deadline on the cache's clock (at
    /// `now`).
    pub(super) fn fetch_order(&self, hash: u64, seq: u64, now: u64) -> Option<Back<K, V>> {
        let fetched = self.store.fetch_order(hash, seq).ok()??;
        self.back(fetched, now)
    }

    fn back(&self, fetched: Fetched, now: u64) -> Option<Back<K, V>> {
        Some(Back {
            key: (self.decode_key)(&fetched.key).ok()?,
            value: (self.decode_value)(&fetched.value).ok()?,
            seq: fetched.seq,
            expires: deadline(fetched.expires, now),
            priority: fetched.priority,
            key_bytes: fetched.key,
        })
    }

    /// Whether the store's record of the key (of `hash` and bytes `key`) is still the one of
    /// order `seq`.
    pub(super) fn still_holds(&self, hash: u64, key: &[u8], seq: u64) -> bool {
        self.store.still_holds(hash, key, seq)
    }

    pub(super) fn stats(&self) -> StoreStats {
        self.store.stats()
    }
}
