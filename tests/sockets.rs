//! Per-socket L1 replicas on simulated 2- and 4-socket machines: an explicit topology and a
//! fake CPU for each thread. A thread reads its node's replica; promotions fill the reader's
//! replica only; `Critical` entries are copied into every replica; writes and removals reach
//! every replica before they return.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stratacache::{Cache, CacheStats, InsertOptions, Priority};
use stratacache_platform::Topology;

thread_local! {
    /// The CPU this test thread pretends to run on.
    static FAKE_CPU: Cell<u32> = const { Cell::new(0) };
}

fn fake_cpu() -> Option<u32> {
    Some(FAKE_CPU.with(Cell::get))
}

/// Runs `f` on a new thread that pretends to run on `cpu`.
fn on_cpu<R: Send>(cpu: u32, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            FAKE_CPU.with(|c| c.set(cpu));
            f()
        })
        .join()
        .unwrap()
    })
}

/// `nodes` nodes of two CPUs each: node n has CPUs 2n and 2n + 1.
fn sockets(nodes: u32) -> Topology {
    Topology::from_nodes((0..nodes).map(|n| (n, [2 * n, 2 * n + 1]))).unwrap()
}

fn cache(nodes: u32) -> Cache<u64, u64> {
    Cache::builder()
        .capacity(10_000)
        .promote_after(1)
        .topology(sockets(nodes))
        .cpu_locator(fake_cpu)
        .build()
        .unwrap()
}

fn delta(before: CacheStats, after: CacheStats) -> (u64, u64) {
    (
        after.l1_hits - before.l1_hits,
        after.l2_hits - before.l2_hits,
    )
}

#[test]
fn a_promotion_fills_the_readers_replica_only() {
    let cache = cache(2);
    assert_eq!(cache.l1_replicas(), 2);
    cache.insert(7, 70).unwrap();
    let before = cache.stats();
    on_cpu(2, || {
        // Node 1: an L2 hit that promotes into node 1's replica, then an L1 hit there.
        assert_eq!(cache.get(&7), Some(70));
        assert_eq!(cache.get(&7), Some(70));
    });
    assert_eq!(delta(before, cache.stats()), (1, 1));
    let before = cache.stats();
    on_cpu(1, || assert_eq!(cache.get(&7), Some(70)));
    assert_eq!(
        delta(before, cache.stats()),
        (0, 1),
        "node 0's replica had no copy"
    );
    // A write from node 0 reaches node 1's copy before it returns.
    on_cpu(0, || cache.insert(7, 71).unwrap());
    on_cpu(3, || assert_eq!(cache.get(&7), Some(71)));
    on_cpu(0, || assert_eq!(cache.remove(&7), Some(71)));
    on_cpu(2, || assert_eq!(cache.get(&7), None));
}

#[test]
fn critical_entries_are_on_every_socket_and_leave_every_socket() {
    let cache = cache(4);
    assert_eq!(cache.l1_replicas(), 4);
    on_cpu(5, || {
        cache
            .insert_with(1, 10, InsertOptions::new().priority(Priority::Critical))
            .unwrap();
    });
    let before = cache.stats();
    for cpu in [0, 2, 4, 6] {
        on_cpu(cpu, || assert_eq!(cache.get(&1), Some(10)));
    }
    assert_eq!(
        delta(before, cache.stats()),
        (4, 0),
        "an L1 hit on every node"
    );
    on_cpu(7, || cache.insert(1, 11).unwrap());
    for cpu in [0, 2, 4, 6] {
        on_cpu(cpu, || assert_eq!(cache.get(&1), Some(11)));
    }
    on_cpu(3, || assert_eq!(cache.remove(&1), Some(11)));
    for cpu in [1, 3, 5, 7] {
        on_cpu(cpu, || assert_eq!(cache.get(&1), None));
    }
}

#[test]
fn handles_keep_the_replica_of_the_node_they_were_made_on() {
    let cache = cache(2);
    cache.insert(3, 30).unwrap();
    on_cpu(2, || {
        let handle = cache.handle();
        assert_eq!(handle.get(&3), Some(30)); // promotes into node 1's replica
        let before = cache.stats();
        FAKE_CPU.with(|c| c.set(0)); // the thread moves; the handle keeps node 1
        assert_eq!(handle.get(&3), Some(30));
        assert_eq!(delta(before, cache.stats()), (1, 0));
    });
}

#[test]
fn one_replica_when_asked_or_when_there_is_one_node() {
    let off: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .topology(sockets(4))
        .per_socket_l1(false)
        .build()
        .unwrap();
    assert_eq!(off.l1_replicas(), 1);
    let one_node: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .topology(sockets(1))
        .build()
        .unwrap();
    assert_eq!(one_node.l1_replicas(), 1);
}

#[test]
fn readers_on_every_socket_never_see_a_value_older_than_a_completed_write() {
    // The race only reaches L1 when a reader's promotion finds its shard's lock free; on a
    // loaded machine the writers may hold it at every try, so a run that promoted nothing is
    // run again (every run checks every read).
    for _ in 0..5 {
        let stats = racing_writers_and_readers_on_two_sockets();
        if stats.l1_hits > 0 && stats.promotions > 0 {
            return;
        }
    }
    panic!("five runs and L1 never took part");
}

/// One run of the race above; its statistics.
fn racing_writers_and_readers_on_two_sockets() -> stratacache::CacheStats {
    const KEYS: u64 = 64;
    let cache = Cache::builder()
        .capacity(48) // smaller than the keys: evictions invalidate replicas too
        .promote_after(1)
        .l1_entries(32)
        .topology(sockets(2))
        .cpu_locator(fake_cpu)
        .build()
        .unwrap();
    let cache: Arc<Cache<u64, u64>> = Arc::new(cache);
    // The last version of each key whose write has returned.
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let rounds = 20_000u64;
    std::thread::scope(|s| {
        // One writer per node, each owning half the keys.
        for writer in 0..2u64 {
            let (cache, done) = (Arc::clone(&cache), Arc::clone(&done));
            s.spawn(move || {
                FAKE_CPU.with(|c| c.set(writer as u32 * 2));
                for round in 1..=rounds {
                    let key = (round * 7 + writer) % KEYS / 2 * 2 + writer;
                    let version = round;
                    cache.insert(key, version).unwrap();
                    // Release: pairs with the readers' Acquire loads.
                    done[key as usize].fetch_max(version, Ordering::Release);
                }
            });
        }
        // Two readers per node.
        for reader in 0..4u32 {
            let (cache, done) = (Arc::clone(&cache), Arc::clone(&done));
            s.spawn(move || {
                FAKE_CPU.with(|c| c.set(reader));
                for round in 0..rounds * 2 {
                    let key = (round * 13 + u64::from(reader)) % KEYS;
                    // Acquire: the write of this version (or a later one) has returned.
                    let floor = done[key as usize].load(Ordering::Acquire);
                    if let Some(seen) = cache.get(&key) {
                        assert!(
                            seen >= floor,
                            "node {} read {seen} for key {key} after {floor} was written",
                            reader / 2
                        );
                    }
                }
            });
        }
    });
    cache.stats()
}

#[test]
fn shards_are_striped_over_the_nodes_arenas() {
    use stratacache::memory::Arena;
    let arenas: Vec<Arc<Arena>> = (0..2).map(|_| Arc::new(Arena::new())).collect();
    let cache: Cache<u64, [u64; 4]> = Cache::builder()
        .capacity(20_000)
        .shards(8)
        .topology(sockets(2))
        .memory_per_node(arenas.clone())
        .preallocate(true)
        .build()
        .unwrap();
    let (a, b) = (arenas[0].stats().in_use, arenas[1].stats().in_use);
    assert!(
        a > 0 && a == b,
        "four shards' room on each node: {a} and {b} bytes"
    );
    for key in 0..20_000 {
        cache.insert(key, [key; 4]).unwrap();
    }
    assert!(
        cache.stats().arena.unwrap().in_use <= a + b,
        "reserved room, no growth"
    );
}

#[test]
fn several_nodes_get_an_arena_each_by_default_and_one_node_none() {
    let striped: Cache<u64, u64> = Cache::builder()
        .capacity(10_000)
        .topology(sockets(2))
        .build()
        .unwrap();
    striped.insert(1, 1).unwrap();
    let stats = striped.stats().arena.expect("an arena per node");
    assert!(stats.in_use > 0, "the entries are in the nodes' arenas");
    let single: Cache<u64, u64> = Cache::builder()
        .capacity(10_000)
        .topology(sockets(1))
        .build()
        .unwrap();
    assert_eq!(
        single.stats().arena,
        None,
        "one node: the global allocator, as before"
    );
}
