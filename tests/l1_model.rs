//! Differential tests: random operation sequences on L1 against a sequential model.
//!
//! L1 may evict, so in general it holds a subset of the model. Two regimes are checked:
//! - **eviction-free** (an identity hasher puts at most `WAYS` keys in each set): L1 must agree
//!   with the model exactly, as a map would;
//! - **evicting** (a tiny table, seeded hashing): every hit must be the key's latest write,
//!   an insert is visible right after it, and removing or replacing an absent key fails.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use proptest::prelude::*;
use stratacache::L1;
use stratacache::hash::FixedState;
use stratacache::l1::{Placement, WAYS};

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u32),
    Replace(u64, u32),
    Remove(u64),
    Get(u64),
    Clear,
}

fn ops(keys: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Replace(k, v)),
        3 => (0..keys).prop_map(Op::Remove),
        10 => (0..keys).prop_map(Op::Get),
        1 => Just(Op::Clear),
    ];
    proptest::collection::vec(op, 1..400)
}

#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Runs `ops` on `table` and the model; with `exact`, L1 must never lose an entry.
fn check<S: std::hash::BuildHasher>(table: &L1<u64, u32, S>, ops: &[Op], exact: bool) {
    let mut model: HashMap<u64, u32> = HashMap::new();
    let handle = table.handle();
    for op in ops {
        let guard = handle.pin();
        match *op {
            Op::Insert(k, v) => {
                let placement = guard.insert(k, v);
                let was = model.insert(k, v);
                if exact {
                    let expected = if was.is_some() {
                        Placement::Replaced
                    } else {
                        Placement::Vacant
                    };
                    assert_eq!(placement, expected, "{op:?}");
                } else if placement == Placement::Replaced {
                    assert!(was.is_some(), "replaced a key the model never had: {op:?}");
                }
                assert_eq!(
                    guard.get(&k),
                    Some(&v),
                    "an insert is visible at once: {op:?}"
                );
            }
            Op::Replace(k, v) => match guard.replace(k, v) {
                Ok(()) => {
                    assert!(
                        model.insert(k, v).is_some(),
                        "replaced an absent key: {op:?}"
                    );
                    assert_eq!(guard.get(&k), Some(&v));
                }
                Err(absent) => {
                    assert_eq!((absent.key, absent.value), (k, v));
                    assert!(!exact || !model.contains_key(&k), "lost {k}: {op:?}");
                }
            },
            Op::Remove(k) => {
                let removed = guard.remove(&k);
                let was = model.remove(&k);
                if removed {
                    assert!(was.is_some(), "removed an absent key: {op:?}");
                } else {
                    assert!(!exact || was.is_none(), "lost {k}: {op:?}");
                }
                assert_eq!(guard.get(&k), None);
            }
            Op::Get(k) => match guard.get(&k) {
                Some(v) => assert_eq!(Some(v), model.get(&k), "stale or foreign value: {op:?}"),
                None => assert!(!exact || !model.contains_key(&k), "lost {k}: {op:?}"),
            },
            Op::Clear => {
                guard.clear();
                model.clear();
                assert!(table.is_empty());
            }
        }
    }
    let guard = handle.pin();
    let present = model
        .iter()
        .filter(|(k, v)| guard.peek(*k) == Some(*v))
        .count();
    assert_eq!(
        present,
        table.len(),
        "every present entry is a latest write"
    );
    if exact {
        assert_eq!(present, model.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn without_evictions_l1_is_exactly_a_map(ops in ops(16 * WAYS as u64)) {
        // 16 sets; the identity hash puts key k in set k % 16, so each set gets at most WAYS keys.
        let table = L1::with_capacity_and_hasher(16 * WAYS, BuildHasherDefault::<IdentityHasher>::default()).unwrap();
        assert_eq!(table.capacity(), 16 * WAYS);
        check(&table, &ops, true);
    }

    #[test]
    fn with_evictions_l1_only_ever_returns_latest_writes(ops in ops(64), seed in any::<u64>(), sets in 1usize..4) {
        let table = L1::with_capacity_and_hasher(sets * WAYS, FixedState::with_seed(seed)).unwrap();
        check(&table, &ops, false);
    }
}
