//! The async facade: single flight across tasks on a multi-thread runtime, a leader cancelled
//! at every await point or panicking, errors shared with waiters, loaders that re-enter the
//! cache, a second executor, and the disk tier's I/O off the executor's threads.
#![cfg(feature = "async")]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use stratacache::Cache;
use stratacache::future::AsyncCache;

fn cache(capacity: u64) -> AsyncCache<u64, String> {
    Cache::builder().capacity(capacity).build().unwrap().into()
}

/// A future that is pending `n` times (waking itself), then ready.
struct YieldTimes(usize);

impl Future for YieldTimes {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_missing_one_key_run_one_load() {
    let cache = cache(1_000);
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_with(&1, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        String::from("one")
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "one");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_on_many_keys_load_each_key_once() {
    let cache = cache(10_000);
    let loads: Arc<Vec<AtomicUsize>> = Arc::new((0..100).map(|_| AtomicUsize::new(0)).collect());
    let tasks: Vec<_> = (0..400u64)
        .map(|task| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                for i in 0..100u64 {
                    let key = (i + task) % 100;
                    let value = cache
                        .get_with(&key, async {
                            loads[key as usize].fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            format!("value {key}")
                        })
                        .await;
                    assert_eq!(value, format!("value {key}"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for (key, loads) in loads.iter().enumerate() {
        assert_eq!(loads.load(Ordering::SeqCst), 1, "key {key}");
    }
}

#[test]
fn a_leader_dropped_at_any_await_point_hands_the_load_to_a_waiter() {
    for polls in 1..=6usize {
        let cache = cache(100);
        let loads = AtomicUsize::new(0);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        // The leader's loader yields five times: dropped after `polls` polls, it is at one
        // of its await points (or, at 6, done).
        let mut leader = Box::pin(cache.get_with(&9, async {
            loads.fetch_add(1, Ordering::SeqCst);
            YieldTimes(5).await;
            String::from("leader's")
        }));
        let mut led = None;
        for _ in 0..polls {
            if let Poll::Ready(value) = leader.as_mut().poll(&mut cx) {
                led = Some(value);
            }
        }
        // A waiter joins the flight (or finds the value).
        let mut waiter = pin!(cache.get_with(&9, async {
            loads.fetch_add(1, Ordering::SeqCst);
            String::from("waiter's")
        }));
        let first = waiter.as_mut().poll(&mut cx);
        drop(leader);
        let value = match first {
            Poll::Ready(value) => value,
            Poll::Pending => futures::executor::block_on(waiter),
        };
        if polls == 6 {
            assert_eq!(led.as_deref(), Some("leader's"));
            assert_eq!(value, "leader's", "polls {polls}");
            assert_eq!(loads.load(Ordering::SeqCst), 1);
        } else {
            assert_eq!(value, "waiter's", "polls {polls}: the waiter took over");
            assert_eq!(loads.load(Ordering::SeqCst), 2, "polls {polls}");
        }
        assert_eq!(
            futures::executor::block_on(cache.get(&9)).as_deref(),
            Some(value.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_loader_wakes_the_waiters_and_one_loads_instead() {
    let cache = cache(100);
    let started = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started, go) = (cache.clone(), Arc::clone(&started), Arc::clone(&go));
        tokio::spawn(async move {
            cache
                .get_with(&3, async {
                    started.notify_one();
                    go.notified().await;
                    panic!("the loader failed badly");
                })
                .await
        })
    };
    started.notified().await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_with(&3, async { String::from("retried") }).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    go.notify_one();
    assert!(leader.await.unwrap_err().is_panic());
    assert_eq!(waiter.await.unwrap(), "retried");
    assert_eq!(cache.get(&3).await.as_deref(), Some("retried"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_loader_shares_its_error_with_the_waiters_and_stores_nothing() {
    let cache = cache(100);
    let go = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, go) = (cache.clone(), Arc::clone(&go));
        tokio::spawn(async move {
            cache
                .try_get_with(&4, async {
                    go.notified().await;
                    Err::<String, _>("the backend is down")
                })
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .try_get_with(&4, async { Ok::<_, &str>(String::from("never")) })
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    go.notify_one();
    let led = leader.await.unwrap().unwrap_err();
    let waited = waiter.await.unwrap().unwrap_err();
    assert!(Arc::ptr_eq(&led, &waited), "one error, shared");
    assert_eq!(*led, "the backend is down");
    assert_eq!(cache.get(&4).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_may_use_the_cache_for_other_keys() {
    let cache = cache(100);
    cache.insert(1, String::from("base")).await.unwrap();
    let inner = cache.clone();
    let value = cache
        .get_with(&2, async move {
            let base = inner.get(&1).await.unwrap();
            let other = inner.get_with(&3, async { String::from("three") }).await;
            inner.insert(4, String::from("four")).await.unwrap();
            format!("{base}+{other}")
        })
        .await;
    assert_eq!(value, "base+three");
    assert_eq!(cache.get(&4).await.as_deref(), Some("four"));
    assert_eq!(cache.remove(&4).await.as_deref(), Some("four"));
    assert_eq!(cache.get(&4).await, None);
}

#[test]
fn it_runs_on_another_executor() {
    let cache = cache(100);
    let pool = futures::executor::ThreadPool::new().unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            let (send, receive) = futures::channel::oneshot::channel();
            pool.spawn_ok(async move {
                let value = cache
                    .get_with(&5, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        YieldTimes(3).await;
                        String::from("five")
                    })
                    .await;
                send.send(value).unwrap();
            });
            receive
        })
        .collect();
    for handle in handles {
        assert_eq!(futures::executor::block_on(handle).unwrap(), "five");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let many = futures::executor::block_on(cache.get_many([&5, &6]));
    assert_eq!(many, vec![Some(String::from("five")), None]);
}

#[cfg(feature = "persistent")]
#[tokio::test(flavor = "current_thread")]
async fn with_a_disk_tier_values_come_back_through_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = stratacache::l3::Store::builder(dir.path()).open().unwrap();
    let cache: AsyncCache<u64, String> = Cache::builder()
        .capacity(16)
        .build_persistent(store)
        .unwrap()
        .into();
    let refused = cache
        .insert_many((0..500u64).map(|key| (key, format!("value {key}"))))
        .await;
    assert!(refused.is_empty());
    // Most left memory: read back from disk, one at a time and together.
    for key in 0..500u64 {
        assert_eq!(
            cache.get(&key).await,
            Some(format!("value {key}")),
            "key {key}"
        );
    }
    let keys: Vec<u64> = (0..500).collect();
    let many = cache.get_many(&keys).await;
    assert!(
        many.iter()
            .enumerate()
            .all(|(key, v)| *v == Some(format!("value {key}")))
    );
    assert!(
        cache.sync().stats().l3_hits > 400,
        "{:?}",
        cache.sync().stats()
    );
    // A load on a miss in every tier; a removal hides the disk's copy too.
    let loaded = cache
        .get_with(&9_999, async { String::from("loaded") })
        .await;
    assert_eq!(loaded, "loaded");
    cache.remove(&7).await;
    assert_eq!(cache.get(&7).await, None);
}

#[tokio::test(flavor = "current_thread")]
async fn get_many_with_runs_the_loads_of_its_misses_together() {
    let cache = cache(1_000);
    cache.insert(2, String::from("cached")).await.unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let keys: Vec<u64> = (0..8).collect();
    let found = cache
        .get_many_with(&keys, |&key| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if key == 5 {
                    Err("no five")
                } else {
                    Ok(format!("loaded {key}"))
                }
            }
        })
        .await;
    // One thread, seven loads of 10 ms: they overlapped.
    assert_eq!(most.load(Ordering::SeqCst), 7);
    for (key, result) in found.into_iter().enumerate() {
        match key {
            2 => assert_eq!(result.unwrap(), "cached"),
            5 => assert_eq!(*result.unwrap_err(), "no five"),
            _ => assert_eq!(result.unwrap(), format!("loaded {key}")),
        }
    }
    assert_eq!(cache.get(&7).await.as_deref(), Some("loaded 7"));
}

tokio::task_local! {
    /// Set around the waiters' calls: their clones of the loaded value meet (see [`Rendezvous`]).
    static WAITER: bool;
}

/// A value whose `clone`, inside a waiter's call, waits until another waiter's clone has begun:
/// two waiters of one flight can only both finish if they clone side by side, not one at a time
/// under the flight's lock.
struct Rendezvous(Arc<AtomicUsize>);

impl Clone for Rendezvous {
    fn clone(&self) -> Self {
        if WAITER.try_with(|waiter| *waiter).unwrap_or(false) {
            self.0.fetch_add(1, Ordering::SeqCst);
            while self.0.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
        }
        Self(Arc::clone(&self.0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tasks_clone_the_loaded_value_under_no_lock() {
    let cache: AsyncCache<u64, Rendezvous> = Cache::builder().capacity(100).build().unwrap().into();
    let (inside, calling) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (started, loader_started) = tokio::sync::oneshot::channel();
    let leader = tokio::spawn({
        let (cache, inside, calling) = (cache.clone(), Arc::clone(&inside), Arc::clone(&calling));
        async move {
            cache
                .get_with(&7, async move {
                    started.send(()).unwrap();
                    // Both waiters are calling; give them the time to join the flight (were one
                    // late, it would find the value stored and clone it under no lock).
                    while calling.load(Ordering::SeqCst) < 2 {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Rendezvous(inside)
                })
                .await
        }
    });
    loader_started.await.unwrap();
    // Threads of their own, not the runtime's: a waiter stuck in its clone blocks only itself.
    let (done, finished) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let (cache, calling, done) = (cache.clone(), Arc::clone(&calling), done.clone());
        std::thread::spawn(move || {
            calling.fetch_add(1, Ordering::SeqCst);
            let waited = futures::executor::block_on(WAITER.scope(true, async {
                cache
                    .get_with(&7, async { unreachable!("the leader loads key 7") })
                    .await
            }));
            done.send(waited.0.load(Ordering::SeqCst)).unwrap();
        });
    }
    for _ in 0..2 {
        let seen = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the two waiters' clones ran side by side");
        assert_eq!(seen, 2);
    }
    leader.await.unwrap();
    assert_eq!(inside.load(Ordering::SeqCst), 2, "each waiter cloned once");
}
