//! How much of a memory budget holds entries: a `u64 → u64` cache of unbounded capacity with
//! `memory_budget(B)` and default settings otherwise (shards, L1), filled with 4 M distinct
//! keys read back zipf(0.99) so that L1 promotes. Prints a Markdown table: the budget, the
//! entries held in L2 and L1, the arena's bytes in use and reserved, and the insertions the
//! budget refused. (`benches/results.sh` puts it in `RESULTS.md`.)
//!
//! `cargo run --release -p stratacache-benches --bin budgets`

use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};

const KEYS: u64 = 4_000_000;

fn main() {
    println!(
        "| budget | entries | L1 capacity | promotions | in use | reserved | in use ÷ budget | bytes per entry | insertions refused |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for budget in [256usize << 10, 1 << 20, 4 << 20, 64 << 20] {
        let cache: stratacache::Cache<u64, u64> = stratacache::Cache::builder()
            .capacity(u64::MAX)
            .memory_budget(budget)
            .build()
            .expect("a valid budget");
        let mut refused = 0u64;
        for key in 0..KEYS {
            refused += u64::from(cache.insert(key, key).is_err());
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let zipf = Zipf::new(KEYS as f64, 0.99).expect("valid zipf parameters");
        for _ in 0..KEYS {
            let key = zipf.sample(&mut rng) as u64 - 1;
            if cache.get(&key).is_none() {
                refused += u64::from(cache.insert(key, key).is_err());
            }
        }
        cache.collect();
        let stats = cache.stats();
        let arena = stats.arena.expect("a budget makes an arena");
        let kib = |b: usize| format!("{:.0} KiB", b as f64 / 1024.0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} % | {:.1} | {refused} |",
            kib(budget),
            stats.entries,
            cache.l1_capacity(),
            stats.promotions,
            kib(arena.in_use),
            kib(arena.reserved),
            100.0 * arena.in_use as f64 / budget as f64,
            arena.in_use as f64 / stats.entries.max(1) as f64,
        );
    }
}
