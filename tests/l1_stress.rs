//! Multi-thread stress test of L1: writers insert, replace, remove and clear while readers
//! check what they see, on more threads than cores, with constant eviction.
//!
//! - Each key has one writer, which stamps its values with a version that only grows, so a
//!   linearizable table can never show a reader a version older than one it already saw.
//! - Every key and value carries a drop token: a bitmap records each drop, so a double drop
//!   fails at once and a leak fails at the end (created == dropped after the table is gone).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stratacache::L1;

/// Drop accounting shared by the tokens of one run.
struct Ledger {
    next_id: AtomicUsize,
    dropped: Vec<AtomicU64>,
    drops: AtomicUsize,
}

impl Ledger {
    fn new(max_tokens: usize) -> Self {
        Self {
            next_id: AtomicUsize::new(0),
            dropped: (0..max_tokens.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            drops: AtomicUsize::new(0),
        }
    }

    fn token(&'static self) -> Token {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        assert!(id < self.dropped.len() * 64, "ledger too small");
        Token { id, ledger: self }
    }
}

struct Token {
    id: usize,
    ledger: &'static Ledger,
}

impl Drop for Token {
    fn drop(&mut self) {
        let bit = 1u64 << (self.id % 64);
        let before = self.ledger.dropped[self.id / 64].fetch_or(bit, Ordering::Relaxed);
        assert_eq!(before & bit, 0, "token {} dropped twice", self.id);
        self.ledger.drops.fetch_add(1, Ordering::Relaxed);
    }
}

struct Key {
    k: u64,
    _token: Token,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.k.hash(state); // same as u64's, so lookups by `&u64` agree
    }
}
impl Borrow<u64> for Key {
    fn borrow(&self) -> &u64 {
        &self.k
    }
}

struct Value {
    key: u64,
    version: u64,
    _token: Token,
}

#[test]
fn readers_never_see_foreign_or_older_values_and_nothing_leaks() {
    let (keys, capacity, duration, max_ops) = if cfg!(miri) {
        (64u64, 16usize, Duration::from_millis(0), 300usize)
    } else {
        (4096u64, 1024usize, Duration::from_secs(2), 2_000_000usize)
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let writers = (cores / 2).max(2);
    let readers = cores.max(2);
    // Two tokens per write plus slack; a leaked ledger keeps the tokens' `&'static` simple.
    let ledger: &'static Ledger = Box::leak(Box::new(Ledger::new(writers * max_ops * 2 + 64)));
    let stop = AtomicBool::new(false);
    let hits = AtomicUsize::new(0);
    {
        let table: L1<Key, Value> = L1::with_capacity(capacity).unwrap();
        std::thread::scope(|s| {
            for w in 0..writers as u64 {
                let (table, stop) = (&table, &stop);
                s.spawn(move || {
                    let handle = table.handle();
                    let mut versions = vec![0u64; keys as usize];
                    let mut rng = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let start = Instant::now();
                    for op in 0..max_ops {
                        if op >= 300
                            && (start.elapsed() >= duration || stop.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        // Keys k with k % writers == w belong to this writer.
                        let k = (rng % (keys / writers as u64)) * writers as u64 + w;
                        let version = &mut versions[k as usize];
                        *version += 1;
                        let value = Value {
                            key: k,
                            version: *version,
                            _token: ledger.token(),
                        };
                        let guard = handle.pin();
                        match rng % 16 {
                            0 => {
                                guard.remove(&k);
                                drop(value);
                            }
                            1 => {
                                let _ = guard.replace(
                                    Key {
                                        k,
                                        _token: ledger.token(),
                                    },
                                    value,
                                );
                            }
                            2 if op % 5_000 == 0 => guard.clear(),
                            _ => {
                                guard.insert(
                                    Key {
                                        k,
                                        _token: ledger.token(),
                                    },
                                    value,
                                );
                            }
                        }
                        drop(guard);
                        if op % 1024 == 0 {
                            handle.collect();
                        }
                    }
                });
            }
            for r in 0..readers as u64 {
                let (table, hits) = (&table, &hits);
                s.spawn(move || {
                    let handle = table.handle();
                    let mut seen = vec![0u64; keys as usize];
                    let mut rng = (r + 101).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
                    let start = Instant::now();
                    let mut rounds = 0;
                    while rounds < 30 || start.elapsed() < duration {
                        rounds += 1;
                        let guard = handle.pin(); // one pin per "frame" of 64 reads
                        for _ in 0..64 {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let k = rng % keys;
                            if let Some(v) = guard.get(&k) {
                                assert_eq!(v.key, k, "another key's value");
                                assert!(
                                    v.version >= seen[k as usize],
                                    "key {k} went back from version {} to {}",
                                    seen[k as usize],
                                    v.version
                                );
                                seen[k as usize] = v.version;
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        stop.store(true, Ordering::Relaxed);
        assert!(table.len() <= table.capacity());
    }
    assert!(
        hits.load(Ordering::Relaxed) > 0,
        "the readers never hit: the test checked nothing"
    );
    let created = ledger.next_id.load(Ordering::Relaxed);
    assert_eq!(
        ledger.drops.load(Ordering::Relaxed),
        created,
        "every key and value dropped exactly once"
    );
}
