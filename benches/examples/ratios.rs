//! The `cache` bench's read-heavy and churn workloads, stratacache (plain calls and frames)
//! against quick_cache in interleaved rounds, printing median ns per operation and the speed
//! ratio: a quick check between full `results.sh` runs (the figures of record come from the
//! `cache` bench). `RATIO_SUBJECTS=moka,scc` adds peers; `RATIO_ROUNDS` (default 15).
//!
//! `cargo run --release -p stratacache-benches --example ratios [-- read_heavy|churn] [threads…]`

use stratacache_benches::mixed::{
    OPS_PER_THREAD, Op, StratacacheFrames, Subject, TRACE_PER_THREAD, WORKLOADS, run, trace, warm,
};
use stratacache_benches::peers;

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| a.parse::<usize>().is_err());
    let mut threads: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    let rounds: usize = std::env::var("RATIO_ROUNDS").map_or(15, |r| r.parse().expect("rounds"));
    let extra = std::env::var("RATIO_SUBJECTS").unwrap_or_default();
    for workload in WORKLOADS.into_iter().filter(|w| w.name != "write_heavy") {
        if filter.is_some_and(|f| !workload.name.contains(f.as_str())) {
            continue;
        }
        let exponents: &[f64] = if workload.name == "churn" {
            &[0.8, 0.99]
        } else {
            &[0.99]
        };
        for &exponent in exponents {
            for &n in &threads {
                let cap = workload.capacity;
                let mut subjects: Vec<(&str, Box<dyn Subject>)> = vec![
                    ("stratacache", Box::new(peers::stratacache(cap))),
                    (
                        "frames",
                        Box::new(StratacacheFrames(peers::stratacache(cap))),
                    ),
                    ("quick_cache", Box::new(peers::quick_cache(cap))),
                ];
                for name in extra.split(',').filter(|s| !s.is_empty()) {
                    let subject: Box<dyn Subject> = match name {
                        "moka" => Box::new(peers::moka(cap)),
                        "scc" => Box::new(peers::scc(cap)),
                        "mini_moka" => Box::new(peers::mini_moka(cap)),
                        other => panic!("unknown subject {other}"),
                    };
                    subjects.push((name.to_string().leak(), subject));
                }
                let traces: Vec<Vec<Op>> = (0..n as u64)
                    .map(|t| trace(0xC0FFEE + t, exponent, workload))
                    .collect();
                let fill = workload.fill();
                let mut hits = Vec::new();
                for (_, s) in &subjects {
                    s.replay(&fill);
                    warm(s.as_ref(), &traces);
                    let half = TRACE_PER_THREAD / 2;
                    hits.push(run(s.as_ref(), &traces, half..half + OPS_PER_THREAD).1);
                }
                let mut times = vec![Vec::new(); subjects.len()];
                let half = TRACE_PER_THREAD / 2;
                for round in 0..rounds {
                    let start = half + (round * OPS_PER_THREAD) % (TRACE_PER_THREAD - half);
                    for (i, (_, s)) in subjects.iter().enumerate() {
                        let (t, _) = run(s.as_ref(), &traces, start..start + OPS_PER_THREAD);
                        times[i].push(t.as_nanos() as f64 / OPS_PER_THREAD as f64);
                    }
                }
                let median = |v: &mut Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                let medians: Vec<f64> = times.iter_mut().map(median).collect();
                let qc = medians[2];
                for (i, (name, _)) in subjects.iter().enumerate() {
                    println!(
                        "{:>10} zipf{exponent} t{n} {name:>12}: {:7.1} ns/op (per thread) \
                         {:7.2} M ops/s  ×{:.2} quick_cache  hit {:.2} %",
                        workload.name,
                        medians[i],
                        n as f64 * 1e3 / medians[i],
                        qc / medians[i],
                        100.0 * hits[i] as f64 / (n * OPS_PER_THREAD) as f64
                    );
                }
            }
        }
    }
}
