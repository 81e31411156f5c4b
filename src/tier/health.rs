//! `Cache::health`: a typed status for an operator's health check, against thresholds set in
//! the builder.

use alloc::vec::Vec;
use core::fmt;

use super::stats::CacheStats;
use crate::sync::Mutex;

/// When [`Cache::health`](crate::Cache::health) reports a concern (set with
/// [`CacheBuilder::health_thresholds`](crate::CacheBuilder::health_thresholds)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthThresholds {
    /// A hit ratio below it, over the lookups since the last check, is a concern (default 0:
    /// never).
    pub min_hit_ratio: f64,
    /// Fewer lookups than this since the last check are too few to judge the hit ratio
    /// (default 1,000).
    pub min_lookups: u64,
    /// A memory budget used past this fraction is a concern (default 0.95).
    pub memory_fraction: f64,
    /// A disk budget used past this fraction is a concern (default 0.95).
    pub disk_fraction: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            min_hit_ratio: 0.0,
            min_lookups: 1_000,
            memory_fraction: 0.95,
            disk_fraction: 0.95,
        }
    }
}

/// One thing wrong, with the figures that show it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Concern {
    /// The hit ratio since the last check is below the threshold.
    LowHitRatio {
        /// Hits per lookup since the last check.
        ratio: f64,
        /// The threshold.
        threshold: f64,
        /// Lookups since the last check.
        lookups: u64,
    },
    /// The memory budget is nearly spent (insertions will be refused).
    MemoryNearlySpent {
        /// Bytes in use.
        in_use: u64,
        /// The budget.
        limit: u64,
    },
    /// The persistent tier's disk budget is nearly spent (old segments are being dropped).
    DiskNearlySpent {
        /// Bytes the segments hold.
        used: u64,
        /// The budget.
        budget: u64,
    },
    /// The persistent tier found damaged records since the last check (never returned).
    DiskDamage {
        /// Damaged records found since the last check.
        corrupt_records: u64,
    },
    /// The persistent tier could not keep values memory evicted since the last check (its
    /// write queue was full: the disk is slower than the evictions, or failing).
    DiskWritesDropped {
        /// Values dropped since the last check.
        dropped: u64,
    },
    /// The link to the coherence group's Redis is down.
    Disconnected {
        /// For how long, this time.
        for_: core::time::Duration,
    },
}

/// What [`Cache::health`](crate::Cache::health) found: healthy when there is no concern.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Everything wrong now.
    pub concerns: Vec<Concern>,
}

impl Health {
    /// Whether nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.concerns.is_empty()
    }
}

impl fmt::Display for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LowHitRatio {
                ratio,
                threshold,
                lookups,
            } => write!(
                f,
                "hit ratio {:.1} % over {lookups} lookups, below {:.1} %",
                ratio * 100.0,
                threshold * 100.0
            ),
            Self::MemoryNearlySpent { in_use, limit } => {
                write!(f, "memory {in_use} of a budget of {limit} bytes in use")
            }
            Self::DiskNearlySpent { used, budget } => {
                write!(f, "disk {used} of a budget of {budget} bytes used")
            }
            Self::DiskDamage { corrupt_records } => {
                write!(f, "{corrupt_records} damaged records found on disk")
            }
            Self::DiskWritesDropped { dropped } => {
                write!(
                    f,
                    "{dropped} evicted values not kept on disk (write queue full)"
                )
            }
            Self::Disconnected { for_ } => write!(f, "Redis unreachable for {for_:?}"),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.concerns.is_empty() {
            return f.write_str("healthy");
        }
        for (at, concern) in self.concerns.iter().enumerate() {
            if at > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{concern}")?;
        }
        Ok(())
    }
}

/// The thresholds and what the last check saw (counters are compared with it).
pub(super) struct Watch {
    pub(super) thresholds: HealthThresholds,
    /// Hits, lookups, damaged records and dropped disk writes at the last check.
    last: Mutex<[u64; 4]>,
}

impl Watch {
    pub(super) fn new(thresholds: HealthThresholds) -> Self {
        Self {
            thresholds,
            last: Mutex::new([0; 4]),
        }
    }

    /// The concerns `stats` (and the disk tier's damaged and dropped counts, and its used
    /// and budgeted bytes) show, since the last check.
    pub(super) fn check(
        &self,
        stats: &CacheStats,
        disk: Option<(u64, u64, u64, Option<u64>)>,
    ) -> Health {
        let t = &self.thresholds;
        let mut concerns = Vec::new();
        let (corrupt, dropped) = disk.map_or((0, 0), |(c, d, _, _)| (c, d));
        let now = [stats.hits(), stats.lookups(), corrupt, dropped];
        let last = core::mem::replace(&mut *self.last.lock(), now);
        let (hits, lookups) = (now[0] - last[0], now[1] - last[1]);
        if lookups >= t.min_lookups && lookups > 0 {
            let ratio = hits as f64 / lookups as f64;
            if ratio < t.min_hit_ratio {
                concerns.push(Concern::LowHitRatio {
                    ratio,
                    threshold: t.min_hit_ratio,
                    lookups,
                });
            }
        }
        if let Some(arena) = &stats.arena
            && let Some(limit) = arena.limit
            && arena.in_use as f64 >= t.memory_fraction * limit as f64
        {
            concerns.push(Concern::MemoryNearlySpent {
                in_use: arena.in_use as u64,
                limit: limit as u64,
            });
        }
        if let Some((_, _, used, Some(budget))) = disk
            && used as f64 >= t.disk_fraction * budget as f64
        {
            concerns.push(Concern::DiskNearlySpent { used, budget });
        }
        if now[2] > last[2] {
            concerns.push(Concern::DiskDamage {
                corrupt_records: now[2] - last[2],
            });
        }
        if now[3] > last[3] {
            concerns.push(Concern::DiskWritesDropped {
                dropped: now[3] - last[3],
            });
        }
        Health { concerns }
    }
}
