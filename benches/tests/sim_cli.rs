//! The simulator's command line: results as a table or exact CSV, and bad input answered with
//! a message naming the file and the line or offset, and exit code 2.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

/// A scratch file holding `bytes`, unique to this test process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stratacache-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn csv_output_is_exactly_the_documented_columns() {
    // 1 2 1 2 1: with two entries, LRU misses twice and then hits three times.
    let trace = scratch("small.trace", b"1\n2\n1\n2\n1\n");
    let out = sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--format",
        "lirs",
        "--policy",
        "lru,default",
        "--size",
        "2",
        "--csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "trace,size,policy,requests,hits,hit_ratio\n\
         small,2,lru,5,3,60.00\n\
         small,2,default,5,3,60.00\n"
    );
}

#[test]
fn bad_input_names_the_file_and_place_and_exits_2() {
    let bad_key = scratch("bad.trace", b"1\n2\nthree\n");
    let out = sim(&[
        "--trace",
        bad_key.to_str().unwrap(),
        "--format",
        "lirs",
        "--size",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message.contains("bad.trace") && message.contains("line 3"),
        "{message}"
    );

    let truncated = scratch("cut.bin", &[0u8; 30]);
    let out = sim(&[
        "--trace",
        truncated.to_str().unwrap(),
        "--format",
        "oracle-general",
        "--size",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("byte 24"), "{}", stderr(&out));

    let empty = scratch("empty.trace", b"\n*\n");
    let out = sim(&[
        "--trace",
        empty.to_str().unwrap(),
        "--format",
        "lirs",
        "--size",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no request"), "{}", stderr(&out));

    let out = sim(&[
        "--trace",
        empty.to_str().unwrap(),
        "--format",
        "parquet",
        "--size",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("parquet"), "{}", stderr(&out));

    let missing = "/nonexistent/stratacache.trace";
    let out = sim(&["--trace", missing, "--format", "lirs", "--size", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));
}

#[test]
fn markdown_and_plot_outputs() {
    let trace = scratch("tiny.trace", b"1\n2\n3\n1\n2\n3\n4\n1\n");
    let svg = std::env::temp_dir().join(format!("stratacache-sim-{}.svg", std::process::id()));
    let out = sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--format",
        "lirs",
        "--policy",
        "lru,default,belady",
        "--size",
        "2,3",
        "--markdown",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0],
        "| size | lru | default | belady | best of LRU and peers | default − best |"
    );
    // Three entries: 1 2 3 miss, 1 2 3 hit, then LRU evicts 1 for 4 and misses 1 again (3 hits
    // of 8), while Belady does not admit 4 (never used again) and hits 1 (4 of 8).
    let cells: Vec<&str> = rows[3].split('|').map(str::trim).collect();
    assert_eq!(
        (cells[1], cells[2], cells[4]),
        ("3", "37.50", "50.00"),
        "{}",
        rows[3]
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("belady"),
        "an SVG chart with a legend"
    );
}

#[test]
fn threads_replay_the_trace_concurrently_against_the_concurrent_caches() {
    // 200 keys read in order 20 times into a cache that holds them all. Split round-robin over
    // 4 threads, each key always lands on the same thread (200 is a multiple of 4), so exactly
    // the 200 first touches miss.
    let trace: String = (0..20)
        .flat_map(|_| 0..200)
        .map(|k| format!("{k}\n"))
        .collect();
    let trace = scratch("round.trace", trace.as_bytes());
    let out = sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--format",
        "lirs",
        "--policy",
        "default,quick_cache,lru",
        "--size",
        "400",
        "--threads",
        "4",
        "--csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = String::from_utf8(out.stdout).unwrap();
    for line in lines.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let hits: u64 = fields[4].parse().unwrap();
        assert_eq!(fields[3], "4000", "{line}");
        assert_eq!(hits, 3_800, "{line}");
    }
}

#[test]
fn a_capacity_beyond_the_memory_replays_instead_of_aborting() {
    // Every policy, at a capacity no machine could reserve up front: the cache never fills, so
    // each reads the trace's compulsory-miss figure (two of five requests miss).
    let trace = scratch("huge.trace", b"1\n2\n1\n2\n1\n");
    let out = sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--format",
        "lirs",
        "--policy",
        "all",
        "--size",
        "99999999999999",
        "--csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 17, "{stdout}");
    for row in rows {
        assert!(row.ends_with(",5,3,60.00"), "{row}");
    }
}
