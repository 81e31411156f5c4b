//! Time to idle through the public API, on a manual clock: reads push an entry's idle
//! deadline on, writes start it again, a time to live still ends the entry, and idle entries
//! are never returned and are reclaimed first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stratacache::{Cache, InsertOptions, ManualClock, RemovalCause};

const IDLE: Duration = Duration::from_secs(10);

fn idle_cache(clock: &Arc<ManualClock>, capacity: u64) -> Cache<u32, u32> {
    Cache::builder()
        .capacity(capacity)
        .shards(1)
        .clock(Arc::clone(clock))
        .time_to_idle(IDLE)
        .build()
        .unwrap()
}

#[test]
fn reads_keep_an_entry_and_idleness_ends_it() {
    let clock = Arc::new(ManualClock::new());
    let cache = idle_cache(&clock, 100);
    cache.insert(1, 10).unwrap();
    cache.insert(2, 20).unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(6));
        assert_eq!(cache.get(&1), Some(10), "read every 6 s of 10");
    }
    assert_eq!(cache.get(&2), None, "30 s without a read");
    // A peek is not a read: it neither keeps the entry nor finds it past its deadline.
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.peek(&1), Some(10));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.peek(&1), None);
    assert_eq!(cache.get(&1), None);
    // A write starts the idle time again; so does a loader's value and a computation's.
    cache.insert(3, 30).unwrap();
    clock.advance(Duration::from_secs(9));
    cache.insert(3, 31).unwrap();
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.get(&3), Some(31));
    assert_eq!(cache.get_with(&4, || 40), 40);
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        cache.get_with(&4, || unreachable!("a hit")),
        40,
        "a loader's hit reads"
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.get(&4), Some(40));
}

#[test]
fn reads_served_by_l1_keep_an_entry_and_its_copies_never_outlive_it() {
    let clock = Arc::new(ManualClock::new());
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(100)
        .shards(1)
        .promote_after(1)
        .clock(Arc::clone(&clock))
        .time_to_idle(IDLE)
        .build()
        .unwrap();
    cache.insert(1, 10).unwrap();
    // A read every 100 ms for a minute: most are L1's (a copy lives 10 s / 32), and the reads
    // after each copy's end push L2's idle deadline on.
    for _ in 0..600 {
        clock.advance(Duration::from_millis(100));
        assert_eq!(cache.get(&1), Some(10));
    }
    let stats = cache.stats();
    assert!(stats.l1_hits > 400, "{} L1 hits of 600", stats.l1_hits);
    // Idle from now: gone within the time to idle, whichever tier last served it.
    clock.advance(IDLE + Duration::from_millis(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_time_to_live_still_ends_an_entry_that_is_read() {
    let clock = Arc::new(ManualClock::new());
    let cache = idle_cache(&clock, 100);
    let brief = InsertOptions::new().time_to_live(Duration::from_secs(15));
    cache.insert_with(1, 10, brief).unwrap();
    clock.advance(Duration::from_secs(8));
    assert_eq!(cache.get(&1), Some(10));
    clock.advance(Duration::from_secs(6));
    assert_eq!(cache.get(&1), Some(10), "14 s: within both");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None, "15 s: its time to live is up");
}

#[test]
fn idle_entries_leave_first_and_are_told_as_expired() {
    let clock = Arc::new(ManualClock::new());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: Cache<u32, u32> = Cache::builder()
        .capacity(4)
        .shards(1)
        .clock(Arc::clone(&clock))
        .time_to_idle(IDLE)
        .eviction_listener(move |key: &u32, _: &u32, cause| log.lock().unwrap().push((*key, cause)))
        .build()
        .unwrap();
    for key in 0..4 {
        cache.insert(key, key).unwrap();
    }
    clock.advance(Duration::from_secs(6));
    for key in 1..4 {
        assert_eq!(cache.get(&key), Some(key));
    }
    clock.advance(Duration::from_secs(6));
    // Key 0 has been idle 12 s; the others 6 s. A fifth entry evicts the idle one.
    cache.insert(4, 4).unwrap();
    assert_eq!(*heard.lock().unwrap(), [(0, RemovalCause::Expired)]);
    assert_eq!(cache.iter().count(), 4);
    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&4), Some(4));
    // 11 s idle for 1, 2 and 3: gone from iteration and swept by `evict_expired`.
    let mut left: Vec<u32> = cache.iter().map(|(key, _)| key).collect();
    left.sort_unstable();
    assert_eq!(left, [4]);
    assert_eq!(cache.evict_expired(), 3);
    assert_eq!(cache.len(), 1);
}

#[test]
fn readers_on_many_threads_keep_what_they_read_while_the_clock_runs() {
    let clock = Arc::new(ManualClock::new());
    let cache = idle_cache(&clock, 1_000);
    for key in 0..200 {
        cache.insert(key, key).unwrap();
    }
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        // Readers of the even keys, over and over.
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for key in (0..200).step_by(2) {
                        assert_eq!(cache.get(&key), Some(key), "a key read all along");
                    }
                }
            });
        }
        // The clock moves a tenth of the idle time at a time, once each reader has read
        // every even key since the last step (the readers take turns with it through the
        // statistics: at least 100 hits a reader per step).
        for _ in 0..50 {
            let hits = cache.stats().hits();
            let began = Instant::now();
            while cache.stats().hits() < hits + 3 * 100 + 300 {
                if began.elapsed() > Duration::from_secs(20) {
                    stop.store(true, Ordering::Relaxed);
                    panic!("the readers stopped reading (one failed)");
                }
                thread::yield_now();
            }
            clock.advance(IDLE / 10);
        }
        stop.store(true, Ordering::Relaxed);
    });
    for key in (1..200).step_by(2) {
        assert_eq!(cache.get(&key), None, "an odd key, never read, idled out");
    }
}
