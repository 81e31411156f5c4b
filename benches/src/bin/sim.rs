//! The trace simulator: hit ratios of stratacache's policies, the real `Cache`, and peer caches
//! on a cache trace, at several sizes.
//!
//! ```sh
//! cargo run --release -p stratacache-benches --bin sim -- \
//!     --trace "$STRATACACHE_TRACES/arc/OLTP.lis.zst" --format arc \
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
    /// Comma-separated: lru, clock, sieve, s3fifo, wtinylfu, arc, lfu, predictive, probation_clock, default, moka,
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
    #[arg(long, conflicts_with = "markdown")]
    csv: bool,
    /// Print a Markdown table instead: a row per size, a column per policy, and, when the
    /// peers were run, the best of LRU and the peers and `default`'s margin over it.
    #[arg(long)]
    markdown: bool,
    /// Replay concurrent caches on this many threads, the trace split round-robin.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// L2 shards of the `default` cache (default: the cache's own, four per CPU but at most one
    /// per 256 entries).
    #[arg(long)]
    shards: Option<usize>,
    /// Also write a hit-ratio-against-size chart (SVG), one line per policy.
    #[arg(long)]
    plot: Option<PathBuf>,
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
    } else if args.markdown {
        // Printed at the end, from the results.
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
    // A progress bar on stderr, drawn only once the run has taken more than a second.
    let progress = indicatif::ProgressBar::with_draw_target(
        Some((args.size.len() * subjects.len()) as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    let started = std::time::Instant::now();
    let mut results: Vec<(Subject, u64, f64)> = Vec::new();
    for &size in &args.size {
        for &subject in &subjects {
            progress.set_message(format!("{} at {size}", subject.name()));
            let outcome = sim::simulate(subject, &requests, size, setup);
            progress.inc(1);
            if progress.is_hidden() && started.elapsed().as_secs() >= 1 {
                progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            results.push((subject, size, outcome.hit_percent()));
            if args.markdown {
                // Printed at the end, from the results.
            } else if args.csv {
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
    progress.finish_and_clear();
    if args.markdown {
        print!(
            "{}",
            markdown(&args.size, &subjects, &results, args.weighted)
        );
    }
    if let Some(out) = &args.plot
        && let Err(error) = plot(out, &name, &subjects, &results, args.weighted)
    {
        eprintln!("sim: {}: {error}", out.display());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// A Markdown table of `results`: a row per size, a column per subject; with `default` and at
/// least one of LRU and the peers, the best of those and `default`'s margin over it.
fn markdown(
    sizes: &[u64],
    subjects: &[Subject],
    results: &[(Subject, u64, f64)],
    weighted: bool,
) -> String {
    use std::fmt::Write;
    let peers = [
        Subject::Lru,
        Subject::Moka,
        Subject::QuickCache,
        Subject::MiniMoka,
    ];
    let compare =
        subjects.contains(&Subject::Default) && subjects.iter().any(|s| peers.contains(s));
    let mut out = String::from("| size |");
    for subject in subjects {
        let _ = write!(out, " {} |", subject.name());
    }
    if compare {
        out.push_str(" best of LRU and peers | default − best |");
    }
    out.push_str("\n|---:|");
    for _ in subjects {
        out.push_str("---:|");
    }
    if compare {
        out.push_str("---:|---:|");
    }
    out.push('\n');
    for &size in sizes {
        let label = if weighted && size % (1 << 20) == 0 {
            format!("{} MiB", size >> 20)
        } else {
            size.to_string()
        };
        let _ = write!(out, "| {label} |");
        let at = |subject: Subject| {
            results
                .iter()
                .find(|r| r.0 == subject && r.1 == size)
                .map(|r| r.2)
        };
        for &subject in subjects {
            let _ = write!(out, " {:.2} |", at(subject).unwrap_or(f64::NAN));
        }
        if compare {
            let best = peers.iter().filter_map(|&p| at(p)).fold(f64::MIN, f64::max);
            let default = at(Subject::Default).unwrap_or(f64::NAN);
            let _ = write!(out, " {best:.2} | {:+.2} |", default - best);
        }
        out.push('\n');
    }
    out
}

/// Writes the hit-ratio-against-size chart: one line per policy, sizes on a log axis.
fn plot(
    out: &std::path::Path,
    trace: &str,
    subjects: &[Subject],
    results: &[(Subject, u64, f64)],
    weighted: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let sizes = results.iter().map(|r| r.1);
    let (lo, hi) = (sizes.clone().min().unwrap_or(1), sizes.max().unwrap_or(1));
    let top = results.iter().map(|r| r.2).fold(0.0f64, f64::max);
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{trace}: hit ratio by cache size"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (lo as f64 * 0.9..hi as f64 * 1.1).log_scale(),
            0.0..(top * 1.1 + 1.0).min(100.0),
        )?;
    chart
        .configure_mesh()
        .x_desc(if weighted {
            "capacity (bytes)"
        } else {
            "capacity (entries)"
        })
        .y_desc("hit %")
        .draw()?;
    for (i, subject) in subjects.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = results
            .iter()
            .filter(|r| r.0 == *subject)
            .map(|r| (r.1 as f64, r.2))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(subject.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
