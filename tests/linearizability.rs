//! A linearizability stress checker for the tiered cache (DESIGN §9): per key, once a write
//! (`insert`, `insert_with`, `remove`) has returned, no later read on any thread returns an
//! older value, through any read path, and no read returns an entry whose time to live had run
//! out before the read began.
//!
//! Each key has one writer thread (so its versions grow in real time), which records the
//! version of each write it completes. Readers load that record before each read and check
//! what the read returns against it. The cache configurations cover every read path: plain
//! calls, handles, frames, `get_many`, `peek`, `contains_key`, `get_with`; per-socket
//! replicas; memory budgets; `Critical` entries; time to live on a manual clock; small
//! capacities with constant evictions and promotions.
//!
//! Each configuration runs for `STRATACACHE_STRESS_MS` milliseconds (default 300), so the suite
//! is bounded in CI and can run for hours by hand.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use stratacache::{Cache, InsertOptions, ManualClock, Priority};
use stratacache_platform::Topology;

/// A value: its key, the version of the write that stored it, and its deadline (`u64::MAX`
/// for none) on the manual clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Versioned {
    key: u64,
    version: u64,
    expires: u64,
}

/// Keys in play: few, so writers and readers collide constantly.
const KEYS: u64 = 24;
const WRITERS: u64 = 2;
const READERS: u64 = 3;

fn run_for() -> Duration {
    let ms = std::env::var("STRATACACHE_STRESS_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(300);
    Duration::from_millis(ms)
}

/// How a configuration is built and written.
#[derive(Clone, Copy)]
struct Setup {
    name: &'static str,
    capacity: u64,
    l1_entries: Option<usize>,
    replicas: bool,
    budget: Option<usize>,
    /// One write in this many is `Critical`.
    critical_every: Option<u64>,
    /// Entries live this many clock ticks (a tick is a nanosecond of the manual clock).
    ttl: Option<u64>,
}

const DEFAULT: Setup = Setup {
    name: "",
    capacity: 1_000,
    l1_entries: None,
    replicas: false,
    budget: None,
    critical_every: None,
    ttl: None,
};

thread_local! {
    static FAKE_CPU: Cell<u32> = const { Cell::new(0) };
}

type Tiered = Cache<u64, Versioned>;

fn build(setup: Setup, clock: &Arc<ManualClock>) -> Tiered {
    let mut builder = Cache::builder()
        .capacity(setup.capacity)
        .promote_after(1)
        .shards(2)
        .clock(Arc::clone(clock));
    if let Some(entries) = setup.l1_entries {
        builder = builder.l1_entries(entries);
    }
    if setup.replicas {
        builder = builder
            .topology(Topology::from_nodes([(0, [0]), (1, [1])]).unwrap())
            .cpu_locator(|| Some(FAKE_CPU.with(Cell::get)));
    }
    if let Some(bytes) = setup.budget {
        builder = builder.memory_budget(bytes);
    }
    builder.build().unwrap()
}

/// What the writers have completed: per key, the version of the last write that returned.
struct Ledger {
    completed: Vec<AtomicU64>,
    next_version: Vec<AtomicU64>,
}

impl Ledger {
    fn new() -> Self {
        Self {
            completed: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
            next_version: (0..KEYS).map(|_| AtomicU64::new(1)).collect(),
        }
    }

    /// The floor a read of `key` that starts now must respect.
    fn floor(&self, key: u64) -> u64 {
        // Acquire pairs with the Release in `complete`: the write happened before this read.
        self.completed[key as usize].load(Ordering::Acquire)
    }

    fn next(&self, key: u64) -> u64 {
        self.next_version[key as usize].fetch_add(1, Ordering::Relaxed)
    }

    fn complete(&self, key: u64, version: u64) {
        // Release: see `floor`.
        self.completed[key as usize].store(version, Ordering::Release);
    }
}

/// Checks one read of `key` that started with `floor` and the clock at `now`.
fn check(setup: &Setup, key: u64, floor: u64, now: u64, read: Option<Versioned>) {
    let Some(value) = read else { return };
    assert_eq!(
        value.key, key,
        "{}: a read returned another key's value",
        setup.name
    );
    assert!(
        value.version >= floor,
        "{}: key {key} read version {} after version {floor} had completed",
        setup.name,
        value.version
    );
    assert!(
        value.expires > now,
        "{}: key {key} read an entry that expired at {} when the clock said {now}",
        setup.name,
        value.expires
    );
}

fn writer(
    setup: Setup,
    cache: &Tiered,
    ledger: &Ledger,
    (clock, gate): (&ManualClock, &RwLock<()>),
    me: u64,
    stop: &AtomicBool,
) {
    let mut step = 0u64;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        let key = (step * 7 + me) % KEYS;
        if key % WRITERS != me {
            continue;
        }
        let version = ledger.next(key);
        // The clock stands still while this write runs, so the cache's deadline for the entry
        // is exactly the one the value carries.
        let _still = gate.read().unwrap();
        let now = clock.now_nanos_for_test();
        let value = Versioned {
            key,
            version,
            expires: setup.ttl.map_or(u64::MAX, |ttl| now + ttl),
        };
        let mut options = InsertOptions::new();
        if let Some(ttl) = setup.ttl {
            options = options.time_to_live(Duration::from_nanos(ttl));
        }
        if setup
            .critical_every
            .is_some_and(|every| step.is_multiple_of(every))
        {
            options = options.priority(Priority::Critical);
        }
        match step % 11 {
            0 => {
                cache.remove(&key);
            }
            1 => {
                // As a read path too: the owner loads when the key is absent.
                let floor = ledger.floor(key);
                let loaded = Versioned {
                    expires: u64::MAX, // stored with the default options: no time to live
                    ..value
                };
                let got = cache.get_with(&key, || loaded);
                check(&setup, key, floor, now, Some(got));
                if got != loaded {
                    continue; // it was present: nothing written
                }
            }
            _ => match cache.insert_with(key, value, options) {
                Ok(()) => {}
                // Refused (a spent memory budget with nothing to evict): nothing changed.
                Err(_) => continue,
            },
        }
        ledger.complete(key, version);
    }
}

fn reader(
    setup: Setup,
    cache: &Tiered,
    ledger: &Ledger,
    clock: &ManualClock,
    me: u64,
    stop: &AtomicBool,
    reads: &AtomicUsize,
) {
    FAKE_CPU.with(|cpu| cpu.set((me % 2) as u32));
    let handle = cache.handle();
    let mut step = me;
    let mut count = 0usize;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        let key = (step * 13) % KEYS;
        let floor = ledger.floor(key);
        let now = clock.now_nanos_for_test();
        match step % 7 {
            0 => check(&setup, key, floor, now, cache.get(&key)),
            1 => check(&setup, key, floor, now, cache.peek(&key)),
            2 => check(&setup, key, floor, now, handle.get(&key)),
            3 => {
                // A frame: a batch of reads under one pin, each checked against its own floor.
                let frame = handle.frame();
                for i in 0..16 {
                    let key = (key + i) % KEYS;
                    let floor = ledger.floor(key);
                    let now = clock.now_nanos_for_test();
                    check(&setup, key, floor, now, frame.get(&key));
                    count += 1;
                }
            }
            4 => {
                let keys: Vec<u64> = (0..4).map(|i| (key + i) % KEYS).collect();
                let floors: Vec<u64> = keys.iter().map(|&k| ledger.floor(k)).collect();
                let now = clock.now_nanos_for_test();
                for ((k, floor), got) in keys.iter().zip(floors).zip(cache.get_many(&keys)) {
                    check(&setup, *k, floor, now, got);
                }
            }
            5 => {
                // Presence only: a key whose last completed write was a removal may still be
                // present only through a newer insertion, which `get` then shows.
                if cache.contains_key(&key) {
                    let floor = ledger.floor(key);
                    let now = clock.now_nanos_for_test();
                    check(&setup, key, floor, now, cache.peek(&key));
                }
            }
            _ => check(&setup, key, floor, now, handle.peek(&key)),
        }
        count += 1;
        if count.is_multiple_of(256) {
            handle.collect();
        }
    }
    reads.fetch_add(count, Ordering::Relaxed);
}

fn stress(setup: Setup) {
    let clock = Arc::new(ManualClock::new());
    let cache = build(setup, &clock);
    let ledger = Ledger::new();
    let stop = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let gate = RwLock::new(());
    let deadline = Instant::now() + run_for();
    thread::scope(|s| {
        for me in 0..WRITERS {
            let (cache, ledger, clock, gate, stop) = (&cache, &ledger, &clock, &gate, &stop);
            s.spawn(move || {
                FAKE_CPU.with(|cpu| cpu.set((me % 2) as u32));
                writer(setup, cache, ledger, (clock, gate), me, stop);
            });
        }
        for me in 0..READERS {
            let (cache, ledger, clock, stop, reads) = (&cache, &ledger, &clock, &stop, &reads);
            s.spawn(move || reader(setup, cache, ledger, clock, me, stop, reads));
        }
        // The clock: a tick at a time, so deadlines pass while readers read.
        while Instant::now() < deadline {
            if setup.ttl.is_some() {
                let _moving = gate.write().unwrap();
                clock.advance(Duration::from_nanos(1));
            }
            thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(reads.into_inner() > 0, "{}: no read ran", setup.name);
}

/// `ManualClock`'s reading, as the cache reads it.
trait NowForTest {
    fn now_nanos_for_test(&self) -> u64;
}

impl NowForTest for ManualClock {
    fn now_nanos_for_test(&self) -> u64 {
        stratacache::Clock::now_nanos(self)
    }
}

#[test]
fn plain_calls_handles_frames_and_batches_never_read_an_older_version() {
    stress(Setup {
        name: "default",
        ..DEFAULT
    });
}

#[test]
fn a_small_cache_evicting_and_promoting_constantly_never_reads_an_older_version() {
    stress(Setup {
        name: "small",
        capacity: 8,
        l1_entries: Some(7),
        ..DEFAULT
    });
}

#[test]
fn replicas_on_two_sockets_never_read_an_older_version() {
    stress(Setup {
        name: "replicas",
        capacity: 16,
        replicas: true,
        critical_every: Some(5),
        ..DEFAULT
    });
}

#[test]
fn critical_entries_on_a_memory_budget_never_read_an_older_version() {
    stress(Setup {
        name: "critical on a budget",
        capacity: 1 << 30,
        budget: Some(1 << 20),
        l1_entries: Some(64),
        critical_every: Some(2),
        ..DEFAULT
    });
}

#[test]
fn entries_with_a_time_to_live_are_never_read_once_expired_nor_older() {
    stress(Setup {
        name: "ttl",
        capacity: 32,
        ttl: Some(3),
        critical_every: Some(4),
        ..DEFAULT
    });
}
