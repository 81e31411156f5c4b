//! Loom model of the default policy's one concurrent part: the shards of one table pool their
//! window sizer's evidence (a mutex, and a decision published in one word). (Readers record
//! their hits in rings the shard's writer replays: `tier.rs` runs that under every model of
//! a lookup racing a write.)
#![cfg(loom)]

use loom::thread;
use stratacache::policy::{Harness, Policy, WTinyLfu};

/// Any bits: a shard this small simulates every key.
fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Two shards of one table pool their window's evidence under a mutex and follow the table's
/// decision, published in one relaxed word. One shard is cleared (a new decision for the
/// whole table) and then ends an epoch, while the other ends an epoch tallied against
/// whichever decision it last read. Whatever the interleaving, nothing deadlocks or panics,
/// and by its next request each shard follows the new decision.
#[test]
fn a_tables_shards_follow_a_decision_made_while_they_run() {
    loom::model(|| {
        let mut policies = WTinyLfu::for_table(2, WTinyLfu::new).into_iter();
        let (first, second) = (policies.next().unwrap(), policies.next().unwrap());
        let (mut first, mut second) = (Harness::with_policy(first), Harness::with_policy(second));
        assert_eq!(first.policy().window_decisions(), 0);
        let clearer = thread::spawn(move || {
            assert_eq!(first.take_all().count(), 0);
            // An insertion and a hit: one epoch of this shard (epochs are short under loom).
            first.insert(hash(1), 1, 10, 1);
            assert_eq!(first.get(hash(1), &1), Some(&10));
            first
        });
        second.insert(hash(2), 2, 20, 1);
        assert_eq!(second.get(hash(2), &2), Some(&20));
        let first = clearer.join().unwrap();
        second.insert(hash(3), 3, 30, 1);
        assert_eq!(
            first.policy().window_decisions(),
            1,
            "the clear is decision 1"
        );
        assert_eq!(
            second.policy().window_decisions(),
            1,
            "the other shard follows it at its next request"
        );
        assert_eq!(
            first.policy().window_share(),
            second.policy().window_share()
        );
    });
}
