//! Refresh after write, on a manual clock: a loader's read of an entry past its refresh time
//! reloads it (one caller only); failures, declines and panics keep the current value; plain
//! reads never reload; writes start the time again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use stratacache::{Cache, ManualClock};

const AFTER: Duration = Duration::from_secs(60);

fn refreshing(clock: &Arc<ManualClock>) -> Cache<u32, u32> {
    Cache::builder()
        .capacity(100)
        .clock(Arc::clone(clock))
        .refresh_after_write(AFTER)
        .build()
        .unwrap()
}

#[test]
fn a_due_entry_is_reloaded_by_the_loader_that_reads_it() {
    let clock = Arc::new(ManualClock::new());
    let cache = refreshing(&clock);
    assert_eq!(cache.get_with(&1, || 10), 10);
    clock.advance(AFTER - Duration::from_secs(1));
    assert_eq!(cache.get_with(&1, || unreachable!("not due")), 10);
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), Some(10), "a plain read does not reload");
    let fetched = cache.entry(&1).or_insert_with(|| 11);
    assert_eq!(
        (fetched.value(), fetched.is_fresh()),
        (&11, true),
        "due: reloaded"
    );
    assert_eq!(cache.get(&1), Some(11));
    clock.advance(AFTER / 2);
    assert_eq!(cache.get_with(&1, || unreachable!("reloaded 30 s ago")), 11);
    // A write starts the time again.
    clock.advance(AFTER / 2);
    cache.insert(1, 12).unwrap();
    assert_eq!(cache.get_with(&1, || unreachable!("just written")), 12);
}

#[test]
fn a_failed_declined_or_panicking_reload_keeps_the_value_and_tries_again() {
    let clock = Arc::new(ManualClock::new());
    let cache = refreshing(&clock);
    cache.insert(1, 10).unwrap();
    clock.advance(AFTER);
    assert_eq!(
        cache.try_get_with(&1, || Err::<u32, &str>("offline")),
        Ok(10)
    );
    assert_eq!(cache.optionally_get_with(&1, || None), Some(10));
    let panicked = catch_unwind(AssertUnwindSafe(|| cache.get_with(&1, || panic!("loader"))));
    assert!(panicked.is_err());
    assert_eq!(
        cache.get(&1),
        Some(10),
        "the value stayed through all three"
    );
    assert_eq!(
        cache.get_with(&1, || 11),
        11,
        "the next loader read reloads"
    );
}

#[test]
fn concurrent_loader_reads_of_a_due_entry_reload_it_once() {
    let clock = Arc::new(ManualClock::new());
    let cache = refreshing(&clock);
    for round in 0..20u32 {
        cache.insert(1, round * 100).unwrap();
        clock.advance(AFTER);
        let reloads = AtomicUsize::new(0);
        let threads = 4;
        let barrier = Barrier::new(threads);
        let seen: Vec<u32> = thread::scope(|s| {
            let readers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        cache.get_with(&1, || {
                            reloads.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(5));
                            round * 100 + 1
                        })
                    })
                })
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(reloads.load(Ordering::SeqCst), 1, "round {round}: {seen:?}");
        assert!(
            seen.iter()
                .all(|&v| v == round * 100 || v == round * 100 + 1)
        );
        assert_eq!(cache.get(&1), Some(round * 100 + 1));
    }
}
