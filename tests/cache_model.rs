//! Differential tests of the tiered `Cache` against a sequential model, on a manual clock.
//!
//! - **No capacity pressure** (the capacity exceeds the key space): the cache must agree with
//!   a map of (value, deadline) exactly: every lookup, length, loader call and listener event,
//!   with time to live, priorities, L1 promotion (after one hit, into a small L1) and
//!   invalidation all in play.
//! - **Evicting** (a capacity far below the key space): every hit must be the key's latest
//!   write, the budget must hold, and every entry the listener hears of must have been the
//!   latest value of its key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use stratacache::{Cache, InsertOptions, ManualClock, Priority, RemovalCause};

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32, Priority, Option<u8>),
    Get(u16),
    Peek(u16),
    Remove(u16),
    GetOrInsert(u16, u32),
    Advance(u8),
    EvictExpired,
    Clear,
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Medium),
        Just(Priority::High),
        Just(Priority::Critical)
    ]
}

fn ops(keys: u16) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..keys, any::<u32>(), priority(), proptest::option::of(1u8..20))
            .prop_map(|(k, v, p, ttl)| Op::Insert(k, v, p, ttl)),
        8 => (0..keys).prop_map(Op::Get),
        2 => (0..keys).prop_map(Op::Peek),
        2 => (0..keys).prop_map(Op::Remove),
        2 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        2 => (1u8..10).prop_map(Op::Advance),
        1 => Just(Op::EvictExpired),
        1 => Just(Op::Clear),
    ];
    proptest::collection::vec(op, 1..300)
}

type Events = Arc<Mutex<Vec<(u16, u32, RemovalCause)>>>;

fn build(capacity: u64, clock: &Arc<ManualClock>) -> (Cache<u16, u32>, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let cache = Cache::builder()
        .capacity(capacity)
        .shards(4)
        .l1_entries(16)
        .promote_after(1)
        .clock(Arc::clone(clock))
        .eviction_listener(move |k: &u16, v: &u32, cause| {
            sink.lock().unwrap().push((*k, *v, cause))
        })
        .build()
        .unwrap();
    (cache, events)
}

fn options(priority: Priority, ttl: Option<u8>) -> InsertOptions {
    let options = InsertOptions::new().priority(priority);
    match ttl {
        Some(ms) => options.time_to_live(Duration::from_millis(u64::from(ms))),
        None => options,
    }
}

/// The model: each present key's value and deadline (ms; `u64::MAX` for none). Expired
/// entries stay present until something reclaims them, as in the cache.
#[derive(Default)]
struct Model {
    entries: HashMap<u16, (u32, u64)>,
    now: u64,
}

impl Model {
    fn live(&self, k: u16) -> Option<u32> {
        self.entries
            .get(&k)
            .filter(|(_, deadline)| *deadline > self.now)
            .map(|(v, _)| *v)
    }

    /// A lookup of `k`: its live value, or (reclaiming an expired entry) the event it makes.
    fn lookup(&mut self, k: u16, events: &mut Vec<(u16, u32, RemovalCause)>) -> Option<u32> {
        let live = self.live(k);
        if live.is_none()
            && let Some((v, _)) = self.entries.remove(&k)
        {
            events.push((k, v, RemovalCause::Expired));
        }
        live
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn without_capacity_pressure_the_cache_is_an_exact_map(ops in ops(64)) {
        let clock = Arc::new(ManualClock::new());
        let (cache, events) = build(1_000, &clock);
        let mut model = Model::default();
        let mut expected: Vec<(u16, u32, RemovalCause)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, v, p, ttl) => {
                    cache.insert_with(k, v, options(p, ttl)).unwrap();
                    let deadline = ttl.map_or(u64::MAX, |ms| model.now + u64::from(ms));
                    if let Some((old, old_deadline)) = model.entries.insert(k, (v, deadline)) {
                        let cause = if old_deadline > model.now {
                            RemovalCause::Replaced
                        } else {
                            RemovalCause::Expired
                        };
                        expected.push((k, old, cause));
                    }
                }
                Op::Get(k) => {
                    let want = model.lookup(k, &mut expected);
                    prop_assert_eq!(cache.get(&k), want, "get {}", k);
                }
                Op::Peek(k) => {
                    prop_assert_eq!(cache.peek(&k), model.live(k));
                    prop_assert_eq!(cache.contains_key(&k), model.live(k).is_some());
                }
                Op::Remove(k) => {
                    let removed = model.entries.remove(&k);
                    if let Some((v, _)) = removed {
                        expected.push((k, v, RemovalCause::Removed));
                    }
                    prop_assert_eq!(cache.remove(&k), removed.map(|(v, _)| v));
                }
                Op::GetOrInsert(k, v) => {
                    let want = model.lookup(k, &mut expected).unwrap_or_else(|| {
                        model.entries.insert(k, (v, u64::MAX));
                        v
                    });
                    prop_assert_eq!(cache.get_with(&k, || v), want);
                }
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(u64::from(ms)));
                    model.now += u64::from(ms);
                }
                Op::EvictExpired => {
                    let now = model.now;
                    let mut gone: Vec<u16> = model
                        .entries
                        .iter()
                        .filter(|(_, (_, d))| *d <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    gone.sort_unstable();
                    for k in &gone {
                        let (v, _) = model.entries.remove(k).unwrap();
                        expected.push((*k, v, RemovalCause::Expired));
                    }
                    prop_assert_eq!(cache.evict_expired(), gone.len());
                }
                Op::Clear => {
                    for (k, (v, _)) in model.entries.drain() {
                        expected.push((k, v, RemovalCause::Removed));
                    }
                    cache.clear();
                }
            }
            prop_assert_eq!(cache.len(), model.entries.len());
        }
        let mut heard = events.lock().unwrap().clone();
        heard.sort_unstable_by_key(|&(k, v, c)| (k, v, c as u8));
        expected.sort_unstable_by_key(|&(k, v, c)| (k, v, c as u8));
        prop_assert_eq!(heard, expected);
    }

    #[test]
    fn under_eviction_every_hit_is_the_latest_write(ops in ops(200), capacity in 1u64..40) {
        let clock = Arc::new(ManualClock::new());
        let (cache, events) = build(capacity, &clock);
        let mut latest: HashMap<u16, (u32, u64)> = HashMap::new();
        let mut written: std::collections::HashSet<(u16, u32)> = Default::default();
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Insert(k, v, p, ttl) => {
                    cache.insert_with(k, v, options(p, ttl)).unwrap();
                    written.insert((k, v));
                    latest.insert(k, (v, ttl.map_or(u64::MAX, |ms| now + u64::from(ms))));
                    prop_assert!(cache.weighted_size() <= capacity);
                }
                Op::Get(k) | Op::Peek(k) => {
                    if let Some(v) = cache.get(&k) {
                        let (want, deadline) = latest[&k];
                        prop_assert_eq!(v, want);
                        prop_assert!(deadline > now, "an expired entry was returned");
                    }
                }
                Op::Remove(k) => {
                    if let Some(v) = cache.remove(&k) {
                        prop_assert_eq!(v, latest[&k].0);
                    }
                    latest.remove(&k);
                }
                Op::GetOrInsert(k, v) => {
                    let got = cache.get_with(&k, || v);
                    match latest.get(&k) {
                        Some(&(want, deadline)) if got == want && deadline > now => {}
                        _ => {
                            prop_assert_eq!(got, v, "a miss returns the loaded value");
                            written.insert((k, v));
                            latest.insert(k, (v, u64::MAX));
                        }
                    }
                }
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(u64::from(ms)));
                    now += u64::from(ms);
                }
                Op::EvictExpired => {
                    cache.evict_expired();
                }
                Op::Clear => {
                    cache.clear();
                    latest.clear();
                }
            }
            prop_assert!(cache.len() as u64 <= capacity);
        }
        // Whatever the listener heard of was written to that key at some point.
        for (k, v, cause) in events.lock().unwrap().iter() {
            prop_assert!(written.contains(&(*k, *v)), "{:?} for {} = {}, never written", cause, k, v);
        }
    }
}
