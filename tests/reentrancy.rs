//! User code that calls back into the cache: an eviction listener and a value's `Drop` that use
//! `get_with`, `get`, `insert` and `remove` while other threads load, promote and
//! evict. None of it may wait on a lock or a pending flight that its own call holds (DESIGN §9).
//! A watchdog turns a deadlock into a failure within seconds instead of a hung run.

use std::cell::Cell;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use stratacache::{Cache, InsertOptions, Priority};

/// How long a scenario may take before it counts as deadlocked (each finishes in well under a
/// second when nothing waits on itself): 20 seconds, or `STRATACACHE_WATCHDOG_SECS` (a build
/// under a sanitizer runs ten times slower).
fn watchdog() -> Duration {
    let secs = std::env::var("STRATACACHE_WATCHDOG_SECS").map_or(20, |s| {
        s.parse()
            .expect("STRATACACHE_WATCHDOG_SECS: a number of seconds")
    });
    Duration::from_secs(secs)
}

/// Runs `scenario` on a thread of its own and fails if it does not finish within the
/// [`watchdog`]. A deadlocked scenario's threads are left behind; the test process ends anyway.
fn within_watchdog(name: &str, scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let runner = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            scenario();
            let _ = done.send(());
        })
        .unwrap();
    let limit = watchdog();
    match finished.recv_timeout(limit) {
        Ok(()) => runner.join().unwrap(),
        // The runner panicked (its sender dropped): report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: no progress in {limit:?}: a callback waits on its own call")
        }
    }
}

thread_local! {
    /// Whether this thread is inside a callback already (callbacks re-enter once, not forever).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` unless this thread is already inside a callback.
fn once_deep(f: impl FnOnce()) {
    if IN_CALLBACK.with(|inside| inside.replace(true)) {
        return;
    }
    f();
    IN_CALLBACK.with(|inside| inside.set(false));
}

/// Four threads on a small cache (constant evictions and promotions) loading overlapping keys.
fn hammer<V: Clone + Send + Sync + 'static>(
    cache: &Arc<Cache<u64, V>>,
    make: impl Fn(u64) -> V + Send + Sync + 'static,
) {
    let make = Arc::new(make);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = Arc::clone(cache);
            let make = Arc::clone(&make);
            thread::spawn(move || {
                for i in 0..20_000u64 {
                    let key = (i * 7 + t * 13) % 97;
                    match i % 8 {
                        0 => {
                            cache.insert(key, make(key)).unwrap();
                        }
                        1 => {
                            cache.remove(&key);
                        }
                        2 => {
                            let critical = InsertOptions::new().priority(Priority::Critical);
                            cache.insert_with(key, make(key), critical).unwrap();
                        }
                        _ => {
                            cache.get_with(&key, || make(key));
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn small_builder<V>() -> stratacache::CacheBuilder<u64, V> {
    Cache::builder().capacity(48).l1_entries(7).promote_after(1)
}

#[test]
fn a_listener_may_load_read_write_and_remove_through_the_same_cache() {
    within_watchdog("listener re-entry", || {
        let slot: Arc<OnceLock<Weak<Cache<u64, u64>>>> = Arc::default();
        let from_listener = Arc::clone(&slot);
        let cache = Arc::new(
            small_builder()
                .eviction_listener(move |key: &u64, _: &u64, _| {
                    let Some(cache) = from_listener.get().and_then(Weak::upgrade) else {
                        return;
                    };
                    once_deep(|| {
                        // The same key (its flight may be this very call's) and a neighbour.
                        cache.get_with(key, || key + 1);
                        cache.get_with(&(key ^ 1), || key + 2);
                        cache.get(&(key + 3));
                        cache.insert(key + 5, *key).unwrap();
                        cache.remove(&(key + 7));
                    });
                })
                .build()
                .unwrap(),
        );
        slot.set(Arc::downgrade(&cache)).unwrap();
        hammer(&cache, |key| key * 10);
        assert!(cache.len() <= 48);
    });
}

/// A value whose `Drop` loads another key through the cache it lived in.
#[derive(Clone)]
struct Reentrant {
    key: u64,
    cache: Arc<OnceLock<Weak<Cache<u64, Reentrant>>>>,
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        let Some(cache) = self.cache.get().and_then(Weak::upgrade) else {
            return;
        };
        once_deep(|| {
            let neighbour = self.key ^ 1;
            let loaded = cache.get_with(&neighbour, || Reentrant {
                key: neighbour,
                cache: Arc::clone(&self.cache),
            });
            assert_eq!(loaded.key, neighbour);
            cache.get(&self.key);
        });
    }
}

#[test]
fn a_values_drop_may_load_through_the_cache_it_left() {
    within_watchdog("drop re-entry", || {
        let slot: Arc<OnceLock<Weak<Cache<u64, Reentrant>>>> = Arc::default();
        let cache = Arc::new(small_builder().build().unwrap());
        slot.set(Arc::downgrade(&cache)).unwrap();
        for _ in 0..5 {
            let slot = Arc::clone(&slot);
            hammer(&cache, move |key| Reentrant {
                key,
                cache: Arc::clone(&slot),
            });
        }
        assert!(cache.len() <= 48);
    });
}

/// A value whose `clone` writes a neighbour and reads its own key through the cache it lives
/// in: a promotion copies values into L1 with `clone`.
struct CloneReenters {
    key: u64,
    cache: Arc<OnceLock<Weak<Cache<u64, CloneReenters>>>>,
}

impl Clone for CloneReenters {
    fn clone(&self) -> Self {
        if let Some(cache) = self.cache.get().and_then(Weak::upgrade) {
            once_deep(|| {
                let neighbour = self.key ^ 1;
                let value = CloneReenters {
                    key: neighbour,
                    cache: Arc::clone(&self.cache),
                };
                cache.insert(neighbour, value).unwrap();
                cache.get(&self.key);
            });
        }
        Self {
            key: self.key,
            cache: Arc::clone(&self.cache),
        }
    }
}

#[test]
fn a_values_clone_may_write_through_the_cache_it_is_promoted_from() {
    within_watchdog("clone re-entry", || {
        let slot: Arc<OnceLock<Weak<Cache<u64, CloneReenters>>>> = Arc::default();
        let cache = Arc::new(small_builder().build().unwrap());
        slot.set(Arc::downgrade(&cache)).unwrap();
        let make = |key| CloneReenters {
            key,
            cache: Arc::clone(&slot),
        };
        // One thread first: every second read of a key is an L2 hit that promotes it.
        for key in 0..40 {
            cache.insert(key, make(key)).unwrap();
            assert_eq!(cache.get(&key).map(|v| v.key), Some(key));
        }
        assert!(cache.stats().promotions > 0, "{:?}", cache.stats());
        let slot = Arc::clone(&slot);
        hammer(&cache, move |key| CloneReenters {
            key,
            cache: Arc::clone(&slot),
        });
        assert!(cache.len() <= 48);
    });
}

/// A value whose `clone`, on a thread marked as a waiter, waits until another waiter's clone
/// has begun: two waiters of one flight can only both finish if their clones run side by side,
/// not one at a time under the flight's lock.
struct Rendezvous(Arc<std::sync::atomic::AtomicUsize>);

thread_local! {
    static WAITER: Cell<bool> = const { Cell::new(false) };
}

impl Clone for Rendezvous {
    fn clone(&self) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        if WAITER.with(Cell::get) {
            self.0.fetch_add(1, SeqCst);
            while self.0.load(SeqCst) < 2 {
                thread::yield_now();
            }
        }
        Self(Arc::clone(&self.0))
    }
}

#[test]
fn the_waiters_of_a_flight_clone_its_value_under_no_lock() {
    within_watchdog("waiters' clones", || {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let cache: Arc<Cache<u64, Rendezvous>> =
            Arc::new(Cache::builder().capacity(100).build().unwrap());
        let calling = Arc::new(AtomicUsize::new(0));
        let inside = Arc::new(AtomicUsize::new(0));
        let (loading, loader_started) = mpsc::channel();
        let leader = {
            let (cache, calling, inside) = (cache.clone(), calling.clone(), inside.clone());
            thread::spawn(move || {
                cache.get_with(&7, || {
                    loading.send(()).unwrap();
                    // Both waiters are calling; give them the time to join the flight (were
                    // one late, it would find the value stored and clone it under no lock).
                    while calling.load(SeqCst) < 2 {
                        thread::yield_now();
                    }
                    thread::sleep(Duration::from_millis(200));
                    Rendezvous(inside)
                })
            })
        };
        loader_started.recv().unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (cache, calling) = (cache.clone(), calling.clone());
                thread::spawn(move || {
                    WAITER.with(|waiter| waiter.set(true));
                    calling.fetch_add(1, SeqCst);
                    cache.get_with(&7, || unreachable!("the leader loads key 7"))
                })
            })
            .collect();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        leader.join().unwrap();
        assert_eq!(inside.load(SeqCst), 2, "each waiter cloned the value once");
    });
}

/// The leader's own insertion evicts the entry it stores (the only other one is `Critical`, and
/// the capacity holds one), and the listener loads that key again. Before the fix, the leader
/// ran the listener while its flight was still pending, and waited on itself.
#[test]
fn a_listener_that_loads_the_key_its_leader_loads_does_not_wait_on_itself() {
    within_watchdog("own flight", || {
        let slot: Arc<OnceLock<Weak<Cache<u64, u64>>>> = Arc::default();
        let from_listener = Arc::clone(&slot);
        let reloaded = Arc::new(OnceLock::new());
        let seen = Arc::clone(&reloaded);
        let cache = Arc::new(
            Cache::builder()
                .capacity(1)
                .shards(1)
                .eviction_listener(move |key: &u64, _: &u64, _| {
                    let Some(cache) = from_listener.get().and_then(Weak::upgrade) else {
                        return;
                    };
                    if *key == 2 {
                        once_deep(|| {
                            let _ = seen.set(cache.get_with(&2, || 99));
                        });
                    }
                })
                .build()
                .unwrap(),
        );
        slot.set(Arc::downgrade(&cache)).unwrap();
        let critical = InsertOptions::new().priority(Priority::Critical);
        cache.insert_with(1, 10, critical).unwrap();
        assert_eq!(cache.get_with(&2, || 20), 20);
        assert_eq!(
            reloaded.get(),
            Some(&99),
            "the listener loaded key 2 afresh"
        );
        assert_eq!(cache.get(&1), Some(10), "the Critical entry stayed");
    });
}

/// A computation replaces, then removes, a key, and the listener (hearing of the old value)
/// computes on that same key: the computation's turn has ended before the listener runs, so
/// the listener's computation does not wait on the one that called it.
#[test]
fn a_listener_that_computes_on_the_key_a_computation_changed_does_not_wait_on_it() {
    within_watchdog("own computation", || {
        let slot: Arc<OnceLock<Weak<Cache<u64, u64>>>> = Arc::default();
        let from_listener = Arc::clone(&slot);
        let cache = Arc::new(
            Cache::builder()
                .capacity(10)
                .eviction_listener(move |key: &u64, value: &u64, _| {
                    let Some(cache) = from_listener.get().and_then(Weak::upgrade) else {
                        return;
                    };
                    once_deep(|| {
                        // Keeps a record of what left, under the key plus 100.
                        let record = key + 100;
                        cache.entry(&record).and_upsert_with(|_| *value).unwrap();
                        cache
                            .entry(key)
                            .and_upsert_with(|now| now.unwrap_or(0) + 1000)
                            .unwrap();
                    });
                })
                .build()
                .unwrap(),
        );
        slot.set(Arc::downgrade(&cache)).unwrap();
        cache.insert(1, 10).unwrap();
        cache
            .entry(&1)
            .and_upsert_with(|now| now.unwrap_or(0) + 1)
            .unwrap();
        assert_eq!(
            cache.get(&101),
            Some(10),
            "the listener heard of the replaced value"
        );
        assert_eq!(
            cache.get(&1),
            Some(1011),
            "and computed on the key after the computation"
        );
        let removed = cache
            .entry(&1)
            .and_compute_with(|_| stratacache::ComputeOp::Remove);
        assert_eq!(removed, Ok(stratacache::Computed::Removed(1011)));
        assert_eq!(cache.get(&101), Some(1011));
        assert_eq!(
            cache.get(&1),
            Some(1000),
            "the listener's computation came after the removal"
        );
    });
}

/// A thread-local whose `Drop` uses the cache: run as the thread exits, after the thread's
/// other thread-locals (the cache's own among them) may be gone.
struct AtThreadExit {
    cache: Arc<Cache<u64, u64>>,
    seen: mpsc::Sender<(Option<u64>, Option<u64>)>,
}

impl Drop for AtThreadExit {
    fn drop(&mut self) {
        let before = self.cache.get(&1);
        self.cache.insert(2, 20).expect("room");
        let written = self.cache.get(&2);
        self.cache.remove(&1);
        self.seen.send((before, written)).expect("the test waits");
    }
}

thread_local! {
    static AT_EXIT: std::cell::RefCell<Option<AtThreadExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn a_thread_locals_drop_may_use_the_cache_as_its_thread_exits() {
    let cache = Arc::new(small_builder().build().expect("valid"));
    cache.insert(1, 10).expect("room");
    let (seen, results) = mpsc::channel();
    let worker = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || {
            // Set before the thread's first call, so it is destroyed after what that call sets
            // up (thread-locals are destroyed in the reverse order of their first use).
            AT_EXIT.with(|slot| {
                *slot.borrow_mut() = Some(AtThreadExit {
                    cache: Arc::clone(&cache),
                    seen,
                });
            });
            for _ in 0..100 {
                assert_eq!(cache.get(&1), Some(10));
            }
        })
    };
    worker.join().expect("the worker exits cleanly");
    assert_eq!(
        results
            .recv_timeout(watchdog())
            .expect("the destructor ran"),
        (Some(10), Some(20)),
        "the destructor read, wrote and read back"
    );
    assert_eq!(cache.get(&1), None, "and its removal holds");
    assert_eq!(cache.get(&2), Some(20));
}
