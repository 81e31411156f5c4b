//! The main job for now: worker threads run frames against one L1 table, the way a game loop
//! would, and print what happened.
//!
//! Each frame pins once, reads skewed keys (hot entities first), loads and inserts on a miss,
//! writes a small share of fresh values, then unpins and collects garbage between frames.
//!
//! `cargo run --release --example l1_frames [-- THREADS KEYS CAPACITY FRAMES]`

use std::time::Instant;

use stratacache::L1;
use stratacache::l1::Placement;

/// Per-thread tallies, summed at the end.
#[derive(Default, Clone, Copy)]
struct Tally {
    reads: u64,
    hits: u64,
    inserts: u64,
    evictions: u64,
    writes: u64,
}

/// An entity's state as a frame reads it.
#[derive(Clone, Copy)]
struct Entity {
    id: u64,
    position: [f32; 3],
    version: u32,
}

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("argument {index} must be a number, got {a:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    let threads = arg(1, cores).max(1);
    let keys = arg(2, 200_000).max(1);
    let capacity = arg(3, 32_768) as usize;
    let frames = arg(4, 3_000);
    const READS_PER_FRAME: u64 = 512;
    const WRITE_EVERY: u64 = 20; // 5 % of reads are followed by a write

    let table: L1<u64, Entity> = match L1::with_capacity(capacity) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot build the table: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let table = &table;
                s.spawn(move || {
                    let handle = table.handle();
                    let mut tally = Tally::default();
                    let mut rng = (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    for _ in 0..frames {
                        let frame = handle.pin();
                        for i in 0..READS_PER_FRAME {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            // Skewed: u³ puts most reads on the lowest (hottest) ids.
                            let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
                            let id = (u * u * u * keys as f64) as u64;
                            tally.reads += 1;
                            match frame.get(&id) {
                                Some(e) => {
                                    debug_assert_eq!(e.id, id);
                                    tally.hits += 1;
                                }
                                None => {
                                    // A miss loads the entity (from a slower tier) and caches it.
                                    let e = Entity {
                                        id,
                                        position: [id as f32, 0.0, 0.0],
                                        version: 0,
                                    };
                                    tally.inserts += 1;
                                    if frame.insert(id, e) == Placement::Evicted {
                                        tally.evictions += 1;
                                    }
                                }
                            }
                            if i % WRITE_EVERY == 0
                                && let Some(&e) = frame.get(&id)
                            {
                                let moved = Entity {
                                    position: [e.position[0] + 1.0, e.position[1], 0.0],
                                    version: e.version + 1,
                                    ..e
                                };
                                let _ = frame.replace(id, moved);
                                tally.writes += 1;
                            }
                        }
                        drop(frame);
                        handle.collect(); // between frames: free what this frame retired
                    }
                    tally
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let total = tallies.iter().fold(Tally::default(), |a, b| Tally {
        reads: a.reads + b.reads,
        hits: a.hits + b.hits,
        inserts: a.inserts + b.inserts,
        evictions: a.evictions + b.evictions,
        writes: a.writes + b.writes,
    });
    let ops = total.reads + total.inserts + total.writes;
    println!("stratacache L1 frame loop");
    println!("  threads                {threads:>12}");
    println!("  keys / capacity        {keys:>12} / {}", table.capacity());
    println!("  frames per thread      {frames:>12}");
    println!("  reads                  {:>12}", total.reads);
    println!(
        "  hit ratio              {:>11.2}%",
        100.0 * total.hits as f64 / total.reads as f64
    );
    println!("  inserts after a miss   {:>12}", total.inserts);
    println!("  evictions (CLOCK)      {:>12}", total.evictions);
    println!("  replaces (writes)      {:>12}", total.writes);
    println!("  entries at the end     {:>12}", table.len());
    println!("  wall time              {:>10.2} s", elapsed.as_secs_f64());
    println!(
        "  operations per second  {:>12.0}",
        ops as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  mean time per frame    {:>10.1} µs",
        elapsed.as_secs_f64() * 1e6 / frames as f64
    );
}
