//! The trace simulator: hit ratios of stratacache's policies, the real `Cache`, and peer caches
//! on a cache trace, at several sizes.
//!
//! ```sh
//! cargo run --release -p stratacache-benches --bin sim -- \
//!     --trace ../shared/traces/arc/OLTP.lis.zst --format arc \
//!     --policy lru,default,moka,quick_cache --size 1000,2000,5000
//! ```
//!
//! Sizes count entries, or bytes with `--weighted` (suffixes `KiB`, `MiB`, `GiB` allowed).
//! Errors (an unknown format or policy, an unreadable or malformed trace) are reported with
//! the file and the line or byte offset, and the exit code is 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use stratacache_benches::sim::{self, Setup, Subject};
use stratacache_benches::trace::{self, Format};

/// Replays a cache trace through policies and caches and prints their hit ratios.
#[derive(Parser, Debug)]
#[command(name = "sim")]
struct Args {
    /// The trace file (`.gz`, `.xz` and `.zst` are decompressed).
    #[arg(long)]
    trace: PathBuf,
    /// lirs, arc, be32, be64, oracle-general or csv.
    #[arg(long)]
    format: Format,
    /// Comma-separated: lru, clock, sieve, s3fifo, probation_clock, default, moka,
    /// quick_cache, mini_moka, belady; or `all`.
    #[arg(long, value_delimiter = ',', default_value = "lru,default", value_parser = parse_subject)]
    policy: Vec<Vec<Subject>>,
    /// Comma-separated capacities (entries, or bytes with `--weighted`).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, required = true)]
    size: Vec<u64>,
    /// Weigh each object by its size (traces with sizes: oracle-general, csv).
    #[arg(long)]
    weighted: bool,
    /// Print `trace,size,policy,requests,hits,hit_ratio` lines instead of a table.
    #[arg(long)]
    csv: bool,
    /// Replay concurrent caches on this many threads, the trace split round-robin.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// L2 shards of the `default` cache (default: four per CPU).
    #[arg(long)]
    shards: Option<usize>,
}

/// A policy name, or `all`.
fn parse_subject(s: &str) -> Result<Vec<Subject>, String> {
    if s == "all" {
        Ok(Subject::ALL.to_vec())
    } else {
        s.parse().map(|subject| vec![subject])
    }
}

/// A capacity: a number, optionally with a binary unit.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("size `{s}` is not a number"))?;
    let scale = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` in size `{s}`")),
    };
    match n.checked_mul(scale) {
        Some(0) | None => Err(format!("size `{s}` must be positive and fit in 64 bits")),
        Some(size) => Ok(size),
    }
}

/// The trace's name in results: its file name up to the first dot.
fn trace_name(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    name.split('.').next().unwrap_or(&name).to_string()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let requests = match trace::read(&args.trace, args.format) {
        Ok(requests) => requests,
        Err(error) => {
            eprintln!("sim: {error}");
            return ExitCode::from(2);
        }
    };
    let name = trace_name(&args.trace);
    if args.csv {
        println!("trace,size,policy,requests,hits,hit_ratio");
    } else {
        println!(
            "{:<16} {:>14} {:<12} {:>10} {:>10} {:>8}",
            "trace", "size", "policy", "requests", "hits", "hit %"
        );
    }
    let setup = Setup {
        weighted: args.weighted,
        threads: args.threads,
        shards: args.shards,
    };
    let subjects: Vec<Subject> = args.policy.iter().flatten().copied().collect();
    for &size in &args.size {
        for &subject in &subjects {
            let outcome = sim::simulate(subject, &requests, size, setup);
            if args.csv {
                println!(
                    "{name},{size},{},{},{},{:.2}",
                    subject.name(),
                    outcome.requests,
                    outcome.hits,
                    outcome.hit_percent()
                );
            } else {
                println!(
                    "{name:<16} {size:>14} {:<12} {:>10} {:>10} {:>8.2}",
                    subject.name(),
                    outcome.requests,
                    outcome.hits,
                    outcome.hit_percent()
                );
            }
        }
    }
    ExitCode::SUCCESS
}
