//! The caches every bench compares, built one way everywhere: `u64 → u64` with capacity in
//! entries and each crate's default settings (so a bench differs from another only in its
//! workload).

/// stratacache's tiered `Cache` with default settings.
pub fn stratacache(capacity: u64) -> stratacache::Cache<u64, u64> {
    stratacache::Cache::builder()
        .capacity(capacity)
        .build()
        .expect("a positive capacity")
}

/// stratacache with its index and slots allocated up front for the whole capacity
/// (`CacheBuilder::preallocate`), as a game that wants no growth at run time builds it.
pub fn stratacache_preallocated(capacity: u64) -> stratacache::Cache<u64, u64> {
    stratacache::Cache::builder()
        .capacity(capacity)
        .preallocate(true)
        .build()
        .expect("a positive capacity")
}

/// quick_cache's sync cache.
pub fn quick_cache(capacity: u64) -> quick_cache::sync::Cache<u64, u64> {
    quick_cache::sync::Cache::new(capacity as usize)
}

/// moka's sync cache.
pub fn moka(capacity: u64) -> moka::sync::Cache<u64, u64> {
    moka::sync::Cache::new(capacity)
}

/// mini-moka's sync cache.
pub fn mini_moka(capacity: u64) -> mini_moka::sync::Cache<u64, u64> {
    mini_moka::sync::Cache::new(capacity)
}

/// scc's `HashCache`, its minimum and maximum capacity both the capacity.
pub fn scc(capacity: u64) -> scc::HashCache<u64, u64> {
    scc::HashCache::with_capacity(capacity as usize, capacity as usize)
}

/// foyer's in-memory cache.
pub fn foyer(capacity: u64) -> foyer::Cache<u64, u64> {
    foyer::CacheBuilder::new(capacity as usize).build::<foyer::CacheProperties>()
}
