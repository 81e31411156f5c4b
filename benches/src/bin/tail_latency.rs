//! Tail latency of `get` under a full-speed writer, stratacache side by side with the peers
//! (see `stratacache_benches::tail`). The `tail_latency` bench runs the same measurement.
//!
//! `cargo run --release -p stratacache-benches --bin tail_latency [-- --seconds 2]`

use clap::Parser;
use stratacache_benches::tail::{self, TailSetup};

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

/// Tail latency of `get` while one thread inserts at full speed.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Reader threads (default: every CPU but one, at least one).
    #[arg(long)]
    readers: Option<usize>,
    /// Capacity in entries (filled before the readers start).
    #[arg(long, default_value_t = 100_000)]
    capacity: u64,
    /// Seconds each cache is measured.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Only the caches whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Pin the writer and each reader to a CPU of its own (modulo the CPUs).
    #[arg(long)]
    pin: bool,
}

fn main() {
    let args = Args::parse();
    let setup = TailSetup {
        readers: args.readers,
        capacity: args.capacity,
        seconds: args.seconds,
        only: args.only,
        pin: args.pin,
    };
    if let Err(problem) = tail::run(&setup) {
        eprintln!("tail_latency: {problem}");
        std::process::exit(2);
    }
}
