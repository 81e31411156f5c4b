//! Turns criterion's saved estimates into the tables of `benches/RESULTS.md` and the charts
//! beside it.
//!
//! Reads every `benchmark.json` / `estimates.json` pair under the criterion folder (default
//! `target/criterion`), for the baselines named (default `new`). Mixed-workload groups
//! (`{workload}_zipf{e}/threads{n}`) become one table per workload and exponent, millions of
//! operations per second by thread count and baseline, with the ratios to quick_cache and moka
//! at the most threads, and one SVG chart of throughput against threads (plotters). Every
//! other group becomes a table of nanoseconds per element.
//!
//! `cargo run --release -p stratacache-benches --bin results -- [--criterion DIR]
//! [--baseline NAME]... [--charts DIR]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;

/// Markdown tables and SVG charts from criterion's saved estimates.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Criterion's output folder.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// Baselines to report side by side (criterion's `--save-baseline` names; `new` is the
    /// latest run).
    #[arg(long = "baseline", default_values_t = ["new".to_string()])]
    baselines: Vec<String>,
    /// Where the throughput charts go (none when not given).
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Print only the table of the throughput and latency targets.
    #[arg(long)]
    targets: bool,
    /// Instead of criterion's estimates: the output of the `ratios` example over several
    /// thread counts (`benches/scaling.sh`), as a table per workload and a chart in `--charts`.
    #[arg(long)]
    scaling: Option<PathBuf>,
}

/// One benchmark's median, per element.
#[derive(Debug, Clone)]
struct Estimate {
    group: String,
    function: String,
    baseline: String,
    /// Median nanoseconds per iteration.
    nanos: f64,
    /// Elements per iteration (1 when the bench declared no throughput).
    elements: f64,
}

impl Estimate {
    fn ops_per_second(&self) -> f64 {
        self.elements * 1e9 / self.nanos
    }

    fn nanos_per_element(&self) -> f64 {
        self.nanos / self.elements
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every estimate under `dir` for `baselines`.
fn collect(dir: &Path, baselines: &[String], out: &mut Vec<Estimate>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(baseline) = baselines.iter().find(|b| **b == name) {
            let bench = path.join("benchmark.json");
            let estimates = path.join("estimates.json");
            if bench.is_file() && estimates.is_file() {
                let bench = read_json(&bench)?;
                let estimates = read_json(&estimates)?;
                let nanos = estimates["median"]["point_estimate"]
                    .as_f64()
                    .ok_or_else(|| format!("{}: no median", path.display()))?;
                let elements = bench["throughput"]["Elements"].as_f64().unwrap_or(1.0);
                out.push(Estimate {
                    group: bench["group_id"].as_str().unwrap_or_default().to_string(),
                    // `BenchmarkId::from_parameter` leaves the function empty.
                    function: bench["function_id"]
                        .as_str()
                        .or(bench["value_str"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    baseline: baseline.clone(),
                    nanos,
                    elements,
                });
            }
        } else if name != "report" {
            collect(&path, baselines, out)?;
        }
    }
    Ok(())
}

/// One workload's figures: subject → (threads, baseline) → M ops/s.
type Subjects = BTreeMap<String, BTreeMap<(usize, String), f64>>;

/// `read_heavy_zipf0.99/threads2` → (`read_heavy_zipf0.99`, 2).
fn mixed_group(group: &str) -> Option<(&str, usize)> {
    let (workload, threads) = group.rsplit_once("/threads")?;
    Some((workload, threads.parse().ok()?))
}

/// Subjects in a fixed order: ours first, then the peers, then the references.
fn order(name: &str) -> usize {
    const ORDER: [&str; 11] = [
        "stratacache",
        "stratacache_handles",
        "stratacache_frames",
        "quick_cache",
        "moka",
        "mini_moka",
        "scc_hashcache",
        "foyer",
        "dashmap",
        "papaya",
        "hashbrown",
    ];
    ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len())
}

/// Writes `dir/{stem}.svg`, `workload`'s throughput against threads, and prints its link.
fn threads_chart(
    dir: &Path,
    stem: &str,
    workload: &str,
    lines: &BTreeMap<String, Vec<(usize, f64)>>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("{stem}.svg"));
    chart(
        &file,
        &format!("{workload}: throughput against threads"),
        lines,
    )?;
    println!("![{workload}]({})", file.display());
    println!();
    Ok(())
}

fn chart(
    path: &Path,
    title: &str,
    lines: &BTreeMap<String, Vec<(usize, f64)>>,
) -> Result<(), String> {
    let max_threads = lines.values().flatten().map(|p| p.0).max().unwrap_or(1);
    let max_ops = lines.values().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..max_threads.max(2), 0.0..max_ops.max(1.0))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("M ops/s")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The targets that criterion measures, against the first baseline: L1's (issue 5) and the
/// tiered cache's (issue 15).
fn targets(estimates: &[Estimate], baseline: &str) {
    let find = |group: &str, function: &str| {
        estimates
            .iter()
            .find(|e| e.group == group && e.function == function && e.baseline == baseline)
    };
    println!("| target | asked | measured | met |");
    println!("|---|---|---|---|");
    let l1 = |f: &str| find("l1_get_hit/u64", f).map(Estimate::nanos_per_element);
    if let (Some(ours), Some(floor)) = (l1("stratacache_l1_guard_per_batch"), l1("hashbrown")) {
        let ratio = ours / floor;
        println!(
            "| L1 get hit vs the hashbrown floor (u64) | ≤ 2.5× | {ours:.2} ns vs {floor:.2} ns = {ratio:.2}× | {} |",
            if ratio <= 2.5 { "yes" } else { "no" }
        );
        let peers = [
            "quick_cache",
            "moka",
            "mini_moka",
            "scc_hashcache",
            "foyer",
            "dashmap",
            "papaya_guard_per_batch",
            "papaya_pin_per_get",
        ];
        if let Some((peer, best)) = peers
            .iter()
            .filter_map(|p| l1(p).map(|v| (*p, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        {
            println!(
                "| L1 get hit vs the fastest concurrent peer | faster | {ours:.2} ns vs {peer} {best:.2} ns | {} |",
                if ours < best { "yes" } else { "no" }
            );
        }
    }
    // Issue 15's "must reach" cells that criterion measures: against quick_cache at one and
    // two threads (the tail, memory and instruction cells are in their own sections and in
    // results/NOTES.md).
    let ops = |group: String, f: &str| find(&group, f).map(|e| e.ops_per_second() / 1e6);
    for threads in [1, 2] {
        let plural = if threads == 1 { "" } else { "s" };
        let mut rows = vec![
            ("read_heavy", "0.99", "stratacache", "plain calls", 1.0),
            ("read_heavy", "0.99", "stratacache_frames", "frames", 1.5),
        ];
        for exponent in ["0.8", "0.99"] {
            rows.push(("churn", exponent, "stratacache", "plain calls", 1.0));
        }
        for (workload, exponent, ours, label, asked) in rows {
            let group = format!("{workload}_zipf{exponent}/threads{threads}");
            if let (Some(s), Some(q)) = (ops(group.clone(), ours), ops(group, "quick_cache")) {
                let name = workload.replace('_', "-");
                println!(
                    "| {name} zipf {exponent}, {threads} thread{plural}, {label} | ≥ {asked:.1}× quick_cache | {s:.2} M ops/s: {:.2}× quick_cache ({q:.2}) | {} |",
                    s / q,
                    if s >= asked * q { "yes" } else { "no" }
                );
            }
        }
    }
}

/// Tables and charts of the `ratios` example's output: lines of the form `{workload}
/// zipf{e} t{threads} {subject}: … {M} M ops/s …`.
fn scaling(file: &Path, charts: Option<&Path>) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // workload → subject → threads → M ops/s
    let mut workloads: BTreeMap<String, BTreeMap<String, BTreeMap<usize, f64>>> = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(ops) = words.iter().position(|w| *w == "M").and_then(|at| {
            (words.get(at + 1) == Some(&"ops/s")).then(|| words[at - 1].parse::<f64>().ok())?
        }) else {
            continue;
        };
        let (Some(name), Some(threads), Some(subject)) = (
            words
                .first()
                .zip(words.get(1))
                .map(|(w, e)| format!("{w}_{e}")),
            words
                .get(2)
                .and_then(|t| t.strip_prefix('t')?.parse::<usize>().ok()),
            words.get(3).map(|s| s.trim_end_matches(':').to_string()),
        ) else {
            continue;
        };
        workloads
            .entry(name)
            .or_default()
            .entry(subject)
            .or_default()
            .insert(threads, ops);
    }
    for (workload, subjects) in &workloads {
        let threads: Vec<usize> = {
            let mut t: Vec<usize> = subjects.values().flat_map(|m| m.keys().copied()).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let most = threads.last().copied().unwrap_or(1);
        println!("### {workload}");
        println!();
        let header: Vec<String> = threads.iter().map(|t| format!("{t} thr")).collect();
        println!(
            "| cache (M ops/s) | {} | × quick_cache at {most} |",
            header.join(" | ")
        );
        println!("|---|{}---:|", "---:|".repeat(threads.len()));
        let qc = subjects
            .get("quick_cache")
            .and_then(|m| m.get(&most))
            .copied();
        for (name, row) in subjects {
            let cells: Vec<String> = threads
                .iter()
                .map(|t| row.get(t).map_or(String::new(), |v| format!("{v:.2}")))
                .collect();
            let ratio = match (row.get(&most), qc) {
                (Some(v), Some(q)) if q > 0.0 => format!("{:.2}", v / q),
                _ => String::new(),
            };
            println!("| {name} | {} | {ratio} |", cells.join(" | "));
        }
        println!();
        if let Some(dir) = charts {
            let lines = subjects
                .iter()
                .map(|(name, row)| (name.clone(), row.iter().map(|(t, v)| (*t, *v)).collect()))
                .collect();
            threads_chart(dir, &format!("scaling_{workload}"), workload, &lines)?;
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    if let Some(file) = &args.scaling {
        return scaling(file, args.charts.as_deref());
    }
    let mut estimates = Vec::new();
    collect(&args.criterion, &args.baselines, &mut estimates)?;
    if estimates.is_empty() {
        return Err(format!(
            "no estimates for baseline(s) {:?} under {}",
            args.baselines,
            args.criterion.display()
        ));
    }
    if args.targets {
        targets(&estimates, &args.baselines[0]);
        return Ok(());
    }
    // Mixed workloads: workload → subject → (threads, baseline) → M ops/s.
    let mut mixed: BTreeMap<String, Subjects> = BTreeMap::new();
    let mut other: BTreeMap<String, Vec<Estimate>> = BTreeMap::new();
    for e in &estimates {
        match mixed_group(&e.group) {
            Some((workload, threads)) => {
                mixed
                    .entry(workload.to_string())
                    .or_default()
                    .entry(e.function.clone())
                    .or_default()
                    .insert((threads, e.baseline.clone()), e.ops_per_second() / 1e6);
            }
            None => other.entry(e.group.clone()).or_default().push(e.clone()),
        }
    }
    for (workload, subjects) in &mixed {
        let mut columns: Vec<(usize, String)> =
            subjects.values().flat_map(|m| m.keys().cloned()).collect();
        columns.sort_by_key(|(t, b)| (*t, args.baselines.iter().position(|x| x == b)));
        columns.dedup();
        let most = columns.iter().map(|c| c.0).max().unwrap_or(1);
        let first = args.baselines[0].clone();
        println!("### {workload}");
        println!();
        let header: Vec<String> = columns
            .iter()
            .map(|(t, b)| {
                if args.baselines.len() > 1 {
                    format!("{t} thr, {b}")
                } else {
                    format!("{t} threads")
                }
            })
            .collect();
        println!(
            "| cache (M ops/s) | {} | × quick_cache at {most} | × moka at {most} |",
            header.join(" | ")
        );
        println!("|---|{}---:|---:|", "---:|".repeat(columns.len()));
        let at = |subject: &str| {
            subjects
                .get(subject)
                .and_then(|m| m.get(&(most, first.clone())))
                .copied()
        };
        let mut names: Vec<&String> = subjects.keys().collect();
        names.sort_by_key(|n| order(n));
        for name in names {
            let row = &subjects[name];
            let cells: Vec<String> = columns
                .iter()
                .map(|c| row.get(c).map_or("".into(), |v| format!("{v:.2}")))
                .collect();
            let ratio = |peer: &str| match (row.get(&(most, first.clone())), at(peer)) {
                (Some(v), Some(p)) if p > 0.0 => format!("{:.2}", v / p),
                _ => String::new(),
            };
            println!(
                "| {name} | {} | {} | {} |",
                cells.join(" | "),
                ratio("quick_cache"),
                ratio("moka")
            );
        }
        println!();
        if let Some(dir) = &args.charts {
            let lines: BTreeMap<String, Vec<(usize, f64)>> = subjects
                .iter()
                .filter(|(name, _)| name.as_str() != "hashbrown")
                .map(|(name, row)| {
                    let mut points: Vec<(usize, f64)> = row
                        .iter()
                        .filter(|((_, b), _)| *b == first)
                        .map(|((t, _), v)| (*t, *v))
                        .collect();
                    points.sort_by_key(|p| p.0);
                    (name.clone(), points)
                })
                .collect();
            threads_chart(dir, workload, workload, &lines)?;
        }
    }
    for (group, rows) in &other {
        println!("### {group}");
        println!();
        println!("| bench | baseline | ns per element |");
        println!("|---|---|---:|");
        let mut rows = rows.clone();
        rows.sort_by(|a, b| a.nanos_per_element().total_cmp(&b.nanos_per_element()));
        for e in rows {
            println!(
                "| {} | {} | {:.2} |",
                e.function,
                e.baseline,
                e.nanos_per_element()
            );
        }
        println!();
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(problem) = run(&args) {
        eprintln!("results: {problem}");
        std::process::exit(2);
    }
}
