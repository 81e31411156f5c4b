//! The main job: a simulated game server on the tiered cache, the way it would use it.
//!
//! Worker threads (default: one per CPU) each run frames, back to back, for about ten seconds.
//! A frame is one tick of a shard of the world: under one [`CacheFrame`] (one L1 pin), it
//! reads the state of the entities around a few players (zipf-skewed players, spatially
//! local neighbours), their sessions, their match's state, the protocol messages queued for
//! them, some UI data and some background data; a miss loads the value (a few hundred
//! nanoseconds of simulated work) and caches it; a small share of the reads are followed by a
//! write (an entity moved). Between frames the worker frees what its frames retired.
//!
//! The four priorities are all in use: match state is `Critical` (in L1 at once, evicted
//! last), protocol messages `High`, UI data `Medium`, background data `Low`.
//!
//! It prints frames run, frames over budget, hit ratios per tier and per kind of data, `get`
//! latency percentiles (an HDR histogram of every timed `get`), what the cache did and the
//! memory it holds.
//!
//! With `--l3 DIR` (feature `persistent`) the world also lives on disk in `DIR`: what memory
//! evicts is written there, misses read it back, and at the end everything in memory is
//! written back; run it twice and the second run starts warm (its first seconds' hit ratios
//! are printed as they happen).
//!
//! `cargo run --release --example game_loop [-- --threads N --keys N --capacity N --frames N
//! --seconds S --skew E --write-share F --budget-us U]`; `-- --help` lists them.
//! With `--redis URL --instances N` (feature `redis`) N server processes share the world's
//! entities: writes go through coherence, misses load from a Redis hash that stands for the
//! world's database, and each process counts its stale reads (it fails if there is one).
//!
//! `cargo run --release --features persistent --example game_loop -- --l3 DIR` keeps the world
//! on disk.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Zipf};
use stratacache::{Cache, CacheFrame, CacheStats, InsertOptions, Priority};

/// A simulated game server: worker threads run frames against one tiered cache.
#[derive(Parser, Debug, Clone)]
#[command(about)]
struct Args {
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Entities in the world (sessions, matches and the other kinds scale with it).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Cache capacity in entries (default: a tenth of all the keys of every kind).
    #[arg(long)]
    capacity: Option<u64>,
    /// Frames per thread at most (default: as many as fit in `--seconds`).
    #[arg(long)]
    frames: Option<u64>,
    /// How long to run, in seconds, when `--frames` is not given.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Zipf exponent of the players' popularity (0 = uniform).
    #[arg(long, default_value_t = 0.99)]
    skew: f64,
    /// Share of entity reads followed by a write of a new version.
    #[arg(long, default_value_t = 0.02)]
    write_share: f64,
    /// The cache work a frame may take, in microseconds; longer frames count as overruns.
    #[arg(long, default_value_t = 1_000)]
    budget_us: u64,
    /// Keep the world on disk in this directory too (the persistent tier), warm from it at
    /// the start and write memory back to it at the end.
    #[cfg(feature = "persistent")]
    #[arg(long)]
    l3: Option<std::path::PathBuf>,
    /// Share the world's entities with other instances through this Redis (feature `redis`):
    /// writes invalidate the others' copies, and stale reads are counted.
    #[cfg(feature = "redis")]
    #[arg(long)]
    redis: Option<String>,
    /// With `--redis`: how many server processes to run on the one world (this one and the
    /// rest started as children).
    #[cfg(feature = "redis")]
    #[arg(long, default_value_t = 1)]
    instances: u32,
    /// Set on the instances a fleet's first process starts.
    #[cfg(feature = "redis")]
    #[arg(long, hide = true)]
    instance: Option<u32>,
}

#[cfg(feature = "redis")]
#[path = "fleet/fleet.rs"]
mod fleet;

/// The kinds of data a frame reads, with the priority each is cached at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Entity,
    Session,
    Match,
    Message,
    Ui,
    Background,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Entity,
        Kind::Session,
        Kind::Match,
        Kind::Message,
        Kind::Ui,
        Kind::Background,
    ];

    fn priority(self) -> Priority {
        match self {
            Kind::Match => Priority::Critical,
            Kind::Entity | Kind::Session | Kind::Message => Priority::High,
            Kind::Ui => Priority::Medium,
            Kind::Background => Priority::Low,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Entity => "entity state",
            Kind::Session => "session",
            Kind::Match => "match state",
            Kind::Message => "protocol message",
            Kind::Ui => "UI data",
            Kind::Background => "background",
        }
    }

    /// A cache key: the kind in the top byte, the id below.
    fn key(self, id: u64) -> u64 {
        (self as u64) << 56 | (id & ((1 << 56) - 1))
    }
}

/// A cached value: small and plain, as game state is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct State {
    id: u64,
    version: u32,
    position: [f32; 3],
    payload: [u32; 4],
}

/// A `State` as the cache holds it: plain bytes, which the disk tier stores as they are.
const STATE_BYTES: usize = 40;

impl State {
    fn to_bytes(self) -> [u8; STATE_BYTES] {
        let mut bytes = [0u8; STATE_BYTES];
        bytes[..8].copy_from_slice(&self.id.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.version.to_le_bytes());
        for (i, p) in self.position.iter().enumerate() {
            bytes[12 + 4 * i..16 + 4 * i].copy_from_slice(&p.to_le_bytes());
        }
        for (i, p) in self.payload.iter().enumerate() {
            bytes[24 + 4 * i..28 + 4 * i].copy_from_slice(&p.to_le_bytes());
        }
        bytes
    }

    fn from_bytes(bytes: &[u8; STATE_BYTES]) -> Self {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Self {
            id: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
            version: word(8),
            position: [0, 1, 2].map(|i| f32::from_bits(word(12 + 4 * i))),
            payload: [0, 1, 2, 3].map(|i| word(24 + 4 * i)),
        }
    }

    /// What a miss loads from the slower store behind the cache (simulated work).
    fn load(key: u64) -> Self {
        let mut x = key | 1;
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        Self {
            id: key,
            version: 0,
            position: [(x & 0xFFFF) as f32, (x >> 16 & 0xFFFF) as f32, 0.0],
            payload: [x as u32, (x >> 32) as u32, 0, 0],
        }
    }
}

/// The world's sizes, from `--keys`.
#[derive(Debug, Clone, Copy)]
struct World {
    entities: u64,
    sessions: u64,
    matches: u64,
    ui: u64,
    background: u64,
}

impl World {
    fn new(entities: u64) -> Self {
        let entities = entities.max(100);
        Self {
            entities,
            sessions: (entities / 10).max(10),
            matches: (entities / 1_000).max(2),
            ui: (entities / 20).max(10),
            background: entities * 2,
        }
    }

    /// Distinct keys of every kind but messages (which are made as the game runs).
    fn keys(&self) -> u64 {
        self.entities + self.sessions + self.matches + self.ui + self.background
    }
}

/// What one worker counted.
struct Tally {
    frames: u64,
    overruns: u64,
    longest_frame: Duration,
    reads: [u64; 6],
    hits: [u64; 6],
    writes: u64,
    rejected: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            frames: 0,
            overruns: 0,
            longest_frame: Duration::ZERO,
            reads: [0; 6],
            hits: [0; 6],
            writes: 0,
            rejected: 0,
            // 1 ns to 60 s at three significant digits.
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        }
    }

    fn add(&mut self, other: &Tally) {
        self.frames += other.frames;
        self.overruns += other.overruns;
        self.longest_frame = self.longest_frame.max(other.longest_frame);
        for k in 0..6 {
            self.reads[k] += other.reads[k];
            self.hits[k] += other.hits[k];
        }
        self.writes += other.writes;
        self.rejected += other.rejected;
        self.latency.add(&other.latency).expect("same bounds");
    }
}

type GameCache = Cache<u64, [u8; STATE_BYTES]>;
type GameFrame<'a> = CacheFrame<'a, u64, [u8; STATE_BYTES]>;

/// One worker's state between frames.
struct Worker<'a> {
    args: &'a Args,
    world: World,
    rng: SmallRng,
    players: Zipf<f64>,
    sessions: Zipf<f64>,
    ui: Zipf<f64>,
    /// Protocol messages this worker has produced so far (the newest are read most).
    messages: u64,
    thread: u64,
    tally: Tally,
    /// With `--redis`: the fleet and this worker's connection to the world's database.
    #[cfg(feature = "redis")]
    fleet: Option<(&'a fleet::Fleet, redis::Connection)>,
}

impl Worker<'_> {
    /// Reads `key` of `kind`, loads and caches it on a miss; returns the value.
    fn read(&mut self, frame: &GameFrame<'_>, kind: Kind, id: u64) -> State {
        let key = kind.key(id);
        let started = Instant::now();
        let found = frame.get(&key).map(|bytes| State::from_bytes(&bytes));
        let took = started.elapsed().as_nanos() as u64;
        self.tally.latency.saturating_record(took.max(1));
        self.tally.reads[kind as usize] += 1;
        match found {
            Some(state) => {
                debug_assert_eq!(state.id, key);
                self.tally.hits[kind as usize] += 1;
                #[cfg(feature = "redis")]
                if kind == Kind::Entity
                    && let Some((fleet, connection)) = self.fleet.as_mut()
                    && self.rng.random_ratio(1, 32)
                {
                    fleet.check(connection, key, &state);
                }
                state
            }
            None => {
                #[cfg(feature = "redis")]
                if kind == Kind::Entity
                    && let Some((fleet, connection)) = self.fleet.as_mut()
                {
                    return fleet.load(connection, key);
                }
                let state = State::load(key);
                let options = InsertOptions::new().priority(kind.priority());
                if frame.insert_with(key, state.to_bytes(), options).is_err() {
                    self.tally.rejected += 1;
                }
                state
            }
        }
    }

    /// One frame: a few players' surroundings, their sessions and match, messages, UI and
    /// background reads, and a small share of writes.
    fn frame(&mut self, frame: &GameFrame<'_>) {
        const PLAYERS_PER_FRAME: usize = 4;
        const NEIGHBOURS: u64 = 16;
        for _ in 0..PLAYERS_PER_FRAME {
            let player = self.players.sample(&mut self.rng) as u64 - 1;
            // The entities around the player: neighbouring ids (spatial locality).
            let first = player.saturating_sub(NEIGHBOURS / 2);
            for id in first..(first + NEIGHBOURS).min(self.world.entities) {
                let state = self.read(frame, Kind::Entity, id);
                if self.rng.random_bool(self.args.write_share) {
                    let moved = State {
                        version: state.version + 1,
                        position: [state.position[0] + 1.0, state.position[1], 0.0],
                        ..state
                    };
                    self.tally.writes += 1;
                    #[cfg(feature = "redis")]
                    if let Some((fleet, connection)) = self.fleet.as_mut() {
                        fleet.write(connection, Kind::Entity.key(id), moved);
                        continue;
                    }
                    if frame
                        .insert(Kind::Entity.key(id), moved.to_bytes())
                        .is_err()
                    {
                        self.tally.rejected += 1;
                    }
                }
            }
            let session = self.sessions.sample(&mut self.rng) as u64 - 1;
            self.read(frame, Kind::Session, session);
            self.read(frame, Kind::Match, session % self.world.matches);
        }
        // Protocol messages: a new one this frame, and reads of the last few.
        self.messages += 1;
        for back in 0..4.min(self.messages) {
            let id = (self.thread << 40) | (self.messages - back);
            self.read(frame, Kind::Message, id);
        }
        for _ in 0..4 {
            let ui = self.ui.sample(&mut self.rng) as u64 - 1;
            self.read(frame, Kind::Ui, ui);
        }
        // Background data: uniform over a large space, rarely reused.
        for _ in 0..2 {
            let id = self.rng.random_range(0..self.world.background);
            self.read(frame, Kind::Background, id);
        }
    }
}

fn zipf(n: u64, skew: f64) -> Zipf<f64> {
    Zipf::new(n as f64, skew).expect("a positive count and a non-negative exponent")
}

fn main() {
    let args = Args::parse();
    // A fleet's first process starts the others, runs its own share, then prints theirs.
    #[cfg(feature = "redis")]
    let others: Vec<std::process::Child> = if args.redis.is_some() && args.instance.is_none() {
        let exe = std::env::current_exe().expect("this program's path");
        let given: Vec<String> = std::env::args().skip(1).collect();
        (1..args.instances)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args(&given)
                    .args(["--instance", &i.to_string()])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("another instance")
            })
            .collect()
    } else {
        Vec::new()
    };
    let result = run(&args);
    #[cfg(feature = "redis")]
    for (i, other) in others.into_iter().enumerate() {
        let output = other.wait_with_output().expect("an instance's output");
        println!();
        println!("== instance {} ==", i + 1);
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            eprintln!("game_loop: instance {} failed", i + 1);
            std::process::exit(2);
        }
    }
    if let Err(problem) = result {
        eprintln!("game_loop: {problem}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if !(args.skew >= 0.0 && args.skew.is_finite()) {
        return Err(format!(
            "--skew must be a non-negative number, got {}",
            args.skew
        ));
    }
    if !(0.0..=1.0).contains(&args.write_share) {
        return Err(format!(
            "--write-share must be in 0..=1, got {}",
            args.write_share
        ));
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err(format!("--seconds must be positive, got {}", args.seconds));
    }
    let threads = match args.threads {
        Some(0) => return Err("--threads must be at least 1".to_string()),
        Some(threads) => threads,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    if args.keys == 0 {
        return Err("--keys must be at least 1".to_string());
    }
    let world = World::new(args.keys);
    let capacity = args.capacity.unwrap_or(world.keys() / 10);
    let cache = build(args, capacity)?;
    #[cfg(feature = "redis")]
    let fleet = match &args.redis {
        Some(url) => Some(fleet::Fleet::join(&cache, url)?),
        None => None,
    };
    #[cfg(feature = "redis")]
    let fleet = &fleet;
    let budget = Duration::from_micros(args.budget_us);
    let deadline = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        #[cfg(feature = "persistent")]
        if args.l3.is_some() {
            let cache = &cache;
            scope.spawn(move || watch_warm_start(cache, capacity, deadline));
        }
        let workers: Vec<_> = (0..threads as u64)
            .map(|thread| {
                let cache = &cache;
                scope.spawn(move || {
                    let mut worker = Worker {
                        args,
                        world,
                        rng: SmallRng::seed_from_u64(0x5EED + thread),
                        players: zipf(world.entities, args.skew),
                        sessions: zipf(world.sessions, args.skew),
                        ui: zipf(world.ui, args.skew),
                        messages: 0,
                        thread,
                        tally: Tally::new(),
                        #[cfg(feature = "redis")]
                        fleet: fleet.as_ref().map(|fleet| (fleet, fleet.connect())),
                    };
                    let handle = cache.handle();
                    loop {
                        let frames = worker.tally.frames;
                        if args
                            .frames
                            .map_or(started.elapsed() >= deadline, |n| frames >= n)
                        {
                            break;
                        }
                        let began = Instant::now();
                        {
                            let frame = handle.frame();
                            worker.frame(&frame);
                        }
                        let took = began.elapsed();
                        worker.tally.frames += 1;
                        worker.tally.overruns += u64::from(took > budget);
                        worker.tally.longest_frame = worker.tally.longest_frame.max(took);
                        // A quiet point between frames: free what the frames retired.
                        handle.collect();
                    }
                    worker.tally
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut total = Tally::new();
    for tally in &tallies {
        total.add(tally);
    }
    report(args, threads, world, &cache, &total, elapsed, budget);
    #[cfg(feature = "redis")]
    if let Some(fleet) = fleet {
        use std::sync::atomic::Ordering;
        println!();
        println!("  fleet (instance {})", args.instance.unwrap_or(0));
        println!(
            "    entity reads checked            {}, stale {} (older than a write acknowledged {:?} before)",
            fleet.checked.load(Ordering::Relaxed),
            fleet.stale.load(Ordering::Relaxed),
            fleet::STALE_AFTER
        );
        println!("    coherence                       {}", fleet.summary());
        let stale = fleet.stale.load(Ordering::Relaxed);
        if stale > 0 {
            return Err(format!(
                "{stale} stale reads: values older than a write acknowledged {:?} before",
                fleet::STALE_AFTER
            ));
        }
    }
    #[cfg(feature = "persistent")]
    if args.l3.is_some() {
        let written = cache
            .write_back()
            .map_err(|e| format!("cannot write the cache back to disk: {e}"))?;
        let disk = cache.persistent_stats().unwrap_or_default();
        println!();
        println!("  disk tier");
        println!(
            "    answered by disk                {:6.2} % of what memory missed",
            100.0 * cache.stats().l3_hit_ratio()
        );
        println!("    written back at the end         {written} entries");
        println!(
            "    on disk                         {} entries, {:.1} MiB",
            disk.entries,
            disk.disk_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}

/// The cache, on disk too with `--l3` (after recovering what the directory holds).
fn build(args: &Args, capacity: u64) -> Result<GameCache, String> {
    let builder = Cache::builder().capacity(capacity);
    #[cfg(feature = "persistent")]
    if let Some(dir) = &args.l3 {
        let (store, report) = stratacache::l3::Store::builder(dir)
            .open()
            .map_err(|e| format!("cannot open the disk tier: {e}"))?;
        println!(
            "disk tier {}: {} entries recovered ({} damaged records skipped, torn tail: {})",
            dir.display(),
            report.entries,
            report.corrupt_records,
            report.torn_tail
        );
        return builder
            .build_persistent(store)
            .map_err(|e| format!("cannot build a cache of capacity {capacity}: {e}"));
    }
    let _ = args;
    builder
        .build()
        .map_err(|e| format!("cannot build a cache of capacity {capacity}: {e}"))
}

/// With the disk tier: warms the cache from it, and prints the hit ratio of each of the first
/// seconds while the run lasts.
#[cfg(feature = "persistent")]
fn watch_warm_start(cache: &GameCache, capacity: u64, until: Duration) {
    let warming = cache
        .warm_in_background(capacity as usize)
        .expect("a thread for warming");
    let started = Instant::now();
    let mut last = cache.stats();
    for second in 1..=5u32 {
        let next = started + Duration::from_secs(u64::from(second));
        if next.duration_since(started) > until {
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let now = cache.stats();
        let hits = now.hits() - last.hits();
        let lookups = now.lookups() - last.lookups();
        println!(
            "  second {second}: hit ratio {:6.2} % ({} from disk)",
            percent(hits, lookups),
            now.l3_hits - last.l3_hits
        );
        last = now;
    }
    let warmed = warming.join().expect("warming panicked");
    println!("  warmed {warmed} entries from disk");
}

/// The least time two back-to-back clock reads measure: what timing adds to each `get`.
fn timer_cost() -> Duration {
    (0..10_000)
        .map(|_| Instant::now().elapsed())
        .min()
        .unwrap_or_default()
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn report(
    args: &Args,
    threads: usize,
    world: World,
    cache: &GameCache,
    total: &Tally,
    elapsed: Duration,
    budget: Duration,
) {
    let stats: CacheStats = cache.stats();
    let reads: u64 = total.reads.iter().sum();
    let seconds = elapsed.as_secs_f64();
    println!("stratacache game loop: {threads} threads, {seconds:.1} s");
    println!();
    println!("  world");
    println!(
        "    entities / sessions / matches   {} / {} / {}",
        world.entities, world.sessions, world.matches
    );
    println!(
        "    UI / background keys            {} / {}",
        world.ui, world.background
    );
    println!(
        "    capacity (entries)              {} (L1 holds {})",
        cache.capacity(),
        cache.l1_capacity()
    );
    println!(
        "    player skew, write share        zipf {}, {:.1} %",
        args.skew,
        100.0 * args.write_share
    );
    println!();
    println!("  frames");
    println!("    frames run                      {}", total.frames);
    println!(
        "    frames per second               {:.0} ({:.0} per thread)",
        total.frames as f64 / seconds,
        total.frames as f64 / seconds / threads as f64
    );
    println!(
        "    over the {} µs budget           {} ({:.3} %)",
        budget.as_micros(),
        total.overruns,
        percent(total.overruns, total.frames)
    );
    println!(
        "    longest frame                   {:.1} µs",
        total.longest_frame.as_secs_f64() * 1e6
    );
    println!(
        "    reads / writes                  {reads} / {}",
        total.writes
    );
    println!(
        "    operations per second           {:.2} M",
        (reads + total.writes) as f64 / seconds / 1e6
    );
    println!();
    println!("  hit ratio by tier");
    println!(
        "    all lookups                     {:6.2} %",
        100.0 * stats.hit_ratio()
    );
    println!(
        "    answered by L1                  {:6.2} % of lookups",
        100.0 * stats.l1_hit_ratio()
    );
    println!(
        "    answered by L2                  {:6.2} % of what L1 missed",
        100.0 * stats.l2_hit_ratio()
    );
    println!();
    println!("  hit ratio by kind                 priority    reads        hit %");
    for kind in Kind::ALL {
        let k = kind as usize;
        println!(
            "    {:<30}  {:<10} {:>11}  {:6.2}",
            kind.name(),
            format!("{:?}", kind.priority()),
            total.reads[k],
            percent(total.hits[k], total.reads[k])
        );
    }
    println!();
    let h = &total.latency;
    println!(
        "  get latency (every get; the two clock reads around it add about {} ns)",
        timer_cost().as_nanos()
    );
    println!(
        "    p50 / p99 / p99.9 / max         {} / {} / {} / {} ns",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    println!("    mean                            {:.1} ns", h.mean());
    println!();
    println!("  what the cache did");
    println!("    inserts                         {}", stats.inserts);
    println!("    promotions to L1                {}", stats.promotions);
    println!(
        "    evictions (capacity / expired)  {} / {}",
        stats.evicted_capacity, stats.expired
    );
    println!("    replaced values                 {}", stats.replaced);
    println!("    rejected inserts                {}", total.rejected);
    println!();
    println!("  memory");
    println!(
        "    entries (weight)                {} ({})",
        stats.entries, stats.weighted_size
    );
    println!(
        "    cache structures                {:.1} MiB ({:.1} B per entry)",
        stats.memory_bytes as f64 / (1 << 20) as f64,
        stats.memory_bytes as f64 / stats.entries.max(1) as f64
    );
    let payload = stats.entries * (size_of::<u64>() + STATE_BYTES) as u64;
    println!(
        "    keys and values                 {:.1} MiB ({} B each)",
        payload as f64 / (1 << 20) as f64,
        size_of::<u64>() + STATE_BYTES
    );
}
