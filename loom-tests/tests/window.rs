//! Loom model of the default policy's record of shared hits: hits under a shard's read lock
//! record sampled keys in a ring (relaxed loads and stores, no read-modify-write), which the
//! next exclusive access replays into the window's miniature caches. Racing records may
//! overwrite each other (a thinner sample, by design); what must hold is that nothing panics
//! or tears, and that the exclusive access after them replays at least one of them and no
//! more than were recorded.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use stratacache::l2::Shard;
use stratacache::l2::policy::{Policy, WTinyLfu};

/// Any bits: a shard this small simulates every key.
fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn racing_shared_hits_are_replayed_by_the_next_insertion() {
    loom::model(|| {
        let mut shard: Shard<u64, u64, WTinyLfu> = Shard::with_policy(WTinyLfu::new());
        shard.insert(hash(1), 1, 10, 1);
        shard.insert(hash(2), 2, 20, 1);
        let before = shard.policy().simulated_requests();
        assert_eq!(before, 2, "each insertion is a simulated request");
        let shard = Arc::new(shard);
        let readers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|key| {
                let shard = Arc::clone(&shard);
                thread::spawn(move || assert_eq!(shard.get(hash(key), &key), Some(&(key * 10))))
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
        let mut shard = Arc::try_unwrap(shard).ok().expect("the readers are done");
        shard.insert(hash(3), 3, 30, 1);
        let replayed = shard.policy().simulated_requests() - before - 1;
        assert!(
            (1..=2).contains(&replayed),
            "{replayed} of two racing hits replayed"
        );
    });
}

/// Two shards of one table pool their window's evidence under a mutex and follow the table's
/// decision, published in one relaxed word. One shard is cleared (a new decision for the
/// whole table) and then ends an epoch, while the other ends an epoch tallied against
/// whichever decision it last read. Whatever the interleaving, nothing deadlocks or panics,
/// and by its next request each shard follows the new decision.
#[test]
fn a_tables_shards_follow_a_decision_made_while_they_run() {
    loom::model(|| {
        let (mut first, mut second) = (WTinyLfu::new(), WTinyLfu::new());
        second.join(&mut first);
        let (mut first, mut second) = (Shard::with_policy(first), Shard::with_policy(second));
        assert_eq!(first.policy().window_decisions(), 0);
        let clearer = thread::spawn(move || {
            assert_eq!(first.take_all().count(), 0);
            // An insertion and a hit: one epoch of this shard (epochs are short under loom).
            first.insert(hash(1), 1, 10, 1);
            assert_eq!(first.access(hash(1), &1), Some(&10));
            first
        });
        second.insert(hash(2), 2, 20, 1);
        assert_eq!(second.access(hash(2), &2), Some(&20));
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
