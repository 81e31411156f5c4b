//! What a metrics name costs a lookup in wall-clock time: the same cache built twice, once
//! with a [`metrics_name`](stratacache::CacheBuilder::metrics_name) (one lookup in 1,024 per
//! thread timed into a histogram) and once without, read in interleaved rounds, L1 hits and L2
//! hits. Prints each round's ns per lookup and the medians' ratio; `hit_paths`'
//! `cache_l1_named` / `cache_l2_named` give the same comparison in instructions.
//!
//! `cargo run --release -p stratacache-benches --features metrics --example metrics_cost -- [ROUNDS]`

use std::hint::black_box;
use std::time::Instant;

const KEYS: u64 = 16_384;
const PASSES: usize = 200;

fn build(l1: usize, named: bool) -> stratacache::Cache<u64, u64, stratacache::hash::FixedState> {
    let builder = stratacache::Cache::builder()
        .capacity(KEYS * 4)
        .l1_entries(l1)
        .promote_after(if l1 > 7 { 1 } else { 255 })
        .hasher(stratacache::hash::FixedState::with_seed(1));
    let builder = if named {
        builder.metrics_name("metrics_cost")
    } else {
        builder
    };
    let cache = builder.build().expect("valid");
    for k in 0..KEYS {
        cache.insert(k, k).expect("room");
        cache.get(&k);
    }
    cache
}

/// Nanoseconds per lookup over `PASSES` passes of every key, through one frame per pass.
fn round(cache: &stratacache::Cache<u64, u64, stratacache::hash::FixedState>) -> f64 {
    let handle = cache.handle();
    let started = Instant::now();
    let mut found = 0u64;
    for _ in 0..PASSES {
        let frame = handle.frame();
        for k in 0..KEYS {
            found += u64::from(black_box(frame.get(&k)).is_some());
        }
    }
    assert_eq!(found, KEYS * PASSES as u64, "every key resident");
    started.elapsed().as_nanos() as f64 / (KEYS as f64 * PASSES as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(15, |r| r.parse().expect("rounds"));
    println!(
        "| path | unnamed ns/get | named ns/get | named ÷ unnamed | spread of unnamed rounds |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (path, l1) in [("L1 hit", KEYS as usize * 4), ("L2 hit", 7)] {
        let (plain, named) = (build(l1, false), build(l1, true));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(round(&plain));
            b.push(round(&named));
        }
        let (ma, mb) = (median(a.clone()), median(b));
        let spread = (a.iter().cloned().fold(f64::MIN, f64::max)
            - a.iter().cloned().fold(f64::MAX, f64::min))
            / ma;
        println!(
            "| {path} | {ma:.2} | {mb:.2} | {:.3} | ±{:.1} % |",
            mb / ma,
            spread * 50.0
        );
    }
}
