//! Differential test: random operations on the policy harness (the simulator's single-threaded
//! table), used as a weight-bounded cache, against an exact model. The harness only loses
//! entries through `evict`, which hands them back, so the model can track its contents
//! exactly.

use std::collections::HashMap;

use proptest::prelude::*;
use stratacache::policy::Harness;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32, u8),
    Get(u16),
    Peek(u16),
    Remove(u16),
    TakeAll,
}

fn h(key: u16) -> u64 {
    // Deliberately collide often: 32 distinct hashes for 200 keys exercises equality checks.
    u64::from(key % 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_harness_agrees_with_a_map_that_applies_its_evictions(
        ops in proptest::collection::vec(prop_oneof![
            6 => (0u16..200, any::<u32>(), 1u8..8).prop_map(|(k, v, w)| Op::Insert(k, v, w)),
            6 => (0u16..200).prop_map(Op::Get),
            2 => (0u16..200).prop_map(Op::Peek),
            2 => (0u16..200).prop_map(Op::Remove),
            1 => Just(Op::TakeAll),
        ], 1..500),
        capacity in 1u64..120,
    ) {
        let mut shard: Harness<u16, u32> = Harness::new();
        let mut model: HashMap<u16, (u32, u64)> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v, w) => {
                    let old = shard.insert(h(k), k, v, u64::from(w));
                    prop_assert_eq!(old, model.insert(k, (v, u64::from(w))).map(|(v, _)| v));
                    while shard.weight() > capacity {
                        let e = shard.evict().expect("over budget means not empty");
                        prop_assert_eq!(model.remove(&e.key), Some((e.value, e.weight)));
                    }
                }
                Op::Get(k) => prop_assert_eq!(shard.get(h(k), &k).copied(), model.get(&k).map(|(v, _)| *v)),
                Op::Peek(k) => prop_assert_eq!(shard.peek(h(k), &k), model.get(&k).map(|(v, _)| v)),
                Op::Remove(k) => prop_assert_eq!(shard.remove(h(k), &k), model.remove(&k).map(|(v, _)| (k, v))),
                Op::TakeAll => {
                    let mut taken: Vec<(u16, u32)> = shard.take_all().collect();
                    let mut expected: Vec<(u16, u32)> = model.drain().map(|(k, (v, _))| (k, v)).collect();
                    taken.sort_unstable();
                    expected.sort_unstable();
                    prop_assert_eq!(taken, expected);
                }
            }
            prop_assert_eq!(shard.len(), model.len());
            prop_assert_eq!(shard.weight(), model.values().map(|(_, w)| w).sum::<u64>());
            prop_assert!(shard.weight() <= capacity);
        }
    }
}
