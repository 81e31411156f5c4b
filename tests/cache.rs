//! The tiered cache through its public fronts: thread-local (`std`) and explicit handles,
//! bad input, and a multi-thread test of per-key linearizability across L1 and L2.

use std::time::{Duration, Instant};

use stratacache::{BuildError, Cache, InsertError};

#[test]
fn bad_configurations_are_errors() {
    assert_eq!(
        Cache::<u64, u64>::builder().build().unwrap_err(),
        BuildError::NoCapacity
    );
    assert_eq!(
        Cache::<u64, u64>::builder()
            .capacity(0)
            .build()
            .unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        Cache::<u64, u64>::builder()
            .capacity(10)
            .shards(3)
            .build()
            .unwrap_err(),
        BuildError::ShardsNotPowerOfTwo { shards: 3 }
    );
    assert_eq!(
        Cache::<u64, u64>::builder()
            .capacity(10)
            .memory_budget(0)
            .build()
            .unwrap_err(),
        BuildError::Memory(stratacache::memory::ArenaError::ZeroBudget)
    );
    // A capacity is an upper bound: the cache grows as entries arrive, so even the largest
    // builds, and holds what it is given.
    let huge = Cache::<u64, u64>::builder()
        .capacity(u64::MAX)
        .build()
        .unwrap();
    huge.insert(1, 1).unwrap();
    assert_eq!((huge.get(&1), huge.len()), (Some(1), 1));
    // Asked to allocate it all up front, the cache refuses an absurd capacity when it is
    // built, not by an abort later.
    assert!(matches!(
        Cache::<u64, u64>::builder()
            .capacity(u64::MAX)
            .preallocate(true)
            .build(),
        Err(BuildError::AllocationFailed { .. } | BuildError::CapacityOverflow { .. })
    ));
    // Weighted, the same capacity is a byte budget and costs nothing up front.
    let weighted = Cache::<u64, u64>::builder()
        .capacity(u64::MAX)
        .weigher(|_: &u64, _: &u64| 8)
        .build()
        .unwrap();
    weighted.insert(1, 1).unwrap();
    assert_eq!(weighted.weighted_size(), 8);
}

#[test]
fn a_value_heavier_than_the_cache_is_handed_back() {
    let cache = Cache::builder()
        .capacity(100)
        .weigher(|_: &u32, v: &String| v.len() as u64)
        .build()
        .unwrap();
    cache.insert(1, "x".repeat(100)).unwrap();
    let err = cache.insert(2, "y".repeat(101)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "an entry of weight 101 is heavier than the most one entry may weigh (100: the \
         cache's capacity, or u32::MAX if less)"
    );
    let InsertError::TooHeavy { key, value, .. } = err else {
        unreachable!()
    };
    assert_eq!((key, value.len()), (2, 101));
    assert_eq!(cache.get(&1).map(|v| v.len()), Some(100));
}

#[test]
fn clones_share_one_cache_that_lives_until_the_last_clone() {
    let cache: Cache<u64, String> = Cache::builder().capacity(1_000).build().unwrap();
    let clone = cache.clone();
    cache.insert(1, "one".to_string()).unwrap();
    assert_eq!(
        clone.get(&1).as_deref(),
        Some("one"),
        "an entry is seen through a clone"
    );
    assert_eq!(clone.remove(&1).as_deref(), Some("one"));
    assert_eq!(cache.get(&1), None, "and its removal through the original");
    // A clone is `'static`: a thread takes it without an `Arc` around the cache.
    let writer = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            for key in 0..100 {
                cache.insert(key, key.to_string()).unwrap();
            }
        })
    };
    writer.join().unwrap();
    // The original gone, the clone still holds every entry and the shared statistics.
    drop(cache);
    assert_eq!(clone.len(), 100);
    assert_eq!(clone.get(&42).as_deref(), Some("42"));
    assert_eq!(
        clone.stats().inserts,
        101,
        "one cache's statistics, whoever wrote"
    );
}

#[test]
fn explicit_handles_and_the_thread_local_front_see_the_same_cache() {
    let cache: Cache<String, u32> = Cache::builder()
        .capacity(1_000)
        .promote_after(1)
        .build()
        .unwrap();
    let handle = cache.handle();
    handle.insert("hp".to_string(), 100).unwrap();
    assert_eq!(cache.get("hp"), Some(100));
    assert_eq!(handle.get("hp"), Some(100)); // now from L1
    cache.insert("hp".to_string(), 90).unwrap();
    assert_eq!(
        handle.get("hp"),
        Some(90),
        "the thread-local front's write invalidated L1"
    );
    assert!(handle.contains_key("hp"));
    assert_eq!(handle.remove("hp"), Some(90));
    assert!(!cache.contains_key("hp"));
    handle.collect();
    assert!(cache.is_empty());
}

/// Each key has one writer whose versions only grow; readers must never see a version older
/// than one they saw before, whichever tier served it, while promotions, invalidations and
/// evictions race.
#[test]
fn reads_never_go_back_in_time_across_tiers() {
    let cache: Cache<u64, (u64, u64)> = Cache::builder()
        .capacity(256)
        .shards(4)
        .l1_entries(128)
        .promote_after(1)
        .build()
        .unwrap();
    let keys = 512u64;
    let writers = 2u64;
    let readers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let duration = Duration::from_millis(1_500);
    std::thread::scope(|s| {
        for w in 0..writers {
            let cache = &cache;
            s.spawn(move || {
                let mut version = vec![0u64; keys as usize];
                let mut rng = (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let start = Instant::now();
                let mut ops = 0;
                while ops < 1_000 || start.elapsed() < duration {
                    ops += 1;
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = (rng % (keys / writers)) * writers + w;
                    version[k as usize] += 1;
                    if rng % 8 == 0 {
                        cache.remove(&k);
                    } else {
                        cache.insert(k, (k, version[k as usize])).unwrap();
                    }
                }
            });
        }
        for r in 0..readers as u64 {
            let cache = &cache;
            s.spawn(move || {
                let handle = cache.handle();
                let mut seen = vec![0u64; keys as usize];
                let mut rng = (r + 77).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let start = Instant::now();
                let mut hits = 0u64;
                let mut ops = 0;
                while ops < 1_000 || start.elapsed() < duration {
                    ops += 1;
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Skewed toward low keys so entries get promoted and stay hot.
                    let k = (rng % keys) * (rng >> 60) / 16;
                    if let Some((key, v)) = handle.get(&k) {
                        hits += 1;
                        assert_eq!(key, k, "another key's value");
                        assert!(
                            v >= seen[k as usize],
                            "key {k} went back from {} to {v}",
                            seen[k as usize]
                        );
                        seen[k as usize] = v;
                    }
                    if ops % 256 == 0 {
                        handle.collect();
                    }
                }
                assert!(hits > 0, "a reader never hit: nothing was checked");
            });
        }
    });
    assert!(cache.weighted_size() <= 256);
}

#[test]
fn batches_keep_order_and_hand_back_what_does_not_fit() {
    let cache = Cache::builder()
        .capacity(10)
        .shards(1)
        .weigher(|_: &u64, v: &u64| *v)
        .build()
        .unwrap();
    let refused = cache.insert_many([(1, 3), (2, 11), (3, 4), (4, 12)]);
    let refused: Vec<(u64, u64)> = refused.into_iter().map(InsertError::into_inner).collect();
    assert_eq!(
        refused,
        [(2, 11), (4, 12)],
        "too-heavy entries come back, in order"
    );
    assert_eq!(cache.get_many(&[3, 2, 1]), [Some(4), None, Some(3)]);
    let handle = cache.handle();
    assert!(handle.insert_many([(5, 2)]).is_empty());
    assert_eq!(handle.get_many([&5, &1]), [Some(2), Some(3)]);
    assert_eq!(cache.weighted_size(), 9);
}

#[test]
fn frames_batch_operations_under_one_pin_with_the_same_guarantees() {
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(1_000)
        .promote_after(1)
        .build()
        .unwrap();
    let handle = cache.handle();
    {
        let frame = handle.frame();
        for key in 0..100 {
            frame.insert(key, key).unwrap();
        }
        for key in 0..100 {
            assert_eq!(frame.get(&key), Some(key)); // promoted under the frame's pin
        }
        frame.insert(7, 70).unwrap();
        assert_eq!(
            frame.get(&7),
            Some(70),
            "a write inside a frame invalidates L1 at once"
        );
        assert_eq!(frame.remove(&8), Some(8));
        assert_eq!(frame.get(&8), None);
        assert_eq!(frame.get_with(&8, || 80), 80);
        assert_eq!(frame.get_many([&1, &2, &999]), [Some(1), Some(2), None]);
    }
    handle.collect();
    // Another thread's frame sees what this one wrote, and writes made outside the frame are
    // seen inside it.
    std::thread::scope(|s| {
        s.spawn(|| {
            let frame = cache.frame();
            assert_eq!(frame.get(&7), Some(70));
            cache.insert(9, 90).unwrap();
            assert_eq!(frame.get(&9), Some(90));
        });
    });
    let stats = cache.stats();
    assert_eq!((stats.hits(), stats.misses), (100 + 1 + 2 + 2, 3));
}

#[test]
fn every_policy_is_selectable_in_the_builder() {
    use stratacache::policy::{ClockPolicy, Policy, WTinyLfu};

    fn exercise<P: Policy + Default>(name: &str) {
        let cache: Cache<u64, u64, _, _, P> =
            Cache::builder().capacity(64).policy::<P>().build().unwrap();
        for key in 0..1_000 {
            cache.insert(key, key).unwrap();
            cache.get(&(key / 2));
        }
        assert!(cache.len() <= 64 && cache.weighted_size() <= 64, "{name}");
        assert_eq!(
            cache.get(&999),
            Some(999),
            "{name}: the last insertion is present"
        );
        assert_eq!(cache.remove(&999), Some(999), "{name}");
    }
    exercise::<ClockPolicy>("clock");
    exercise::<ClockPolicy<1>>("clock1");
    exercise::<WTinyLfu>("wtinylfu");
    #[cfg(feature = "policies")]
    {
        use stratacache::policy::{ArcPolicy, Lfu, Lru, Predictive, ProbationClock, S3Fifo, Sieve};
        exercise::<Lru>("lru");
        exercise::<Sieve>("sieve");
        exercise::<S3Fifo>("s3fifo");
        exercise::<ArcPolicy>("arc");
        exercise::<Lfu>("lfu");
        exercise::<Predictive>("predictive");
        exercise::<ProbationClock>("probation_clock");
    }
}

/// The `Policy` methods a test policy wrapping CLOCK (as `.0`) passes on unchanged.
macro_rules! clock_delegates {
    () => {
        fn on_insert(
            &mut self,
            entries: &mut impl Entries<ClockMeta>,
            id: SlotId,
            info: EntryInfo,
        ) {
            self.0.on_insert(entries, id, info);
        }

        fn on_replace(
            &mut self,
            entries: &mut impl Entries<ClockMeta>,
            old: SlotId,
            new: SlotId,
            old_weight: u64,
            info: EntryInfo,
        ) {
            self.0.on_replace(entries, old, new, old_weight, info);
        }

        fn on_remove(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId) {
            self.0.on_remove(entries, id);
        }

        fn evict(&mut self, entries: &mut impl Entries<ClockMeta>, spare: bool) -> Option<SlotId> {
            self.0.evict(entries, spare)
        }

        fn clear(&mut self) {
            self.0.clear();
        }
    };
}

mod told {
    //! A policy that counts the hits it is told of, asking for those `REPORTS` names.
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    use stratacache::policy::Policy;
    use stratacache::policy::{ClockMeta, ClockPolicy, Entries, EntryInfo, HitReports, SlotId};

    pub static TOLD: AtomicUsize = AtomicUsize::new(0);
    /// 0: all, 1: one key in two, 2: none.
    pub static REPORTS: AtomicU8 = AtomicU8::new(0);

    #[derive(Default)]
    pub struct Counting(ClockPolicy);

    impl Policy for Counting {
        type Meta = ClockMeta;

        clock_delegates!();

        fn on_access(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId) {
            TOLD.fetch_add(1, Ordering::Relaxed);
            self.0.on_access(entries, id);
        }

        fn hit_reports(&self) -> HitReports {
            match REPORTS.load(Ordering::Relaxed) {
                0 => HitReports::All,
                1 => HitReports::Sampled { shift: 1 },
                _ => HitReports::Nothing,
            }
        }
    }
}

#[test]
fn readers_record_only_the_hits_their_policy_asks_for() {
    use std::sync::atomic::Ordering;
    let mut told = Vec::new();
    for reports in 0..3 {
        told::REPORTS.store(reports, Ordering::Relaxed);
        // A fixed hash seed, so the keys' shards are the same in every run: one CI run (of
        // 2026-12-05) told 989 of 1,000 hits with the per-process seed, which 190 local runs
        // did not reproduce; the seed-dependent layout (see the comment below) is the suspect.
        let cache: Cache<u64, u64, _, _, told::Counting> = Cache::builder()
            .capacity(10_000)
            .l1_entries(0)
            .hasher(stratacache::hash::FixedState::with_seed(11))
            .policy::<told::Counting>()
            .build()
            .unwrap();
        for key in 0..1_000 {
            cache.insert(key, key).unwrap();
        }
        told::TOLD.store(0, Ordering::Relaxed);
        for key in 0..1_000 {
            assert_eq!(cache.get(&key), Some(key));
        }
        // A shard's next write replays what its readers recorded: write to every shard. 200
        // keys left one of the 8 without a write in about 2 processes in 100 (the default
        // hasher's bits that choose the shard are skewed for sequential keys under some
        // seeds; see benches/results/NOTES.md); 2 000 reach all.
        for key in 1_000..3_000 {
            cache.insert(key, 0).unwrap();
        }
        told.push(told::TOLD.load(Ordering::Relaxed));
    }
    assert_eq!(told[0], 1_000, "every hit told");
    assert!((300..700).contains(&told[1]), "a sample told: {}", told[1]);
    assert_eq!(told[2], 0, "no hit told");
}

mod capped {
    //! CLOCK whose shards may hold at most 64 slots (as a policy packing bits beside its ids).
    use stratacache::policy::Policy;
    use stratacache::policy::{ClockMeta, ClockPolicy, Entries, EntryInfo, SlotId};

    #[derive(Default)]
    pub struct Capped(ClockPolicy);

    impl Policy for Capped {
        type Meta = ClockMeta;
        const MAX_SLOTS: usize = 64;

        clock_delegates!();

        fn on_access(&mut self, entries: &mut impl Entries<ClockMeta>, id: SlotId) {
            self.0.on_access(entries, id);
        }
    }
}

#[test]
fn a_shard_never_holds_more_slots_than_its_policy_can_name() {
    let cache: Cache<u64, u64, _, _, capped::Capped> = Cache::builder()
        .capacity(10_000)
        .shards(1)
        .l1_entries(0)
        .policy::<capped::Capped>()
        .build()
        .unwrap();
    let mut stored = 0;
    for key in 0..1_000 {
        match cache.insert(key, key) {
            Ok(()) => stored += 1,
            // Refused as out of memory, the entry handed back; evictions make room once the
            // slots they retired are reclaimed.
            Err(InsertError::OutOfMemory { key: k, value }) => assert_eq!((k, value), (key, key)),
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(
            cache.len() <= 64,
            "{} entries in a shard of 64 slots",
            cache.len()
        );
    }
    assert!(stored >= 64, "only {stored} insertions stored");
    // At a quiet point the retired slots come back, and the shard takes entries again.
    for _ in 0..4 {
        cache.collect();
    }
    cache.insert(5_000, 1).unwrap();
    assert_eq!(cache.get(&5_000), Some(1));
}
