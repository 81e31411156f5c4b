//! Single-thread cost of each path, stratacache beside quick_cache, on 100k-entry caches:
//! inserting new keys into a full cache (every insert evicts), and gets that hit (uniform
//! over the resident keys, so L1 holds few of them) and that miss.
//!
//! `cargo run --release -p stratacache-benches --example path_costs`

use std::time::Instant;

const CAP: u64 = 100_000;
const N: u64 = 2_000_000;

fn spread(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn time(label: &str, n: u64, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    println!(
        "{label:>40}: {:6.1} ns/op",
        start.elapsed().as_nanos() as f64 / n as f64
    );
}

fn main() {
    let strata: stratacache::Cache<u64, u64> =
        stratacache::Cache::builder().capacity(CAP).build().unwrap();
    let quick = quick_cache::sync::Cache::<u64, u64>::new(CAP as usize);
    let h = strata.handle();
    for i in 0..CAP {
        let _ = h.insert(spread(i), i);
        quick.insert(spread(i), i);
    }
    time("stratacache insert new (evicting)", N, || {
        for i in CAP..CAP + N {
            let _ = h.insert(spread(i), i);
        }
    });
    time("quick_cache insert new (evicting)", N, || {
        for i in CAP..CAP + N {
            quick.insert(spread(i), i);
        }
    });
    let resident: Vec<u64> = (CAP + N - CAP / 2..CAP + N).map(spread).collect();
    let mut order: Vec<u64> = (0..N)
        .map(|i| resident[(spread(i) >> 40) as usize % resident.len()])
        .collect();
    order.truncate(N as usize);
    let mut hits = 0u64;
    let before = strata.stats();
    time("stratacache get hit (uniform, mostly L2)", N, || {
        for k in &order {
            hits += h.get(k).is_some() as u64;
        }
    });
    let after = strata.stats();
    println!(
        "{:>40}  L1 hits {}, L2 hits {}, promotions {}",
        "",
        after.l1_hits - before.l1_hits,
        after.l2_hits - before.l2_hits,
        after.promotions - before.promotions
    );
    time("quick_cache get hit (uniform)", N, || {
        for k in &order {
            hits += quick.get(k).is_some() as u64;
        }
    });
    time("stratacache get miss", N, || {
        for i in 0..N {
            hits += h.get(&spread(u64::MAX - i)).is_some() as u64;
        }
    });
    time("quick_cache get miss", N, || {
        for i in 0..N {
            hits += quick.get(&spread(u64::MAX - i)).is_some() as u64;
        }
    });
    println!("(hits {hits})");
}
