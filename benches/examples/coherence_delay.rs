//! Coherence over Redis, measured: the delay from a write in one member to the other member
//! no longer serving the old value (p50, p99), what coherence adds to a local write, and the
//! remote tier's write (`insert_shared`) and read of a local miss (`get_shared`).
//!
//! `cargo run --release -p stratacache-benches --example coherence_delay -- [redis://URL/]`
//! (default: starts `redis-server` on a free loopback port, as the tests do). Two members of
//! one group in this process, each with its own connections and subscriber thread; member B
//! holds a copy of every key, member A writes it, and a thread spins on B until its copy is
//! gone.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use stratacache::Cache;
use stratacache::coherence::{Coherence, Coherent};

const WRITES: u64 = 5_000;

fn member(url: &str) -> Coherent<u64, u64> {
    let member = Cache::builder()
        .capacity(100_000)
        .build()
        .expect("builds")
        .coherent(Coherence::builder(url, "bench"))
        .expect("joins");
    let until = Instant::now() + Duration::from_secs(5);
    while !member.stats().connected {
        assert!(Instant::now() < until, "cannot reach Redis at {url}");
        std::thread::sleep(Duration::from_millis(5));
    }
    member
}

fn main() {
    let mut server = None;
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's package redis-server), or give a URL");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        server = Some(child);
        format!("redis://127.0.0.1:{port}/")
    });
    let (a, b) = (member(&url), member(&url));
    let mut delays = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
    let mut writes = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
    for key in 0..WRITES {
        b.cache().insert(key, 0).expect("insert");
        let started = Instant::now();
        a.insert(key, 1).expect("insert").expect("published");
        writes.saturating_record(started.elapsed().as_nanos() as u64);
        while b.cache().contains_key(&key) {
            std::hint::spin_loop();
        }
        delays.saturating_record(started.elapsed().as_nanos() as u64);
    }
    // The same writes without coherence.
    let plain: Cache<u64, u64> = Cache::builder().capacity(100_000).build().expect("builds");
    let mut local = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
    for key in 0..WRITES {
        let started = Instant::now();
        plain.insert(key, 1).expect("insert");
        local.saturating_record(started.elapsed().as_nanos() as u64);
    }
    // The remote tier: A shares each key (an 8-byte value), B reads it on a local
    // miss (and keeps it: the next read is local, not measured).
    let mut shared = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
    let mut fetched = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("bounds");
    let offset = WRITES;
    for key in offset..offset + WRITES {
        let started = Instant::now();
        a.insert_shared(key, key)
            .expect("insert")
            .expect("published");
        shared.saturating_record(started.elapsed().as_nanos() as u64);
        let started = Instant::now();
        assert_eq!(b.get_shared(&key).expect("reachable"), Some(key));
        fetched.saturating_record(started.elapsed().as_nanos() as u64);
    }
    println!("{WRITES} writes, one at a time, Redis on loopback");
    println!();
    println!("| measure | p50 µs | p99 µs | p99.9 µs |");
    println!("|---|---:|---:|---:|");
    for (measure, histogram, digits) in [
        (
            "write in A to B no longer serving the old value",
            &delays,
            1,
        ),
        (
            "`Coherent::insert` (a script's round trip, then the local insert)",
            &writes,
            1,
        ),
        ("`Cache::insert` alone", &local, 2),
        (
            "`Coherent::insert_shared` (the same script storing the value too)",
            &shared,
            1,
        ),
        (
            "`Coherent::get_shared` of a local miss (one MGET, then the fill)",
            &fetched,
            1,
        ),
    ] {
        let [p50, p99, p999] =
            [0.5, 0.99, 0.999].map(|q| histogram.value_at_quantile(q) as f64 / 1e3);
        println!("| {measure} | {p50:.digits$} | {p99:.digits$} | {p999:.digits$} |");
    }
    println!();
    println!("member B: {}", b.stats().summary());
    drop((a, b));
    if let Some(mut server) = server {
        let _ = server.kill();
        let _ = server.wait();
    }
}
