//! A loom model of the persistent tier's protocol (`src/tier/persist.rs`), on one key: the
//! shard lock orders every change to the store's index (an eviction's spill, a write's hide),
//! and a value read back from the store outside the lock is taken into L2 only if, under the
//! lock, the key is still absent there and the store's record is the one read.
//!
//! The real store does I/O and runs a writer thread, which loom cannot model; this model keeps
//! the protocol's shape with the store's index as a loom mutex (what the real code changes
//! under the shard lock is exactly that index). L2's lock-free reads are proven against its
//! writes in `tier.rs`; here an L2 read takes the shard lock.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The store's record of the key: its order and its value (`None`: a removal).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Record {
    seq: u64,
    value: Option<u64>,
}

struct Store {
    record: Option<Record>,
    next_seq: u64,
}

struct Tiers {
    /// L2's entry of the key, under the shard lock.
    shard: Mutex<Option<u64>>,
    store: Mutex<Store>,
}

impl Tiers {
    /// The key's value 1 on disk only (evicted earlier), nothing in memory.
    fn on_disk() -> Arc<Self> {
        Arc::new(Self {
            shard: Mutex::new(None),
            store: Mutex::new(Store {
                record: Some(Record {
                    seq: 0,
                    value: Some(1),
                }),
                next_seq: 1,
            }),
        })
    }

    /// `Store::hide`: a removal record if the store holds a value of the key.
    fn hide(store: &mut Store) {
        if store.record.is_some_and(|r| r.value.is_some()) {
            store.record = Some(Record {
                seq: store.next_seq,
                value: None,
            });
            store.next_seq += 1;
        }
    }

    fn insert(&self, value: u64) {
        let mut shard = self.shard.lock().unwrap();
        Self::hide(&mut self.store.lock().unwrap());
        *shard = Some(value);
    }

    /// An insertion written through (`Kept::Through`): the new value replaces the store's
    /// record in the same locked section that stores it in L2.
    fn insert_through(&self, value: u64) {
        let mut shard = self.shard.lock().unwrap();
        let mut store = self.store.lock().unwrap();
        let seq = store.next_seq;
        store.next_seq += 1;
        store.record = Some(Record {
            seq,
            value: Some(value),
        });
        drop(store);
        *shard = Some(value);
    }

    fn remove(&self) {
        let mut shard = self.shard.lock().unwrap();
        // Present or not in L2, the store's copy is hidden (`Upper::written`, `absent`).
        *shard = None;
        Self::hide(&mut self.store.lock().unwrap());
    }

    /// `ShardWriter::evict` with `Upper::spilled`: the value goes to the store as the
    /// newest record, in the same locked section that takes it out of L2, unless the store's
    /// record is a value already (`Store::holds_value`: then it is this one).
    fn evict(&self) {
        let mut shard = self.shard.lock().unwrap();
        if let Some(value) = shard.take() {
            let mut store = self.store.lock().unwrap();
            if let Some(Record {
                value: Some(held), ..
            }) = store.record
            {
                assert_eq!(held, value, "the store held a value memory did not");
                return;
            }
            let seq = store.next_seq;
            store.next_seq += 1;
            store.record = Some(Record {
                seq,
                value: Some(value),
            });
        }
    }

    /// `get`: L2, else the store read outside the lock, taken back under it if still current.
    fn get(&self) -> Option<u64> {
        if let Some(value) = *self.shard.lock().unwrap() {
            return Some(value);
        }
        let read = self.store.lock().unwrap().record?;
        let value = read.value?;
        let mut shard = self.shard.lock().unwrap();
        let current = self.store.lock().unwrap().record;
        if shard.is_none() && current == Some(read) {
            *shard = Some(value);
            Some(value)
        } else {
            None // a write raced the read
        }
    }
}

/// A removal of a key that is on disk only: once it returns, no lookup (racing an eviction
/// and a read-back) returns the removed value, and none after everything is done.
#[test]
fn a_removed_value_never_comes_back_from_disk() {
    loom::model(|| {
        let tiers = Tiers::on_disk();
        let removed = Arc::new(AtomicBool::new(false));
        let remover = {
            let (tiers, removed) = (Arc::clone(&tiers), Arc::clone(&removed));
            thread::spawn(move || {
                tiers.remove();
                removed.store(true, Ordering::Release);
            })
        };
        let reader = {
            let (tiers, removed) = (Arc::clone(&tiers), Arc::clone(&removed));
            thread::spawn(move || {
                let after = removed.load(Ordering::Acquire);
                let seen = tiers.get();
                assert!(
                    !(after && seen.is_some()),
                    "read {seen:?} after the removal"
                );
            })
        };
        tiers.evict();
        remover.join().unwrap();
        reader.join().unwrap();
        assert_eq!(tiers.get(), None, "the removed value came back");
    });
}

/// A write over a value on disk, raced by an eviction of it and a read-back: once the write
/// returns, lookups see it (or miss), never the older value.
#[test]
fn a_write_is_never_undone_by_a_read_back() {
    loom::model(|| {
        let tiers = Tiers::on_disk();
        let written = Arc::new(AtomicBool::new(false));
        let writer = {
            let (tiers, written) = (Arc::clone(&tiers), Arc::clone(&written));
            thread::spawn(move || {
                tiers.insert(2);
                written.store(true, Ordering::Release);
            })
        };
        let reader = {
            let (tiers, written) = (Arc::clone(&tiers), Arc::clone(&written));
            thread::spawn(move || {
                let after = written.load(Ordering::Acquire);
                let seen = tiers.get();
                assert!(
                    !(after && seen == Some(1)),
                    "read the old value after the write"
                );
            })
        };
        tiers.evict();
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(tiers.get(), Some(2), "the write was lost");
    });
}

/// A write-through over a value on disk, raced by an eviction (which finds the store holding
/// the new value and skips it) and a read-back: lookups after it see it, and the disk keeps
/// it whatever happens next.
#[test]
fn a_write_through_is_what_the_disk_keeps() {
    loom::model(|| {
        let tiers = Tiers::on_disk();
        let written = Arc::new(AtomicBool::new(false));
        let writer = {
            let (tiers, written) = (Arc::clone(&tiers), Arc::clone(&written));
            thread::spawn(move || {
                tiers.insert_through(2);
                written.store(true, Ordering::Release);
            })
        };
        let reader = {
            let (tiers, written) = (Arc::clone(&tiers), Arc::clone(&written));
            thread::spawn(move || {
                let after = written.load(Ordering::Acquire);
                let seen = tiers.get();
                assert!(
                    !(after && seen == Some(1)),
                    "read the old value after the write"
                );
            })
        };
        tiers.evict();
        writer.join().unwrap();
        reader.join().unwrap();
        let disk = tiers.store.lock().unwrap().record.and_then(|r| r.value);
        assert_eq!(disk, Some(2), "the disk lost the write-through");
        tiers.evict();
        assert_eq!(tiers.get(), Some(2));
    });
}
