//! The `results` binary: criterion's saved estimates become RESULTS.md's tables, the targets
//! are judged from them, and a folder without estimates is a clear error (exit code 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn results(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_results"))
        .args(args)
        .output()
        .expect("the results binary runs")
}

/// Writes one benchmark as criterion saves it: `group/function/baseline/{benchmark,estimates}.json`.
fn bench(root: &Path, group: &str, function: &str, baseline: &str, median_ns: f64, elements: u64) {
    let dir = root
        .join(group.replace('/', "_"))
        .join(function)
        .join(baseline);
    std::fs::create_dir_all(&dir).unwrap();
    let benchmark = format!(
        r#"{{"group_id":"{group}","function_id":null,"value_str":"{function}","throughput":{{"Elements":{elements}}}}}"#
    );
    std::fs::write(dir.join("benchmark.json"), benchmark).unwrap();
    let estimates = format!(
        r#"{{"mean":{{"point_estimate":{median_ns}}},"median":{{"point_estimate":{median_ns}}}}}"#
    );
    std::fs::write(dir.join("estimates.json"), estimates).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("stratacache-results-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn mixed_workloads_become_throughput_tables_with_ratios_and_targets() {
    let root = scratch("mixed");
    // 200 000 operations: 10 ms is 20 M ops/s, 40 ms 5 M ops/s, 200 ms 1 M ops/s.
    for (threads, scale) in [(1, 2.0), (2, 1.0)] {
        let group = format!("read_heavy_zipf0.99/threads{threads}");
        bench(
            &root,
            &group,
            "stratacache",
            "system",
            10e6 * scale,
            200_000,
        );
        bench(
            &root,
            &group,
            "quick_cache",
            "system",
            40e6 * scale,
            200_000,
        );
        bench(&root, &group, "moka", "system", 200e6 * scale, 200_000);
        bench(
            &root,
            &group,
            "stratacache",
            "mimalloc",
            20e6 * scale,
            200_000,
        );
    }
    // The latency group: 1 024 gets per iteration.
    bench(&root, "l1_get_hit/u64", "hashbrown", "system", 2048.0, 1024);
    bench(
        &root,
        "l1_get_hit/u64",
        "stratacache_l1_guard_per_batch",
        "system",
        4096.0,
        1024,
    );
    bench(
        &root,
        "l1_get_hit/u64",
        "quick_cache",
        "system",
        10240.0,
        1024,
    );

    let criterion = root.to_str().unwrap();
    let out = results(&[
        "--criterion",
        criterion,
        "--baseline",
        "system",
        "--baseline",
        "mimalloc",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains("### read_heavy_zipf0.99"), "{page}");
    // Columns: 1 thread system, 1 thread mimalloc, 2 threads system, 2 threads mimalloc, then
    // the ratios at two threads.
    assert!(
        page.contains("| stratacache | 10.00 | 5.00 | 20.00 | 10.00 | 4.00 | 20.00 |"),
        "{page}"
    );
    assert!(
        page.contains("| quick_cache | 2.50 |  | 5.00 |  | 1.00 | 5.00 |"),
        "{page}"
    );
    assert!(
        page.contains("| stratacache_l1_guard_per_batch | system | 4.00 |"),
        "{page}"
    );

    let out = results(&[
        "--criterion",
        criterion,
        "--baseline",
        "system",
        "--targets",
    ]);
    assert!(out.status.success());
    let targets = String::from_utf8(out.stdout).unwrap();
    assert!(
        targets.contains("= 2.00× | yes |"),
        "L1 at 2× the floor: {targets}"
    );
    // Issue 15's cells, at one and at two threads.
    assert!(
        targets.contains(
            "| read-heavy zipf 0.99, 1 thread, plain calls | ≥ 1.0× quick_cache | 10.00 M ops/s: 4.00× quick_cache (2.50) | yes |"
        ),
        "{targets}"
    );
    assert!(
        targets.contains(
            "| read-heavy zipf 0.99, 2 threads, plain calls | ≥ 1.0× quick_cache | 20.00 M ops/s: 4.00× quick_cache (5.00) | yes |"
        ),
        "{targets}"
    );
}

#[test]
fn a_folder_without_estimates_is_an_error() {
    let root = scratch("empty");
    let out = results(&["--criterion", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("no estimates"), "{message}");
    let out = results(&["--criterion", "/nonexistent/criterion"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_ratios_output_becomes_a_scaling_table_per_workload() {
    let dir = scratch("scaling");
    let file = dir.join("scaling-4cpu.txt");
    std::fs::write(
        &file,
        "machine: a test\n\
         read_heavy zipf0.99 t1  stratacache:   100.0 ns/op (per thread)   10.00 M ops/s  ×0.50 quick_cache  hit 78.03 %\n\
         read_heavy zipf0.99 t1  quick_cache:    50.0 ns/op (per thread)   20.00 M ops/s  ×1.00 quick_cache  hit 78.03 %\n\
         read_heavy zipf0.99 t4  stratacache:   100.0 ns/op (per thread)   40.00 M ops/s  ×0.80 quick_cache  hit 78.03 %\n\
         read_heavy zipf0.99 t4  quick_cache:    80.0 ns/op (per thread)   50.00 M ops/s  ×1.00 quick_cache  hit 78.03 %\n",
    )
    .unwrap();
    let out = results(&["--scaling", file.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("### read_heavy_zipf0.99"), "{text}");
    assert!(
        text.contains("| 1 thr | 4 thr | × quick_cache at 4 |"),
        "{text}"
    );
    assert!(
        text.contains("| stratacache | 10.00 | 40.00 | 0.80 |"),
        "{text}"
    );
    assert!(
        text.contains("| quick_cache | 20.00 | 50.00 | 1.00 |"),
        "{text}"
    );
}
