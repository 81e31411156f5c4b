//! What prefetching gains, in hit ratio: a sequential workload (clients reading files chunk
//! by chunk, their requests interleaved) and a spatial one (players walking a game map, each
//! asking for the tile under it), each through an `AsyncCache` without and with its detector.
//! Loads are instant and run at once (a deterministic run): the figures are hit ratios and
//! prefetch counts, not times.
//!
//! `cargo run --release -p stratacache-benches --example prefetch`

use std::task::{Context, Poll, Waker};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use stratacache::Cache;
use stratacache::future::{AsyncCache, Background, Prefetch, PrefetchStats};

fn run_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn at_once(load: Background) {
    run_now(load);
}

/// Hit ratio (%) of `requests` through a cache of `capacity`, and the prefetch counts.
fn measure<K>(capacity: u64, prefetch: Option<Prefetch<K>>, requests: &[K]) -> (f64, PrefetchStats)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    let cache: AsyncCache<K, u64> = Cache::builder()
        .capacity(capacity)
        .build()
        .expect("builds")
        .into();
    // Requests that found their key in the cache (a prefetch's own lookups are not counted).
    let mut hits = 0u64;
    let stats = match prefetch {
        None => {
            for key in requests {
                hits += u64::from(cache.sync().contains_key(key));
                run_now(cache.get_with(key, async { 1 }));
            }
            PrefetchStats::default()
        }
        Some(prefetch) => {
            let cache =
                cache
                    .clone()
                    .prefetching(prefetch, |_key: K| async { Ok::<u64, ()>(1) }, at_once);
            for key in requests {
                hits += u64::from(cache.cache().sync().contains_key(key));
                run_now(cache.get(key)).expect("loads");
            }
            cache.stats()
        }
    };
    (100.0 * hits as f64 / requests.len() as f64, stats)
}

fn row(workload: &str, plain: f64, (with, stats): (f64, PrefetchStats)) {
    println!(
        "| {workload} | {plain:.2} | {with:.2} | {:+.2} | {} | {} | {} | {} |",
        with - plain,
        stats.issued,
        stats.used,
        stats.wasted,
        stats.dropped
    );
}

fn main() {
    println!(
        "| workload | hit ratio % without | with prefetching | gain (points) | issued | used | wasted | dropped |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");

    // Sequential: 16 clients, each reading 4 files of 1,000 chunks from the start, their
    // requests interleaved; 200 files in all, a cache of 5,000 chunks.
    let mut rng = SmallRng::seed_from_u64(1);
    let mut cursors: Vec<(u64, u64, u32)> = (0..16)
        .map(|_| (rng.random_range(0..200u64) * 1_000, 0, 0))
        .collect();
    let mut requests = Vec::new();
    while cursors.iter().any(|&(_, _, done)| done < 4) {
        for cursor in cursors.iter_mut().filter(|c| c.2 < 4) {
            requests.push(cursor.0 + cursor.1);
            cursor.1 += 1;
            if cursor.1 == 1_000 {
                *cursor = (rng.random_range(0..200u64) * 1_000, 0, cursor.2 + 1);
            }
        }
    }
    let plain = measure::<u64>(5_000, None, &requests).0;
    let with = measure(
        5_000,
        Some(
            Prefetch::new()
                .sequential(|&k| Some(k + 1), 8)
                .in_flight(64),
        ),
        &requests,
    );
    row(
        "sequential: 16 clients reading files of 1,000 chunks (64,000 requests)",
        plain,
        with,
    );

    // Spatial: 32 players walking a 2,000 × 2,000 map for 2,000 steps each (keep going, turn
    // one step in five), asking for the tile under them; a cache of 20,000 tiles.
    let mut rng = SmallRng::seed_from_u64(2);
    let mut players: Vec<((i32, i32), (i32, i32))> = (0..32)
        .map(|_| {
            (
                (rng.random_range(0..2_000), rng.random_range(0..2_000)),
                (1, 0),
            )
        })
        .collect();
    let mut requests = Vec::new();
    for _ in 0..2_000 {
        for (at, heading) in &mut players {
            if rng.random_range(0..5) == 0 {
                *heading = [(1, 0), (-1, 0), (0, 1), (0, -1)][rng.random_range(0..4)];
            }
            at.0 = (at.0 + heading.0).rem_euclid(2_000);
            at.1 = (at.1 + heading.1).rem_euclid(2_000);
            requests.push(*at);
        }
    }
    let around = |&(x, y): &(i32, i32), out: &mut Vec<(i32, i32)>| {
        for dx in -1..=1 {
            for dy in -1..=1 {
                if (dx, dy) != (0, 0) {
                    out.push(((x + dx).rem_euclid(2_000), (y + dy).rem_euclid(2_000)));
                }
            }
        }
    };
    let plain = measure::<(i32, i32)>(20_000, None, &requests).0;
    let with = measure(
        20_000,
        Some(Prefetch::new().spatial(around).in_flight(64)),
        &requests,
    );
    row(
        "spatial: 32 players walking a 2,000² map (64,000 requests)",
        plain,
        with,
    );
}
