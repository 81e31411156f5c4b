//! The entry API (`entry(&key)` then `or_insert_with`, `and_compute_with`, `and_upsert_with`)
//! and errors shared with the callers waiting on a failing loader.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use stratacache::{Cache, ComputeOp, Computed, InsertError, RemovalCause};

fn cache() -> Cache<String, u64> {
    Cache::builder().capacity(100).build().unwrap()
}

#[test]
fn or_insert_with_says_whether_this_call_made_the_value() {
    let cache = cache();
    let first = cache.entry("a").or_insert_with(|| 1);
    assert_eq!((first.value(), first.is_fresh()), (&1, true));
    let again = cache
        .entry("a")
        .or_insert_with(|| unreachable!("a hit runs nothing"));
    assert_eq!((again.into_value(), cache.get("a")), (1, Some(1)));
    assert_eq!(cache.entry("b").or_optionally_insert_with(|| None), None);
    assert_eq!(cache.get("b"), None, "a declined value is not stored");
    let made = cache
        .entry("b")
        .or_optionally_insert_with(|| Some(2))
        .unwrap();
    assert!(made.is_fresh());
    let failed = cache.entry("c").or_try_insert_with(|| Err("offline"));
    assert_eq!(failed, Err(Arc::new("offline")));
    assert_eq!(cache.get("c"), None);
    // Handles and frames select entries too.
    let handle = cache.handle();
    assert!(!handle.entry("a").or_insert_with(|| 9).is_fresh());
    assert!(handle.frame().entry("d").or_insert_with(|| 4).is_fresh());
    assert_eq!(cache.get("d"), Some(4));
}

#[test]
fn a_computation_inserts_replaces_keeps_or_removes_as_it_chooses() {
    let cache = cache();
    let seen = Mutex::new(Vec::new());
    let compute = |op: ComputeOp<u64>| {
        cache.entry("k").and_compute_with(|now| {
            seen.lock().unwrap().push(now);
            op
        })
    };
    assert_eq!(compute(ComputeOp::Nop), Ok(Computed::StillNone));
    assert_eq!(compute(ComputeOp::Remove), Ok(Computed::StillNone));
    assert_eq!(compute(ComputeOp::Put(1)), Ok(Computed::Inserted(1)));
    assert_eq!(compute(ComputeOp::Nop), Ok(Computed::Unchanged(1)));
    assert_eq!(compute(ComputeOp::Put(2)), Ok(Computed::ReplacedWith(2)));
    assert_eq!(compute(ComputeOp::Remove), Ok(Computed::Removed(2)));
    assert_eq!(cache.get("k"), None);
    assert_eq!(
        *seen.lock().unwrap(),
        [None, None, None, Some(1), Some(1), Some(2)],
        "each computation saw the value the one before left"
    );
    assert_eq!(
        cache
            .entry("k")
            .and_upsert_with(|now| now.map_or(10, |n| n + 1)),
        Ok(10)
    );
    assert_eq!(
        cache
            .entry("k")
            .and_upsert_with(|now| now.map_or(10, |n| n + 1)),
        Ok(11)
    );
}

#[test]
fn a_refused_value_is_handed_back_and_the_key_keeps_what_it_had() {
    let cache: Cache<String, Vec<u8>, _, _> = Cache::builder()
        .capacity(10)
        .weigher(|_: &String, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    cache.insert("k".to_string(), vec![1]).unwrap();
    let refused = cache.entry("k").and_upsert_with(|_| vec![0; 11]);
    match refused {
        Err(InsertError::TooHeavy { key, value, .. }) => {
            assert_eq!((key.as_str(), value.len()), ("k", 11));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.get("k"), Some(vec![1]));
}

#[test]
fn the_listener_hears_of_what_a_computation_replaced_or_removed() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: Cache<String, u64> = Cache::builder()
        .capacity(100)
        .eviction_listener(move |key: &String, value: &u64, cause| {
            log.lock().unwrap().push((key.clone(), *value, cause));
        })
        .build()
        .unwrap();
    cache.entry("k").and_upsert_with(|_| 1).unwrap();
    cache.entry("k").and_upsert_with(|_| 2).unwrap();
    cache
        .entry("k")
        .and_compute_with(|_| ComputeOp::Remove)
        .unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [
            ("k".to_string(), 1, RemovalCause::Replaced),
            ("k".to_string(), 2, RemovalCause::Removed)
        ]
    );
}

#[test]
fn concurrent_computations_on_one_key_take_turns_and_lose_no_update() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let (threads, rounds) = (4, 500);
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..rounds {
                    cache
                        .entry(&7)
                        .and_upsert_with(|now| {
                            let next = now.unwrap_or(0) + 1;
                            thread::yield_now(); // invite another computation in between
                            next
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(cache.get(&7), Some((threads * rounds) as u64));
}

#[test]
fn a_failing_loaders_error_reaches_the_callers_waiting_on_it() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let runs = AtomicUsize::new(0);
    let (leader, waiter) = thread::scope(|s| {
        let leader = s.spawn(|| {
            cache.try_get_with(&1, || {
                runs.fetch_add(1, Ordering::SeqCst);
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(150)); // the waiter joins meanwhile
                Err::<u64, String>("disk gone".to_string())
            })
        });
        started_rx.recv().unwrap();
        let waiter = s.spawn(|| {
            cache.try_get_with(&1, || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<u64, String>(10)
            })
        });
        (leader.join().unwrap(), waiter.join().unwrap())
    });
    let (leader, waiter) = (leader.unwrap_err(), waiter.unwrap_err());
    assert!(Arc::ptr_eq(&leader, &waiter), "one error, shared");
    assert_eq!(*waiter, "disk gone");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&1), None);
    // Nothing stays pending: the next call loads.
    assert_eq!(cache.try_get_with(&1, || Ok::<u64, ()>(11)), Ok(11));
}
