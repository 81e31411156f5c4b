//! The cache's figures through the `metrics` facade (feature `metrics`): counters and gauges
//! on demand ([`Cache::export_metrics`]), and a sampled latency histogram of lookups.

use core::hash::{BuildHasher, Hash};
use std::time::Instant;

use super::Cache;
use crate::l2::Weigher;
use crate::l2::policy::Policy;

/// Records a timed lookup of the cache `name`, answered by `tier` (`l1`, `l2`, `l3`, or
/// `miss`).
#[cold]
pub(super) fn record(name: &'static str, started: Instant, tier: &'static str) {
    metrics::histogram!("stratacache_get_seconds", "cache" => name, "tier" => tier)
        .record(started.elapsed().as_secs_f64());
}

impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    /// Publishes the cache's figures through the `metrics` facade, labelled `cache = name`:
    /// counters (`stratacache_hits_total` by `tier`, `stratacache_misses_total`,
    /// `stratacache_inserts_total`, `stratacache_evictions_total` by `cause`,
    /// `stratacache_promotions_total`) and gauges (`stratacache_entries`,
    /// `stratacache_weighted_size`, `stratacache_memory_bytes`, `stratacache_l1_entries`, and
    /// with a disk tier `stratacache_disk_bytes` and `stratacache_disk_entries`). Call it from
    /// a timer or before each scrape: it costs a [`stats`](Self::stats), and lookups pay
    /// nothing for it.
    pub fn export_metrics(&self, name: &'static str) {
        let stats = self.stats();
        let counter =
            |metric: &'static str, value: u64, labels: &[(&'static str, &'static str)]| {
                let mut all = std::vec![metrics::Label::new("cache", name)];
                all.extend(labels.iter().map(|&(k, v)| metrics::Label::new(k, v)));
                metrics::counter!(metric, all).absolute(value);
            };
        counter("stratacache_hits_total", stats.l1_hits, &[("tier", "l1")]);
        counter("stratacache_hits_total", stats.l2_hits, &[("tier", "l2")]);
        counter("stratacache_hits_total", stats.l3_hits, &[("tier", "l3")]);
        counter("stratacache_misses_total", stats.misses, &[]);
        counter("stratacache_inserts_total", stats.inserts, &[]);
        counter("stratacache_promotions_total", stats.promotions, &[]);
        counter(
            "stratacache_evictions_total",
            stats.evicted_capacity,
            &[("cause", "capacity")],
        );
        counter(
            "stratacache_evictions_total",
            stats.expired,
            &[("cause", "expired")],
        );
        counter(
            "stratacache_evictions_total",
            stats.replaced,
            &[("cause", "replaced")],
        );
        counter(
            "stratacache_evictions_total",
            stats.removed,
            &[("cause", "removed")],
        );
        let gauge = |metric: &'static str, value: u64| {
            metrics::gauge!(metric, "cache" => name).set(value as f64);
        };
        gauge("stratacache_entries", stats.entries);
        gauge("stratacache_weighted_size", stats.weighted_size);
        gauge("stratacache_memory_bytes", stats.memory_bytes);
        gauge("stratacache_l1_entries", self.shared.l1.len() as u64);
        #[cfg(feature = "persistent")]
        if let Some(disk) = self.persistent_stats() {
            gauge("stratacache_disk_bytes", disk.disk_bytes);
            gauge("stratacache_disk_entries", disk.entries);
        }
    }
}
