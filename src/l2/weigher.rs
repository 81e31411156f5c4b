//! How much an entry counts against a cache's capacity.

/// Tells how much an entry counts against the capacity.
///
/// Called once per insertion, before any lock is taken; a panic in it leaves the cache as it
/// was. Closures `Fn(&K, &V) -> u64` are weighers. An entry weighs at most `u32::MAX`, and a
/// weight of 0 counts as 1 (so a weigher cannot let entries grow without bound).
///
/// ```
/// use stratacache::Cache;
///
/// // A byte budget: each texture counts its size.
/// let textures: Cache<u32, Vec<u8>, _, _> = Cache::builder()
///     .capacity(1 << 20)
///     .weigher(|_: &u32, pixels: &Vec<u8>| pixels.len() as u64)
///     .build()?;
/// textures.insert(1, vec![0; 300_000])?;
/// textures.insert(2, Vec::new())?; // weighs 0: counted as 1
/// assert_eq!(textures.weighted_size(), 300_001);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Weigher<K, V> {
    /// Whether every entry weighs 1, so the capacity counts entries and the cache can size its
    /// shards for them.
    const UNIT: bool = false;

    /// The entry's weight (for instance its size in bytes).
    fn weigh(&self, key: &K, value: &V) -> u64;
}

/// Every entry weighs 1: the capacity counts entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitWeigher;

impl<K, V> Weigher<K, V> for UnitWeigher {
    const UNIT: bool = true;

    #[inline]
    fn weigh(&self, _: &K, _: &V) -> u64 {
        1
    }
}

impl<K, V, F: Fn(&K, &V) -> u64> Weigher<K, V> for F {
    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u64 {
        self(key, value)
    }
}
