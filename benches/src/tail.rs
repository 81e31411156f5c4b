//! Tail latency of `get` under a full-speed writer, stratacache side by side with the peers
//! (run by the `tail_latency` bench and bin).
//!
//! For each cache: capacity [`TailSetup::capacity`] entries, filled first; the reader threads
//! `get` zipf(0.99)-skewed keys of the resident set and time every call into an HDR histogram,
//! while one writer thread inserts new keys as fast as it can (every insertion evicts).
//! [`run`] prints one markdown table row per cache: p50, p99, p99.9 and max of the readers'
//! `get`, the readers' and the writer's throughput.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};

/// What to measure.
#[derive(Debug, Clone)]
pub struct TailSetup {
    /// Reader threads (`None`: every CPU but one, at least one).
    pub readers: Option<usize>,
    /// Capacity in entries (filled before the readers start).
    pub capacity: u64,
    /// Seconds each cache is measured.
    pub seconds: f64,
    /// Only the caches whose name contains this.
    pub only: Option<String>,
    /// Pin the writer to the first CPU and reader `r` to CPU `r + 1` (modulo the CPUs), so
    /// the scheduler cannot move or stack them (`stratacache_platform::pin_current_thread`).
    pub pin: bool,
}

impl Default for TailSetup {
    fn default() -> Self {
        Self {
            readers: None,
            capacity: 100_000,
            seconds: 2.0,
            only: None,
            pin: false,
        }
    }
}

/// A reader's `get`: whether the key was found.
type Get<'a> = &'a dyn Fn(u64) -> bool;

/// A cache under test, as the readers and the writer use it.
trait Subject: Sync {
    /// Runs `body` with a per-thread accessor (a handle, a pin...) for `get`.
    fn reader(&self, body: &mut dyn FnMut(Get<'_>));
    fn insert(&self, key: u64);
}

fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Implements [`Subject`] for a cache read through `&self` methods.
macro_rules! plain {
    ($ty:ty, |$c:ident, $k:ident| get: $get:expr, insert: $insert:expr) => {
        impl Subject for $ty {
            fn reader(&self, body: &mut dyn FnMut(Get<'_>)) {
                let $c = self;
                body(&|$k| $get);
            }
            fn insert(&self, $k: u64) {
                let $c = self;
                $insert;
            }
        }
    };
}

plain!(quick_cache::sync::Cache<u64, u64>, |c, k| get: c.get(&k).is_some(), insert: c.insert(k, k));
plain!(moka::sync::Cache<u64, u64>, |c, k| get: c.get(&k).is_some(), insert: c.insert(k, k));
plain!(mini_moka::sync::Cache<u64, u64>, |c, k| get: c.get(&k).is_some(), insert: c.insert(k, k));
plain!(scc::HashCache<u64, u64>, |c, k| get: c.read_sync(&k, |_, v| *v).is_some(), insert: {
    let _ = c.put_sync(k, k);
});
plain!(foyer::Cache<u64, u64>, |c, k| get: c.get(&k).is_some(), insert: { c.insert(k, k); });
plain!(dashmap::DashMap<u64, u64>, |c, k| get: c.get(&k).is_some(), insert: { c.insert(k, k); });
plain!(papaya::HashMap<u64, u64>, |c, k| get: c.pin().get(&k).is_some(), insert: {
    c.pin().insert(k, k);
});

/// stratacache through a handle per thread, one call per `get`.
struct Stratacache(stratacache::Cache<u64, u64>);

impl Subject for Stratacache {
    fn reader(&self, body: &mut dyn FnMut(Get<'_>)) {
        let handle = self.0.handle();
        body(&|k| handle.get(&k).is_some());
    }
    fn insert(&self, key: u64) {
        let _ = self.0.insert(key, key);
    }
}

/// stratacache read in frames: one `CacheFrame` (one L1 pin) per 256 gets.
struct StratacacheFrames(stratacache::Cache<u64, u64>);

impl Subject for StratacacheFrames {
    fn reader(&self, body: &mut dyn FnMut(Get<'_>)) {
        let handle = self.0.handle();
        let frame = std::cell::RefCell::new(Some(handle.frame()));
        let calls = std::cell::Cell::new(0u32);
        body(&|k| {
            calls.set(calls.get() + 1);
            if calls.get().is_multiple_of(256) {
                // The frame ends and the next begins between two timed gets.
                let mut slot = frame.borrow_mut();
                *slot = None;
                *slot = Some(handle.frame());
            }
            frame.borrow().as_ref().is_some_and(|f| f.get(&k).is_some())
        });
    }
    fn insert(&self, key: u64) {
        let _ = self.0.insert(key, key);
    }
}

/// What one measurement found.
struct Measured {
    latency: Histogram<u64>,
    reads: u64,
    hits: u64,
    writes: u64,
    elapsed: Duration,
}

/// Pins the calling thread to the `index`-th CPU of this machine, when asked to.
fn pin(args: &TailSetup, index: usize) {
    if !args.pin {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = (index % cpus) as u32;
    if let Err(problem) = stratacache_platform::pin_current_thread(&[cpu]) {
        eprintln!("tail_latency: could not pin to CPU {cpu}: {problem}");
    }
}

fn measure(subject: &dyn Subject, args: &TailSetup, readers: usize) -> Measured {
    for rank in 0..args.capacity {
        subject.insert(key_of(rank));
    }
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (histograms, writes) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..readers as u64)
            .map(|r| {
                let stop = &stop;
                scope.spawn(move || {
                    pin(args, r as usize + 1);
                    let mut rng = rand::rngs::SmallRng::seed_from_u64(r + 1);
                    let zipf = Zipf::new(args.capacity as f64, 0.99).expect("valid zipf");
                    let ranks: Vec<u64> = (0..1 << 16)
                        .map(|_| zipf.sample(&mut rng) as u64 - 1)
                        .collect();
                    let mut histogram =
                        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
                    let (mut reads, mut hits) = (0u64, 0u64);
                    subject.reader(&mut |get| {
                        let mut at = 0usize;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..64 {
                                let key = key_of(ranks[at & (ranks.len() - 1)]);
                                at += 1;
                                let begun = Instant::now();
                                let hit = get(key);
                                let took = begun.elapsed().as_nanos() as u64;
                                histogram.saturating_record(took.max(1));
                                hits += u64::from(hit);
                            }
                            reads += 64;
                        }
                    });
                    (histogram, reads, hits)
                })
            })
            .collect();
        let writer = scope.spawn(|| {
            pin(args, 0);
            let mut next = args.capacity;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    subject.insert(key_of(next));
                    next += 1;
                }
            }
            next - args.capacity
        });
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        stop.store(true, Ordering::Relaxed);
        let histograms: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (histograms, writer.join().unwrap())
    });
    let elapsed = started.elapsed();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let (mut reads, mut hits) = (0, 0);
    for (h, r, x) in histograms {
        latency.add(&h).expect("same bounds");
        reads += r;
        hits += x;
    }
    Measured {
        latency,
        reads,
        hits,
        writes,
        elapsed,
    }
}

fn subjects(capacity: u64) -> Vec<(&'static str, Box<dyn Subject>)> {
    use crate::peers;
    vec![
        (
            "stratacache",
            Box::new(Stratacache(peers::stratacache(capacity))),
        ),
        (
            "stratacache_frames",
            Box::new(StratacacheFrames(peers::stratacache(capacity))),
        ),
        (
            "stratacache_preallocated",
            Box::new(Stratacache(peers::stratacache_preallocated(capacity))),
        ),
        ("quick_cache", Box::new(peers::quick_cache(capacity))),
        ("moka", Box::new(peers::moka(capacity))),
        ("mini_moka", Box::new(peers::mini_moka(capacity))),
        ("scc_hashcache", Box::new(peers::scc(capacity))),
        ("foyer", Box::new(peers::foyer(capacity))),
        (
            "dashmap (no eviction)",
            Box::new(dashmap::DashMap::<u64, u64>::new()),
        ),
        (
            "papaya (no eviction)",
            Box::new(papaya::HashMap::<u64, u64>::new()),
        ),
    ]
}

/// The least time two back-to-back clock reads measure: what timing adds to each `get`.
fn timer_cost() -> Duration {
    (0..10_000)
        .map(|_| Instant::now().elapsed())
        .min()
        .unwrap_or_default()
}

/// Measures every cache of `setup` in turn and prints the table (markdown) on stdout.
///
/// # Errors
/// A zero capacity or a duration that is not a positive number.
pub fn run(setup: &TailSetup) -> Result<(), String> {
    if setup.capacity == 0 || !(setup.seconds > 0.0 && setup.seconds.is_finite()) {
        return Err("the capacity and the seconds per cache must be positive".into());
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let readers = setup.readers.unwrap_or(cpus.saturating_sub(1)).max(1);
    println!(
        "`get` latency on {readers} reader thread(s) while one thread inserts at full speed; \
         capacity {}, zipf(0.99) reads of the filled set, {} s per cache, {} allocator, {cpus} \
         CPUs{}; every `get` timed (the two clock reads add about {} ns).",
        setup.capacity,
        setup.seconds,
        crate::ALLOCATOR_NAME,
        if setup.pin { ", threads pinned" } else { "" },
        timer_cost().as_nanos()
    );
    println!();
    println!(
        "| cache | p50 ns | p99 ns | p99.9 ns | max ns | reader hit % | reads/s (all readers) | writes/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, subject) in subjects(setup.capacity) {
        if setup
            .only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        let m = measure(subject.as_ref(), setup, readers);
        let seconds = m.elapsed.as_secs_f64();
        println!(
            "| {name} | {} | {} | {} | {} | {:.1} | {:.1} M | {:.2} M |",
            m.latency.value_at_quantile(0.5),
            m.latency.value_at_quantile(0.99),
            m.latency.value_at_quantile(0.999),
            m.latency.max(),
            100.0 * m.hits as f64 / m.reads.max(1) as f64,
            m.reads as f64 / seconds / 1e6,
            m.writes as f64 / seconds / 1e6,
        );
        drop(subject);
    }
    Ok(())
}
