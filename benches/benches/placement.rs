//! What memory control and per-socket L1 cost the tiered cache, side by side in one run, on the
//! mixed workloads of the `cache` bench (read-heavy and churn, zipf 0.99):
//!
//! - `global`: the default cache (on one node: the global allocator);
//! - `arena`: the L2 shards in an [`Arena`] over the global allocator;
//! - `arena_budget`: the same with a byte budget ample for the workload (the budget's
//!   bookkeeping, never its refusals);
//! - `replicas_off_2_nodes` and `replicas_on_2_nodes`: a simulated two-node topology (this
//!   machine's CPUs split in halves, `sched_getcpu` telling a thread's node), L1 with one
//!   replica or one per node, the rest alike (an arena per node);
//! - `quick_cache`, as the anchor the `cache` bench compares with.
//!
//! On a machine of one node, replicas cost only their writes (an insertion or removal changes
//! both replicas) and a second copy of hot entries; their gain needs two sockets.
//!
//! `cargo bench -p stratacache-benches --bench placement` (`-- --quick` for a short run).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stratacache::Cache;
use stratacache::memory::Arena;
use stratacache_benches::mixed::{
    OPS_PER_THREAD, Op, Subject, WORKLOADS, thread_counts, time_windows, trace, warm,
};
use stratacache_platform::Topology;

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

/// This machine's CPUs split into two simulated nodes.
fn two_nodes() -> Topology {
    let cpus: Vec<u32> = Topology::from_sysfs()
        .map(|t| t.nodes().iter().flat_map(|n| n.cpus().to_vec()).collect())
        .unwrap_or_else(|_| vec![0, 1]);
    let half = cpus.len().div_ceil(2).max(1);
    let (first, second) = cpus.split_at(half.min(cpus.len()));
    let second = if second.is_empty() { first } else { second };
    Topology::from_nodes([(0, first.to_vec()), (1, second.to_vec())]).expect("two nodes")
}

fn subjects(capacity: u64) -> Vec<(&'static str, Box<dyn Subject>)> {
    let build = |builder: stratacache::CacheBuilder<u64, u64>| -> Box<dyn Subject> {
        Box::new(builder.capacity(capacity).build().expect("valid settings"))
    };
    vec![
        ("global", build(Cache::builder())),
        (
            "arena",
            build(Cache::builder().memory(Arc::new(Arena::new()))),
        ),
        (
            "arena_budget",
            // About 70 bytes an entry with the index's room: four times that is ample.
            build(Cache::builder().memory_budget(capacity as usize * 280)),
        ),
        (
            "replicas_off_2_nodes",
            build(Cache::builder().topology(two_nodes()).per_socket_l1(false)),
        ),
        (
            "replicas_on_2_nodes",
            build(Cache::builder().topology(two_nodes()).per_socket_l1(true)),
        ),
        (
            "quick_cache",
            Box::new(stratacache_benches::peers::quick_cache(capacity)),
        ),
    ]
}

fn placement(c: &mut Criterion) {
    for workload in WORKLOADS.into_iter().filter(|w| w.name != "write_heavy") {
        let exponent = 0.99;
        let subjects = subjects(workload.capacity);
        let fill = workload.fill();
        if !fill.is_empty() {
            for (_, subject) in &subjects {
                subject.replay(&fill);
            }
        }
        for threads in thread_counts() {
            let traces: Vec<Vec<Op>> = (0..threads as u64)
                .map(|t| trace(0xC0FFEE + t, exponent, workload))
                .collect();
            let group_name = format!("{}_zipf{exponent}/threads{threads}", workload.name);
            let mut group = c.benchmark_group(format!("placement_{group_name}"));
            group.throughput(Throughput::Elements((threads * OPS_PER_THREAD) as u64));
            for (name, subject) in &subjects {
                warm(subject.as_ref(), &traces);
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    time_windows(b, subject.as_ref(), &traces)
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = placement
}
criterion_main!(benches);
