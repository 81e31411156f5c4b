//! Tail latency of `get` under a full-speed writer, as a bench so that `cargo bench -p
//! stratacache-benches` runs every comparison (see `stratacache_benches::tail`; the
//! `tail_latency` bin takes flags). Two seconds per cache, half a second with `--quick`;
//! `--pin` pins the writer and readers to CPUs of their own; a non-flag argument keeps only
//! the caches whose name contains it.
//!
//! `cargo bench -p stratacache-benches --bench tail_latency`

use stratacache_benches::tail::{self, TailSetup};

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = TailSetup {
        seconds: if args.iter().any(|a| a == "--quick") {
            0.5
        } else {
            2.0
        },
        only: args.iter().find(|a| !a.starts_with('-')).cloned(),
        pin: args.iter().any(|a| a == "--pin"),
        ..TailSetup::default()
    };
    if let Err(problem) = tail::run(&setup) {
        eprintln!("tail_latency: {problem}");
        std::process::exit(2);
    }
}
