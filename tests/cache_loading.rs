//! `get_with` / `try_get_with`: one initialiser per concurrent miss, a
//! panicking or failing initialiser wakes the waiters, and a multi-thread stress test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use stratacache::{Cache, InsertOptions, Priority};

#[test]
fn concurrent_misses_on_one_key_run_the_initialiser_once() {
    let cache: Cache<u64, String> = Cache::builder().capacity(1_000).build().unwrap();
    let runs = AtomicUsize::new(0);
    let threads = 8;
    let barrier = Barrier::new(threads);
    let values: Vec<String> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    cache.get_with(&42, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(100)); // let the others pile up
                        "loaded".to_string()
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|v| v == "loaded"));
    assert_eq!(cache.get(&42).as_deref(), Some("loaded"));
    // A hit runs nothing.
    assert_eq!(cache.get_with(&42, || unreachable!()), "loaded");
}

#[test]
fn a_panicking_initialiser_wakes_the_waiters_and_one_retries() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let retries = AtomicUsize::new(0);
    thread::scope(|s| {
        let leader = s.spawn(|| {
            catch_unwind(AssertUnwindSafe(|| {
                cache.get_with(&7, || {
                    started_tx.send(()).unwrap();
                    thread::sleep(Duration::from_millis(150)); // the waiter joins meanwhile
                    panic!("loader failed");
                })
            }))
        });
        started_rx.recv().unwrap();
        let waiter = s.spawn(|| {
            cache.get_with(&7, || {
                retries.fetch_add(1, Ordering::SeqCst);
                70
            })
        });
        assert!(
            leader.join().unwrap().is_err(),
            "the panic reaches the leader's caller"
        );
        assert_eq!(
            waiter.join().unwrap(),
            70,
            "the waiter ran its own initialiser"
        );
    });
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&7), Some(70));
    // Nothing stays pending: a later miss on another key, and on this one, work.
    assert_eq!(cache.remove(&7), Some(70));
    assert_eq!(cache.get_with(&7, || 71), 71);
}

std::thread_local! {
    /// Clones made on this thread, and whether its second one panics (the leader's below).
    static CLONES: std::cell::Cell<(u32, bool)> = const { std::cell::Cell::new((0, false)) };
}

/// A value whose second clone on a marked thread panics: the leader of a flight clones its
/// value once to store it and once more for the waiters that joined.
#[derive(Debug, PartialEq)]
struct SecondClonePanics(u64);

impl Clone for SecondClonePanics {
    fn clone(&self) -> Self {
        let (made, marked) = CLONES.with(std::cell::Cell::get);
        CLONES.with(|clones| clones.set((made + 1, marked)));
        assert!(!(marked && made == 1), "the value's clone panicked");
        Self(self.0)
    }
}

#[test]
fn a_value_whose_clone_for_the_waiters_panics_still_wakes_them() {
    let cache: Cache<u64, SecondClonePanics> = Cache::builder().capacity(100).build().unwrap();
    let calling = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    let leader = {
        let (cache, calling) = (cache.clone(), Arc::clone(&calling));
        thread::spawn(move || {
            CLONES.with(|clones| clones.set((0, true)));
            cache.get_with(&7, || {
                started_tx.send(()).unwrap();
                while calling.load(Ordering::SeqCst) < 2 {
                    thread::yield_now();
                }
                thread::sleep(Duration::from_millis(200)); // the waiters join meanwhile
                SecondClonePanics(70)
            })
        })
    };
    started_rx.recv().unwrap();
    // Threads of their own, not scoped ones: a waiter left parked fails the test, not hangs it.
    let (done_tx, done_rx) = mpsc::channel();
    for _ in 0..2 {
        let (cache, calling, done_tx) = (cache.clone(), Arc::clone(&calling), done_tx.clone());
        thread::spawn(move || {
            calling.fetch_add(1, Ordering::SeqCst);
            done_tx
                .send(cache.get_with(&7, || SecondClonePanics(71)))
                .unwrap();
        });
    }
    assert!(
        leader.join().is_err(),
        "the panic reaches the leader's caller"
    );
    for _ in 0..2 {
        let value = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a waiter left parked on a flight whose leader panicked");
        // The leader stored its value before it cloned it for the waiters: starting over, they
        // find it.
        assert_eq!(value, SecondClonePanics(70));
    }
}

#[test]
fn a_failing_initialiser_stores_nothing_and_the_next_call_runs_again() {
    // A `String` key, borrowed as `str`: owned only once the loader's value is stored.
    let cache: Cache<String, u32> = Cache::builder().capacity(100).build().unwrap();
    let failed = cache.try_get_with_options("asset", || Err("disk busy"), InsertOptions::new());
    assert_eq!(failed, Err(Arc::new("disk busy")));
    assert_eq!(cache.get("asset"), None);
    let critical = InsertOptions::new().priority(Priority::Critical);
    let loaded = cache.try_get_with_options("asset", || Ok::<_, &str>(5), critical);
    assert_eq!(loaded, Ok(5));
    assert_eq!(cache.get("asset"), Some(5));
}

#[test]
fn a_value_too_heavy_to_store_still_reaches_every_caller() {
    let cache: Cache<u32, Vec<u8>, _, _> = Cache::builder()
        .capacity(10)
        .weigher(|_: &u32, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    assert_eq!(cache.get_with(&1, || vec![0; 11]).len(), 11);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn stress_many_keys_many_threads_one_initialisation_each() {
    const KEYS: usize = 512;
    let cache: Cache<usize, usize> = Cache::builder()
        .capacity(KEYS as u64) // room for every key: nothing is evicted
        .build()
        .unwrap();
    let runs: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    let threads = 4;
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (cache, runs, barrier) = (&cache, &runs, &barrier);
            s.spawn(move || {
                barrier.wait();
                for round in 0..4 * KEYS {
                    let key = (round * 7 + t * 13) % KEYS;
                    let value = cache.get_with(&key, || {
                        runs[key].fetch_add(1, Ordering::SeqCst);
                        thread::yield_now();
                        key * 3
                    });
                    assert_eq!(value, key * 3);
                }
            });
        }
    });
    for (key, runs) in runs.iter().enumerate() {
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "key {key} initialised more than once"
        );
    }
}

#[test]
fn explicit_handles_load_too() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(10).build().unwrap();
    let handle = cache.handle();
    assert_eq!(handle.get_with(&1, || 10), 10);
    assert_eq!(handle.get(&1), Some(10));
    assert_eq!(
        handle.try_get_with_options(&2, || Err::<u64, ()>(()), InsertOptions::new()),
        Err(Arc::new(()))
    );
}

#[test]
fn a_declining_loader_stores_nothing_and_a_later_one_is_asked_again() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(100).build().unwrap();
    assert_eq!(cache.optionally_get_with(&1, || None), None);
    assert_eq!(cache.get(&1), None, "a declined load stores nothing");
    assert_eq!(cache.optionally_get_with(&1, || Some(10)), Some(10));
    assert_eq!(cache.optionally_get_with(&1, || unreachable!()), Some(10));
}

#[test]
fn a_borrowed_key_is_copied_only_on_a_miss() {
    use std::sync::atomic::AtomicUsize;
    static CLONES: AtomicUsize = AtomicUsize::new(0);
    #[derive(PartialEq, Eq, Hash, Debug)]
    struct Key(u64);
    impl Clone for Key {
        fn clone(&self) -> Self {
            CLONES.fetch_add(1, Ordering::SeqCst);
            Key(self.0)
        }
    }
    // Without L1, whose promotions copy keys of their own.
    let cache: Cache<Key, u64> = Cache::builder()
        .capacity(100)
        .l1_entries(0)
        .build()
        .unwrap();
    assert_eq!(cache.get_with(&Key(1), || 10), 10);
    let after_miss = CLONES.load(Ordering::SeqCst);
    assert!(after_miss >= 1, "the stored entry owns a copy");
    for _ in 0..100 {
        assert_eq!(cache.get_with(&Key(1), || unreachable!()), 10);
    }
    assert_eq!(
        CLONES.load(Ordering::SeqCst),
        after_miss,
        "a hit copies no key"
    );
}
