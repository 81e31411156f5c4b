//! Prefetching through the async facade: sequential runs, spatial neighbours and temporal
//! pairs each turn later requests into hits; the budget of loads in flight holds; failed,
//! used and wasted prefetches are counted. The spawner here runs each background load to its
//! end at once, so every figure is exact.
#![cfg(feature = "async")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use stratacache::Cache;
use stratacache::future::{AsyncCache, Background, Prefetch};

fn cache<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static>(
    capacity: u64,
) -> AsyncCache<K, String> {
    Cache::builder().capacity(capacity).build().unwrap().into()
}

/// A spawner that runs the background load to its end, here and now (its loader never
/// waits; `block_on` may not nest, so it polls by hand).
fn at_once(mut load: Background) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while load.as_mut().poll(&mut cx).is_pending() {
        std::thread::yield_now();
    }
}

/// How many of `requests` were hits in memory (the cache's statistics).
fn hits<K, V>(cache: &AsyncCache<K, V>) -> u64
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache.sync().stats().hits()
}

#[test]
fn a_sequential_walk_is_loaded_ahead_of_its_requests() {
    let loads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&loads);
    let walk = cache::<u64>(10_000).prefetching(
        Prefetch::new().sequential(|&k| Some(k + 1), 8),
        move |k: u64| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, ()>(format!("chunk {k}")) }
        },
        at_once,
    );
    for key in 0..1_000u64 {
        assert_eq!(block_on(walk.get(&key)).unwrap(), format!("chunk {key}"));
    }
    // The first two requests start the run; every later one was loaded ahead.
    assert!(
        hits(walk.cache()) >= 997,
        "{:?}",
        walk.cache().sync().stats()
    );
    let stats = walk.stats();
    assert!(stats.used >= 997, "{stats:?}");
    assert!(stats.issued <= 1_000 + 8, "{stats:?}");
    assert!(loads.load(Ordering::Relaxed) <= 1_008);
    // Without prefetching the same walk misses every time.
    let plain = cache::<u64>(10_000);
    for key in 0..1_000u64 {
        block_on(plain.get_with(&key, async move { format!("chunk {key}") }));
    }
    assert_eq!(hits(&plain), 0);
}

#[test]
fn a_player_walking_a_map_finds_the_tiles_around_it_loaded() {
    let around = |&(x, y): &(i32, i32), out: &mut Vec<(i32, i32)>| {
        for dx in -1..=1 {
            for dy in -1..=1 {
                if (dx, dy) != (0, 0) {
                    out.push((x + dx, y + dy));
                }
            }
        }
    };
    let tiles = cache::<(i32, i32)>(10_000).prefetching(
        Prefetch::new().spatial(around).in_flight(64),
        |(x, y): (i32, i32)| async move { Ok::<_, ()>(format!("tile {x},{y}")) },
        at_once,
    );
    // A walk of 200 steps, turning now and then.
    let (mut x, mut y) = (0, 0);
    for step in 0..200 {
        if step % 7 < 4 {
            x += 1;
        } else {
            y += 1;
        }
        assert_eq!(
            block_on(tiles.get(&(x, y))).unwrap(),
            format!("tile {x},{y}")
        );
    }
    assert!(
        hits(tiles.cache()) >= 199,
        "{:?}",
        tiles.cache().sync().stats()
    );
    let stats = tiles.stats();
    assert!(stats.used >= 199, "{stats:?}");
    // Most neighbours were never walked on, but they are still cached: not wasted yet.
    assert!(stats.issued > stats.used, "{stats:?}");
}

#[test]
fn a_key_that_followed_another_is_loaded_when_the_first_is_asked_again() {
    let pairs = cache::<u32>(10_000).prefetching(
        Prefetch::new().temporal(),
        |k: u32| async move { Ok::<_, ()>(format!("value {k}")) },
        at_once,
    );
    // First pass: 10 → 500, 20 → 600, ... learnt; nothing prefetched yet.
    for first in (10..100).step_by(10) {
        block_on(pairs.get(&first)).unwrap();
        block_on(pairs.get(&(first + 490))).unwrap();
    }
    assert_eq!(pairs.stats().issued, 0);
    // Evict the followers, then ask for the firsts again: each loads its follower.
    for first in (10..100).step_by(10) {
        block_on(pairs.cache().remove(&(first + 490)));
    }
    let before = hits(pairs.cache());
    for first in (10..100).step_by(10) {
        block_on(pairs.get(&first)).unwrap();
        block_on(pairs.get(&(first + 490))).unwrap();
    }
    // Both of each pair hit now: the firsts were cached, the followers prefetched.
    assert_eq!(hits(pairs.cache()) - before, 18);
    assert_eq!(pairs.stats().used, 9);
}

#[test]
fn failed_prefetches_are_counted_and_store_nothing() {
    let walk = cache::<u64>(1_000).prefetching(
        Prefetch::new().sequential(|&k| Some(k + 1), 4),
        |k: u64| async move {
            if k % 2 == 1 {
                Err(format!("no chunk {k}"))
            } else {
                Ok(format!("chunk {k}"))
            }
        },
        at_once,
    );
    assert!(block_on(walk.get(&0)).is_ok());
    assert!(block_on(walk.get(&1)).is_err());
    assert!(block_on(walk.get(&2)).is_ok());
    let stats = walk.stats();
    assert!(stats.failed >= 2, "{stats:?}");
    assert!(!walk.cache().sync().contains_key(&3));
    let error = block_on(walk.get(&3)).unwrap_err();
    assert_eq!(*error, "no chunk 3");
}

#[test]
fn the_budget_of_loads_in_flight_holds_and_unused_prefetches_are_wasted() {
    // A spawner that holds the loads back until told: every one stays in flight.
    let held: Arc<Mutex<Vec<Background>>> = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    let walk = cache::<u64>(100).prefetching(
        Prefetch::new()
            .sequential(|&k| Some(k + 1), 16)
            .in_flight(5),
        |k: u64| async move { Ok::<_, ()>(format!("chunk {k}")) },
        move |load| keep.lock().unwrap().push(load),
    );
    block_on(walk.get(&0)).unwrap();
    block_on(walk.get(&1)).unwrap();
    let stats = walk.stats();
    assert_eq!(stats.issued, 5, "{stats:?}");
    assert_eq!(stats.dropped, 11, "{stats:?}");
    assert_eq!(held.lock().unwrap().len(), 5);
    // A request for a key whose prefetch has not landed yet: the prefetch was worth it.
    let loads: Vec<Background> = held.lock().unwrap().drain(..).collect();
    block_on(walk.get(&2)).unwrap();
    assert_eq!(walk.stats().used, 1, "{:?}", walk.stats());
    // Run them: the budget is free again, and the prefetched chunks are cached.
    loads.into_iter().for_each(at_once);
    assert!(walk.cache().sync().contains_key(&6));
    // The other four leave the cache unused: wasted.
    for key in 3..=6u64 {
        block_on(walk.cache().remove(&key)).unwrap();
    }
    let stats = walk.stats();
    assert_eq!((stats.used, stats.wasted), (1, 4), "{stats:?}");
}
