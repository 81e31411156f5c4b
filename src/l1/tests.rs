//! Unit tests of L1 (also run under Miri, with smaller sizes).

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{L1, Placement, WAYS};
use crate::error::BuildError;

/// Hashes a `u64` to itself, so a test decides which set a key lands in (`key & (sets - 1)`).
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed in these tests")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Identity = BuildHasherDefault<IdentityHasher>;

fn identity_table<V>(capacity: usize) -> L1<u64, V, Identity> {
    L1::with_capacity_and_hasher(capacity, Identity::default()).unwrap()
}

/// A value that counts its drops.
struct Counted {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn bad_capacities_are_errors() {
    assert_eq!(
        L1::<u64, u64>::with_capacity(0).unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert!(matches!(
        L1::<u64, u64>::with_capacity(usize::MAX).unwrap_err(),
        BuildError::CapacityOverflow {
            requested: usize::MAX
        }
    ));
    assert!(matches!(
        L1::<u64, u64>::with_capacity(usize::MAX / 4).unwrap_err(),
        BuildError::CapacityOverflow { .. } | BuildError::AllocationFailed { .. }
    ));
}

#[test]
fn capacity_rounds_up_to_whole_power_of_two_sets() {
    let t = L1::<u64, u64>::with_capacity(1).unwrap();
    assert_eq!(t.capacity(), WAYS);
    let t = L1::<u64, u64>::with_capacity(WAYS * 4 + 1).unwrap();
    assert_eq!(t.capacity(), WAYS * 8);
}

#[test]
fn insert_get_replace_remove() {
    let table: L1<String, String> = L1::with_capacity(64).unwrap();
    let handle = table.handle();
    let guard = handle.pin();
    assert_eq!(guard.get("a"), None);
    assert_eq!(
        guard.insert("a".to_string(), "1".to_string()),
        Placement::Vacant
    );
    assert_eq!(guard.get("a").map(String::as_str), Some("1"));
    assert_eq!(
        guard.get_key_value("a"),
        Some((&"a".to_string(), &"1".to_string()))
    );
    assert_eq!(
        guard.insert("a".to_string(), "2".to_string()),
        Placement::Replaced
    );
    assert_eq!(guard.get("a").map(String::as_str), Some("2"));
    assert_eq!(guard.replace("a".to_string(), "3".to_string()), Ok(()));
    assert_eq!(guard.peek("a").map(String::as_str), Some("3"));
    let absent = guard.replace("b".to_string(), "x".to_string()).unwrap_err();
    assert_eq!((absent.key.as_str(), absent.value.as_str()), ("b", "x"));
    assert!(!guard.contains_key("b"));
    assert!(guard.remove("a"));
    assert!(!guard.remove("a"));
    assert_eq!(guard.get("a"), None);
    assert!(table.is_empty());
}

#[test]
fn a_full_set_evicts_the_entry_its_clock_hand_finds_unreferenced() {
    let table = identity_table::<u64>(WAYS * 4);
    let sets = (table.capacity() / WAYS) as u64;
    let handle = table.handle();
    let guard = handle.pin();
    // Keys `i * sets` all land in set 0; empty ways fill in order.
    for i in 0..WAYS as u64 {
        assert_eq!(guard.insert(i * sets, i), Placement::Vacant);
    }
    // Use every entry but one; `peek` does not count as a use.
    let spared = WAYS as u64 / 2;
    for i in 0..WAYS as u64 {
        if i == spared {
            assert_eq!(guard.peek(&(i * sets)), Some(&i));
        } else {
            assert_eq!(guard.get(&(i * sets)), Some(&i));
        }
    }
    assert_eq!(guard.insert(100 * sets, 100), Placement::Evicted);
    for i in 0..WAYS as u64 {
        assert_eq!(guard.get(&(i * sets)).is_some(), i != spared, "key {i}");
    }
    assert_eq!(guard.get(&(100 * sets)), Some(&100));
    // Other sets were untouched.
    assert_eq!(table.len(), WAYS);
}

#[test]
fn the_clock_hand_gives_every_entry_a_second_chance() {
    let table = identity_table::<u64>(WAYS);
    let guard = table.handle().pin();
    for i in 0..WAYS as u64 {
        guard.insert(i, i);
        guard.get(&i);
    }
    // All referenced: the sweep clears every bit and evicts at the hand (way 0).
    assert_eq!(guard.insert(1000, 0), Placement::Evicted);
    assert_eq!(guard.get(&0), None);
    // The next victim is the way after it, now unreferenced.
    assert_eq!(guard.insert(1001, 0), Placement::Evicted);
    assert_eq!(guard.get(&1), None);
    assert_eq!(table.len(), WAYS);
}

#[test]
fn a_key_is_never_in_two_ways() {
    let table = identity_table::<u64>(WAYS);
    let guard = table.handle().pin();
    for round in 0..3 {
        for i in 0..WAYS as u64 * 2 {
            guard.insert(i % 5, round);
        }
    }
    assert_eq!(table.len(), 5);
}

#[test]
fn every_key_and_value_is_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let n = if cfg!(miri) { 40 } else { 2000 };
    let counted = |id| Counted {
        id,
        drops: Arc::clone(&drops),
    };
    let mut created = 0;
    {
        let table: L1<u64, Counted> = L1::with_capacity(n as usize / 4).unwrap();
        let handle = table.handle();
        for i in 0..n {
            handle.insert(i, counted(i)); // evicts once the table is full
            created += 1;
            if i % 3 == 0 {
                handle.insert(i, counted(i)); // replaces
                created += 1;
            }
            if i % 5 == 0 {
                handle.remove(&i);
            }
            if i % 7 == 0 {
                // Stored, or handed back (and dropped here) when `i` was removed above.
                let replaced = handle.pin().replace(i, counted(i));
                assert!(replaced.is_ok() || i % 5 == 0);
                created += 1;
            }
        }
        handle.collect();
        let guard = handle.pin();
        let present = (0..n)
            .filter(|i| guard.get(i).is_some_and(|v| v.id == *i))
            .count();
        assert_eq!(present, table.len());
        drop(guard);
        assert!(drops.load(Ordering::Relaxed) <= created - present);
        table.clear();
        assert!(table.is_empty());
    }
    assert_eq!(drops.load(Ordering::Relaxed), created);
}

#[test]
fn values_stay_readable_while_pinned_and_are_freed_after() {
    let drops = Arc::new(AtomicUsize::new(0));
    let table: L1<u64, Counted> = L1::with_capacity(16).unwrap();
    let reader = table.handle();
    let writer = table.handle();
    writer.insert(
        1,
        Counted {
            id: 10,
            drops: Arc::clone(&drops),
        },
    );
    let guard = reader.pin();
    let seen = guard.get(&1).unwrap();
    writer.insert(
        1,
        Counted {
            id: 11,
            drops: Arc::clone(&drops),
        },
    );
    for _ in 0..300 {
        writer.collect(); // would free the old value if the reader's pin did not hold it
    }
    assert_eq!(seen.id, 10);
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(guard);
    for _ in 0..300 {
        writer.collect();
    }
    assert_eq!(
        drops.load(Ordering::Relaxed),
        1,
        "unpinned: the old value is freed"
    );
    assert_eq!(reader.pin().get(&1).map(|v| v.id), Some(11));
}

#[test]
fn threads_share_a_table_through_thread_local_handles() {
    let table: L1<u64, Vec<u64>> = L1::with_capacity(1024).unwrap();
    let threads = if cfg!(miri) { 2 } else { 4 };
    let per = if cfg!(miri) { 10 } else { 200 };
    std::thread::scope(|s| {
        for t in 0..threads {
            let table = &table;
            s.spawn(move || {
                for i in 0..per {
                    let key = t * 1_000 + i;
                    table.insert(key, alloc::vec![key; 3]);
                    // Another thread's insert may evict it, but never turn it into another value.
                    if let Some(v) = table.get_cloned(&key) {
                        assert_eq!(v, alloc::vec![key; 3]);
                    }
                }
            });
        }
    });
    let guard = table.pin();
    for t in 0..threads {
        for i in 0..per {
            let key = t * 1_000 + i;
            if let Some(v) = guard.get(&key) {
                assert_eq!(v, &alloc::vec![key; 3]);
            }
        }
    }
    assert!(!table.is_empty());
}

#[test]
fn a_thread_alternating_between_tables_pins_each_on_its_own_collector() {
    // The thread remembers the handle of the table it pinned last: switching tables, or a
    // table made after another was dropped (perhaps at its address), must not reuse it.
    let first: L1<u64, u64> = L1::with_capacity(64).unwrap();
    let second: L1<u64, u64> = L1::with_capacity(64).unwrap();
    for _ in 0..3 {
        assert!(first.pin().raw.pins_its_tables_collector());
        assert!(second.pin().raw.pins_its_tables_collector());
    }
    drop(first);
    let third: L1<u64, u64> = L1::with_capacity(64).unwrap();
    assert!(third.pin().raw.pins_its_tables_collector());
    assert!(second.pin().raw.pins_its_tables_collector());
}

#[test]
fn pins_and_gets_never_drop_a_retired_value_only_quiet_points_do() {
    let drops = Arc::new(AtomicUsize::new(0));
    let table: L1<u64, Counted> = L1::with_capacity(16).unwrap();
    let handle = table.handle();
    let counted = |id| Counted {
        id,
        drops: Arc::clone(&drops),
    };
    let guard = handle.pin();
    guard.insert(1, counted(10));
    // A replacement through the raw layer (as the tiered cache makes under its locks) does not
    // reclaim afterwards, unlike the public writes.
    drop(guard.raw.insert(handle_hash(&table, 1), 1, counted(11)));
    drop(guard);
    // Hundreds of pins: crossbeam-epoch runs its deferred functions inside some of them, which
    // only move the retired node to the ready list.
    for _ in 0..1_000 {
        assert_eq!(handle.pin().get(&1).map(|v| v.id), Some(11));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 0, "a pin dropped a value");
    assert_eq!(table.raw.retired(), 1);
    // The epoch must move past the retirement twice; each collect moves it at most once.
    for _ in 0..3 {
        handle.collect();
    }
    assert_eq!(drops.load(Ordering::Relaxed), 1, "collect drops it");
    assert_eq!(table.raw.retired(), 0);
    drop(table);
    assert_eq!(drops.load(Ordering::Relaxed), 2);
}

/// The hash `table` computes for `key`.
fn handle_hash<V>(table: &L1<u64, V>, key: u64) -> u64 {
    use core::hash::BuildHasher;
    table.hasher().hash_one(key)
}
