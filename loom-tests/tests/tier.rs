//! Loom models of the tiered cache: its consistency rule (a promotion from L2 into L1 racing a
//! write or a removal of the same key must not leave a stale copy in L1) and its single-flight
//! protocol (`get_with` runs one initialiser per concurrent miss; a failing leader
//! wakes its waiters and hands its error to those expecting its type; computations on one key
//! take turns).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use stratacache::UnitWeigher;
use stratacache::hash::FixedState;
use stratacache::policy::ProbationClock;
use stratacache::{Cache, CacheBuilder, InsertOptions, ManualClock, Priority};

/// The models use the lean `ProbationClock` policy: an L2 policy's hit path only touches
/// relaxed statistics that order nothing (the tier's protocol is the shard lock, L1's set
/// lock and the epoch), and the default W-TinyLFU's makes up to sixteen such accesses per hit
/// (sketch counters, tallies), each one more interleaving for loom to explore: with it one
/// model ran past four minutes instead of seconds. The policy is a type parameter; the
/// protocol is the same.
type Tiered = Cache<u64, u64, FixedState, UnitWeigher, ProbationClock>;

/// One shard, one L1 set, promotion on the first L2 hit.
fn cache() -> Arc<Tiered> {
    let cache = Cache::builder()
        .capacity(8)
        .shards(1)
        .l1_entries(1)
        .promote_after(1)
        .hasher(FixedState::with_seed(3))
        .policy::<ProbationClock>()
        .build()
        .unwrap();
    Arc::new(cache)
}

/// One shard on a manual clock, its timing set by `timing` (a time to idle, a refresh). The
/// clock's own atomic is loom's; the `Arc` that shares it is std's (the cache takes a `Clock`,
/// which std's `Arc` of one is).
fn on_clock(
    timing: impl FnOnce(CacheBuilder<u64, u64>) -> CacheBuilder<u64, u64>,
) -> (Arc<Tiered>, std::sync::Arc<ManualClock>) {
    let clock = std::sync::Arc::new(ManualClock::new());
    let builder = Cache::builder()
        .capacity(8)
        .shards(1)
        .clock(std::sync::Arc::clone(&clock));
    let cache = timing(builder)
        .hasher(FixedState::with_seed(3))
        .policy::<ProbationClock>()
        .build()
        .unwrap();
    (Arc::new(cache), clock)
}

/// A reader promotes the old value while a writer replaces it with `options`: once the write
/// has returned, every read (on the writer's thread and after both join) sees the new value.
fn promotion_vs_replacement(options: InsertOptions) {
    loom::model(move || {
        let cache = cache();
        cache.handle().insert(1, 10).unwrap();
        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let seen = cache.handle().get(&1);
                assert!(matches!(seen, Some(10 | 11)), "{seen:?}");
            })
        };
        let h = cache.handle();
        h.insert_with(1, 11, options).unwrap();
        assert_eq!(h.get(&1), Some(11), "read after own write");
        reader.join().unwrap();
        assert_eq!(
            cache.handle().get(&1),
            Some(11),
            "no stale copy survived in L1"
        );
    });
}

/// An ordinary write invalidates L1's copy under the shard's write lock.
#[test]
fn promotion_vs_write() {
    promotion_vs_replacement(InsertOptions::new());
}

/// A reader promotes a value while a writer removes the key: after the removal, nothing.
#[test]
fn promotion_vs_remove() {
    loom::model(|| {
        let cache = cache();
        cache.handle().insert(1, 10).unwrap();
        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                let seen = cache.handle().get(&1);
                assert!(matches!(seen, None | Some(10)), "{seen:?}");
            })
        };
        let h = cache.handle();
        assert_eq!(h.remove(&1), Some(10));
        assert_eq!(h.get(&1), None, "read after own removal");
        reader.join().unwrap();
        assert_eq!(cache.handle().get(&1), None, "no stale copy survived in L1");
    });
}

/// Two threads miss on one key at once: the initialiser runs exactly once, whoever leads, and
/// both get its value (the waiter parks on a loom condvar until the leader publishes). It
/// covers the flight's ticket too: a caller whose lookup missed just before the leader stored
/// and settled must look again, or join; with the look again always skipped, or the ticket's
/// Acquire read and the settlement's Release increase both Relaxed, this model fails.
#[test]
fn single_flight_runs_the_initialiser_once() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    loom::model(|| {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let load = |runs: &AtomicUsize| {
            runs.fetch_add(1, Ordering::SeqCst);
            10
        };
        let other = {
            let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
            thread::spawn(move || cache.handle().get_with(&1, || load(&runs)))
        };
        let mine = cache.handle().get_with(&1, || load(&runs));
        assert_eq!((mine, other.join().unwrap()), (10, 10));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// A leader whose initialiser fails wakes its waiter, which loads the value itself: nobody
/// waits forever and the value the waiter made is what stays.
#[test]
fn single_flight_survives_a_failing_leader() {
    loom::model(|| {
        let cache = cache();
        let failing = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                cache
                    .handle()
                    .try_get_with_options(&1, || Err::<u64, ()>(()), InsertOptions::new())
            })
        };
        let loaded = cache.handle().get_with(&1, || 20);
        assert_eq!(loaded, 20);
        let other = failing.join().unwrap();
        assert!(other.is_err() || other == Ok(20), "{other:?}");
        assert_eq!(cache.handle().get(&1), Some(20));
    });
}

/// A leader whose initialiser fails hands its error to a waiter expecting the same type: the
/// waiter either joined the flight and returns that very error, or ran alone (before, storing
/// its value, which the other then finds; or after).
#[test]
fn a_failing_leaders_error_reaches_its_waiter() {
    loom::model(|| {
        let cache = cache();
        let failing = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || cache.handle().try_get_with(&1, || Err::<u64, u8>(7)))
        };
        let mine = cache.handle().try_get_with(&1, || Ok::<u64, u8>(20));
        let theirs = failing.join().unwrap();
        match (&mine, &theirs) {
            (Err(mine), Err(theirs)) => assert!(std::sync::Arc::ptr_eq(mine, theirs)),
            (Ok(20), Ok(20) | Err(_)) => {}
            other => panic!("{other:?}"),
        }
    });
}

/// Two computations on one key take turns: each sees what the other left, and neither
/// update is lost.
#[test]
fn computations_on_one_key_take_turns() {
    loom::model(|| {
        let cache = cache();
        let count = |cache: &Tiered| {
            cache
                .handle()
                .entry(&1)
                .and_upsert_with(|now| now.unwrap_or(0) + 1)
                .unwrap()
        };
        let other = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || count(&cache))
        };
        let mine = count(&cache);
        let theirs = other.join().unwrap();
        assert_eq!(mine.min(theirs), 1);
        assert_eq!(mine.max(theirs), 2);
        assert_eq!(cache.handle().get(&1), Some(2));
    });
}

/// An entry's idle deadline is published with it: a reader that finds an entry another thread
/// stored, at a time past that entry's idle deadline, never returns it (it would, were the
/// deadline it read the slot's initial "never").
#[test]
fn an_idle_deadline_is_published_with_its_entry() {
    loom::model(|| {
        use core::time::Duration;
        use stratacache::Clock;
        let (cache, clock) = on_clock(|b| b.time_to_idle(Duration::from_nanos(100)));
        let reader = {
            let (cache, clock) = (Arc::clone(&cache), std::sync::Arc::clone(&clock));
            thread::spawn(move || {
                let seen = clock.now_nanos();
                (seen, cache.handle().get(&1))
            })
        };
        cache.handle().insert(1, 10).unwrap(); // at 0: idle until 100
        clock.advance(Duration::from_nanos(200));
        let (seen, got) = reader.join().unwrap();
        if seen >= 200 {
            assert_eq!(got, None, "found at {seen}, idle since 100");
        }
    });
}

/// Two loader reads of an entry past its refresh time: exactly one reloads it (a
/// compare-and-swap claims the refresh), the other returns the current value or the new one.
#[test]
fn a_due_refresh_is_claimed_once() {
    loom::model(|| {
        use core::sync::atomic::{AtomicUsize, Ordering};
        use core::time::Duration;
        let (cache, clock) = on_clock(|b| b.refresh_after_write(Duration::from_nanos(100)));
        cache.handle().insert(1, 10).unwrap();
        clock.advance(Duration::from_nanos(100));
        let reloads = std::sync::Arc::new(AtomicUsize::new(0));
        let read = |cache: &Tiered, reloads: &AtomicUsize| {
            cache.handle().get_with(&1, || {
                reloads.fetch_add(1, Ordering::Relaxed);
                11
            })
        };
        let other = {
            let (cache, reloads) = (Arc::clone(&cache), std::sync::Arc::clone(&reloads));
            thread::spawn(move || read(&cache, &reloads))
        };
        let mine = read(&cache, &reloads);
        let theirs = other.join().unwrap();
        assert_eq!(reloads.load(Ordering::Relaxed), 1);
        assert!([mine, theirs].contains(&11), "{mine} {theirs}");
        assert!([10, 11].contains(&mine) && [10, 11].contains(&theirs));
        assert_eq!(cache.handle().get(&1), Some(11));
    });
}

/// A `Critical` write copies its value into L1 under the shard's write lock while a reader
/// promotes the old value under the read lock: the copies are ordered by that lock, so once
/// the write has returned only the new value is ever read.
#[test]
fn promotion_vs_critical_write() {
    promotion_vs_replacement(InsertOptions::new().priority(Priority::Critical));
}

/// A cache with an L1 replica per node of a simulated two-socket machine. Handles take their
/// replica from the locator when they are made: the first made reads node 0's, the second
/// node 1's.
fn replicated() -> Arc<Tiered> {
    use core::sync::atomic::{AtomicU32, Ordering};
    use stratacache_platform::Topology;
    let next_cpu = AtomicU32::new(0);
    let cache = Cache::builder()
        .capacity(8)
        .shards(1)
        .l1_entries(1)
        .promote_after(1)
        .topology(Topology::from_nodes([(0, [0]), (1, [1])]).unwrap())
        .cpu_locator(move || Some(next_cpu.fetch_add(1, Ordering::Relaxed) % 2))
        // The global allocator rather than an arena per node: the replicas' protocol is the
        // subject here (the arena's has its own models, in `slab.rs`), and two arenas overflow
        // a loom thread's stack.
        .memory_per_node(Vec::new())
        .hasher(FixedState::with_seed(3))
        .policy::<ProbationClock>()
        .build()
        .unwrap();
    assert_eq!(cache.l1_replicas(), 2);
    Arc::new(cache)
}

/// A reader on node 1 promotes the old value into its replica while a writer on node 0
/// replaces it: once the write has returned, the reader on node 1 sees the new value, and so
/// does the writer's own node. A write invalidates every replica before it returns.
#[test]
fn promotion_on_one_socket_vs_write_on_another() {
    loom::model(|| {
        use loom::sync::atomic::{AtomicBool, Ordering};
        let cache = replicated();
        let h0 = cache.handle(); // node 0
        h0.insert(1, 10).unwrap();
        let written = Arc::new(AtomicBool::new(false));
        let reader = {
            let (cache, written) = (Arc::clone(&cache), Arc::clone(&written));
            thread::spawn(move || {
                let h1 = cache.handle(); // node 1
                let seen = h1.get(&1);
                assert!(matches!(seen, Some(10 | 11)), "{seen:?}");
                // Acquire: pairs with the writer's Release store after its insert returned.
                while !written.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                assert_eq!(h1.get(&1), Some(11), "node 1's replica kept a stale copy");
            })
        };
        h0.insert(1, 11).unwrap();
        written.store(true, Ordering::Release);
        assert_eq!(h0.get(&1), Some(11), "read after own write");
        reader.join().unwrap();
        assert_eq!(h0.get(&1), Some(11));
    });
}

/// A `Critical` entry is copied into every replica, and its removal from node 0 leaves no copy
/// on node 1, even while node 1 reads it.
#[test]
fn critical_copies_on_every_socket_vs_remove() {
    loom::model(|| {
        use loom::sync::atomic::{AtomicBool, Ordering};
        let cache = replicated();
        let h0 = cache.handle(); // node 0
        h0.insert_with(1, 10, InsertOptions::new().priority(Priority::Critical))
            .unwrap();
        let removed = Arc::new(AtomicBool::new(false));
        let reader = {
            let (cache, removed) = (Arc::clone(&cache), Arc::clone(&removed));
            thread::spawn(move || {
                let h1 = cache.handle(); // node 1
                let seen = h1.get(&1);
                assert!(matches!(seen, None | Some(10)), "{seen:?}");
                // Acquire: pairs with the Release store after the removal returned.
                while !removed.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                assert_eq!(h1.get(&1), None, "node 1's replica kept a removed copy");
            })
        };
        assert_eq!(h0.remove(&1), Some(10));
        removed.store(true, Ordering::Release);
        reader.join().unwrap();
    });
}

/// A value whose L1 copy (its node: hash, key, value and deadline, 280 bytes) lies in a size
/// class that nothing else of this cache uses, so the model can spend that class alone.
type Big = [u64; 32];
/// The layout of one L1 copy of a `Big` value, for spending its class.
type BigNode = [u64; 35];

/// A cache on an arena whose budget is spent before the model's threads start, with key 1
/// `Critical` (its copy in L1, value `[10; 32]`) and room left in L2's shard for one more slot.
fn critical_on_spent_budget() -> (
    Arc<Cache<u64, Big, FixedState, UnitWeigher, ProbationClock>>,
    Spent,
) {
    use core::alloc::Layout;
    use stratacache::memory::Arena;
    let arena = std::sync::Arc::new(Arena::builder().budget(64 << 10).build().unwrap());
    let cache = Cache::builder()
        .capacity(8)
        .shards(1)
        .l1_entries(1)
        .promote_after(1)
        .memory(std::sync::Arc::clone(&arena))
        .hasher(FixedState::with_seed(3))
        .policy::<ProbationClock>()
        .build()
        .unwrap();
    let critical = InsertOptions::new().priority(Priority::Critical);
    cache.handle().insert_with(1, [10; 32], critical).unwrap();
    // Spend the budget: whole spans until none can be carved, then every block left in the
    // copies' class.
    let mut spent = Spent {
        arena,
        blocks: Vec::new(),
    };
    spent.take_all(Layout::new::<[u8; 7168]>());
    spent.take_all(Layout::new::<BigNode>());
    assert!(!spent.blocks.is_empty());
    (Arc::new(cache), spent)
}

/// Blocks taken from an arena to spend its budget, given back when the model ends.
struct Spent {
    arena: std::sync::Arc<stratacache::memory::Arena>,
    blocks: Vec<(core::ptr::NonNull<u8>, core::alloc::Layout)>,
}

impl Spent {
    fn take_all(&mut self, layout: core::alloc::Layout) {
        while let Ok(block) = self.arena.allocate(layout) {
            self.blocks.push((block.cast(), layout));
        }
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        for (block, layout) in self.blocks.drain(..) {
            // SAFETY: taken from this arena with this layout, given back once.
            unsafe { self.arena.deallocate(block, layout) };
        }
    }
}

/// Issue 14 A: a `Critical` replacement copies its value into L1, and when L1's memory is spent
/// the copy cannot be made. The old copy must then leave L1, whatever a reader promoting the
/// key meanwhile does: once the write has returned, every read sees the new value. Two
/// mechanisms each keep this (the shard drops a replaced entry's copy under its writer lock,
/// and L1 drops the old copy when it cannot allocate the new one); with both removed, this
/// model reads the old value after the write.
#[test]
fn critical_replacement_whose_copy_cannot_be_allocated_vs_promotion() {
    let mut model = loom::model::Builder::new();
    // Spending the budget takes a few hundred atomic operations, each a branch to loom, on
    // one thread (the model's own waits for it): no interleaving to explore there.
    model.max_branches = 50_000;
    model.check(|| {
        // An arena is built on the stack before it moves into its `Arc`, more than a loom
        // thread's default stack holds: the model runs on a thread with a larger one.
        let model = thread::Builder::new()
            .stack_size(1 << 18)
            .spawn(|| {
                let (cache, spent) = critical_on_spent_budget();
                let reader = {
                    let cache = Arc::clone(&cache);
                    thread::spawn(move || {
                        let seen = cache.handle().get(&1).map(|v| v[0]);
                        assert!(matches!(seen, Some(10 | 11)), "{seen:?}");
                    })
                };
                let h = cache.handle();
                let critical = InsertOptions::new().priority(Priority::Critical);
                h.insert_with(1, [11; 32], critical).unwrap();
                assert_eq!(h.get(&1).map(|v| v[0]), Some(11), "read after own write");
                reader.join().unwrap();
                assert_eq!(
                    cache.handle().get(&1).map(|v| v[0]),
                    Some(11),
                    "no stale copy survived in L1"
                );
                drop(h);
                drop(cache);
                drop(spent);
            })
            .unwrap();
        model.join().unwrap();
    });
}

/// A value that fails a read after its drop: `Clone` checks it is still alive (a loom
/// access, so loom may schedule a drop between a reader finding the entry and cloning it).
struct Canary(loom::sync::atomic::AtomicBool);

impl Canary {
    fn new() -> Self {
        Self(loom::sync::atomic::AtomicBool::new(true))
    }
}

impl Clone for Canary {
    fn clone(&self) -> Self {
        assert!(
            self.0.load(loom::sync::atomic::Ordering::SeqCst),
            "read a value after its drop"
        );
        Self::new()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.0.store(false, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// A reader that found an entry keeps it readable while the writer removes it and another,
/// hands both over to the epoch as one batch (a batch is two under loom) and reclaims at its
/// quiet points: the drop waits until the reader has unpinned.
#[test]
fn a_retired_batch_is_dropped_only_after_its_readers() {
    loom::model(|| {
        let cache: Arc<Cache<u64, Canary, FixedState, UnitWeigher, ProbationClock>> = Arc::new(
            Cache::builder()
                .capacity(8)
                .shards(1)
                .l1_entries(0)
                .hasher(FixedState::with_seed(3))
                .policy::<ProbationClock>()
                .build()
                .unwrap(),
        );
        for key in 1..=3 {
            assert!(cache.handle().insert(key, Canary::new()).is_ok());
        }
        let reader = {
            let cache = Arc::clone(&cache);
            thread::spawn(move || drop(cache.handle().get(&1)))
        };
        let h = cache.handle();
        assert!(h.remove(&1).is_some());
        assert!(h.remove(&2).is_some());
        h.collect();
        reader.join().unwrap();
        h.collect();
    });
}
