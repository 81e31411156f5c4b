//! Loom models of the L1 set protocol: reads against writes, writes against writes, and
//! reclamation against reads, all on one set.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use stratacache::L1;
use stratacache::hash::FixedState;

type Table<V> = L1<u64, V, FixedState>;

/// A table of exactly one set, so every key below shares its ways.
fn one_set<V>() -> Arc<Table<V>> {
    let table = L1::with_capacity_and_hasher(1, FixedState::with_seed(7)).unwrap();
    assert_eq!(table.capacity(), stratacache::l1::WAYS);
    Arc::new(table)
}

fn spawn<V: Send + Sync + 'static>(
    table: &Arc<Table<V>>,
    f: impl FnOnce(&Table<V>) + Send + 'static,
) -> thread::JoinHandle<()> {
    let table = Arc::clone(table);
    thread::spawn(move || f(&table))
}

/// A reader racing an insert sees nothing or the inserted value, and after the insert returns
/// it sees the value.
#[test]
fn get_vs_insert() {
    loom::model(|| {
        let table = one_set::<u64>();
        let writer = spawn(&table, |t| {
            t.handle().insert(1, 10);
        });
        let seen = table.handle().pin().get(&1).copied();
        assert!(matches!(seen, None | Some(10)), "{seen:?}");
        writer.join().unwrap();
        assert_eq!(table.handle().pin().get(&1), Some(&10));
    });
}

/// An insert that evicts from a full set: readers of the victim see its value or nothing,
/// readers of the new key its value or nothing, and never one key's value under another.
#[test]
fn get_vs_evicting_insert() {
    loom::model(|| {
        let table = one_set::<u64>();
        {
            let h = table.handle();
            for k in 0..stratacache::l1::WAYS as u64 {
                h.insert(k, k * 10);
            }
        }
        let writer = spawn(&table, |t| {
            t.handle().insert(100, 1000);
        });
        {
            let h = table.handle();
            let g = h.pin();
            for k in [0, 100] {
                if let Some(v) = g.get(&k) {
                    assert_eq!(*v, k * 10, "key {k}");
                }
            }
        }
        writer.join().unwrap();
        let h = table.handle();
        assert_eq!(h.pin().get(&100), Some(&1000));
        assert_eq!(table.len(), stratacache::l1::WAYS);
    });
}

/// A reader racing a remove sees the value or nothing; after the remove, nothing.
#[test]
fn get_vs_remove() {
    loom::model(|| {
        let table = one_set::<u64>();
        table.handle().insert(1, 10);
        let writer = spawn(&table, |t| {
            assert!(t.handle().remove(&1));
        });
        let seen = table.handle().pin().get(&1).copied();
        assert!(matches!(seen, None | Some(10)), "{seen:?}");
        writer.join().unwrap();
        assert_eq!(table.handle().pin().get(&1), None);
        assert!(table.is_empty());
    });
}

/// Reads are monotonic: once a reader saw the newer of two writes, it never sees the older.
#[test]
fn reads_never_go_back_in_time() {
    loom::model(|| {
        let table = one_set::<u64>();
        let writer = spawn(&table, |t| {
            let h = t.handle();
            h.insert(1, 1);
            h.insert(1, 2);
        });
        let h = table.handle();
        let first = h.pin().get(&1).copied();
        let second = h.pin().get(&1).copied();
        match (first, second) {
            (Some(2), s) => assert_eq!(s, Some(2)),
            (Some(1), s) => assert!(matches!(s, Some(1 | 2)), "{s:?}"),
            (None, _) => {}
            other => panic!("impossible reads {other:?}"),
        }
        writer.join().unwrap();
    });
}

/// Two replaces of one key: one wins, the key stays in exactly one way.
#[test]
fn replace_vs_replace() {
    loom::model(|| {
        let table = one_set::<u64>();
        table.handle().insert(1, 0);
        let writer = spawn(&table, |t| {
            t.handle().pin().replace(1, 1).unwrap();
        });
        table.handle().pin().replace(1, 2).unwrap();
        writer.join().unwrap();
        let v = *table.handle().pin().get(&1).unwrap();
        assert!(v == 1 || v == 2, "{v}");
        assert_eq!(table.len(), 1);
    });
}

/// Two inserts of one absent key: no duplicate way, one value wins.
#[test]
fn insert_vs_insert_same_key() {
    loom::model(|| {
        let table = one_set::<u64>();
        let writer = spawn(&table, |t| {
            t.handle().insert(1, 1);
        });
        table.handle().insert(1, 2);
        writer.join().unwrap();
        let v = *table.handle().pin().get(&1).unwrap();
        assert!(v == 1 || v == 2, "{v}");
        assert_eq!(table.len(), 1);
    });
}

/// A value whose drop is recorded, so a reader can check that what it holds is still alive.
struct Canary {
    id: usize,
    dropped: Arc<[AtomicBool; 2]>,
}

impl Drop for Canary {
    fn drop(&mut self) {
        assert!(
            !self.dropped[self.id].swap(true, Ordering::SeqCst),
            "value {} dropped twice",
            self.id
        );
    }
}

/// A replace retires the old node and the writer collects as hard as it can; a reader pinned
/// before that keeps its reference alive. Every value is dropped exactly once in the end.
#[test]
fn retire_vs_read() {
    loom::model(|| {
        let dropped = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let table = one_set::<Canary>();
        table.handle().insert(
            1,
            Canary {
                id: 0,
                dropped: Arc::clone(&dropped),
            },
        );
        let new = Canary {
            id: 1,
            dropped: Arc::clone(&dropped),
        };
        let writer = spawn(&table, move |t| {
            let h = t.handle();
            h.insert(1, new);
            h.collect();
            h.collect();
        });
        {
            let h = table.handle();
            let g = h.pin();
            if let Some(v) = g.get(&1) {
                let id = v.id;
                thread::yield_now();
                assert!(
                    !dropped[id].load(Ordering::SeqCst),
                    "value {id} freed under a pin"
                );
            }
        }
        writer.join().unwrap();
        drop(table);
        assert!(
            dropped.iter().all(|d| d.load(Ordering::SeqCst)),
            "a value leaked"
        );
    });
}
