//! Error types: small enums implementing [`core::error::Error`].

use core::fmt;

/// Why a table could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A capacity of zero entries was requested: such a table could hold nothing.
    ZeroCapacity,
    /// The builder was given no capacity (a cache has no default size: call `capacity`).
    NoCapacity,
    /// The requested capacity does not fit in this machine's address space once rounded up
    /// to whole sets.
    CapacityOverflow {
        /// The capacity that was asked for, in entries.
        requested: usize,
    },
    /// The allocator could not provide the table's memory.
    AllocationFailed {
        /// The number of bytes that were asked for.
        bytes: usize,
    },
    /// Zero shards were requested.
    ZeroShards,
    /// The shard count must be a power of two (the shard is picked from hash bits).
    ShardsNotPowerOfTwo {
        /// The count that was asked for.
        shards: usize,
    },
    /// A default time to live was set, but there is no clock to measure it (without `std`,
    /// give the builder a [`Clock`](crate::Clock)).
    NoClock,
    /// The memory budget cannot make an arena (zero, or less than its smallest chunk).
    Memory(stratacache_alloc::ArenaError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => f.write_str("capacity must be at least one entry"),
            Self::NoCapacity => {
                f.write_str("no capacity was given: call `capacity` on the builder")
            }
            Self::CapacityOverflow { requested } => {
                write!(
                    f,
                    "a capacity of {requested} entries overflows the address space"
                )
            }
            Self::AllocationFailed { bytes } => {
                write!(f, "could not allocate {bytes} bytes for the table")
            }
            Self::ZeroShards => f.write_str("the shard count must be at least one"),
            Self::ShardsNotPowerOfTwo { shards } => {
                write!(f, "the shard count must be a power of two, not {shards}")
            }
            Self::NoClock => {
                f.write_str("a time to live needs a clock: give the builder a `Clock`")
            }
            Self::Memory(err) => write!(f, "bad memory budget: {err}"),
        }
    }
}

impl core::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Memory(err) => Some(err),
            _ => None,
        }
    }
}

/// A [`replace`](crate::l1::Guard::replace) found no entry for the key; the key and value are
/// handed back untouched.
#[derive(Clone, PartialEq, Eq)]
pub struct Absent<K, V> {
    /// The key that was not present.
    pub key: K,
    /// The value that was not stored.
    pub value: V,
}

impl<K, V> fmt::Debug for Absent<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Absent").finish_non_exhaustive()
    }
}

impl<K, V> fmt::Display for Absent<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no entry for the key; the value was not stored")
    }
}

impl<K, V> core::error::Error for Absent<K, V> {}

/// An insertion was refused; the key and value are handed back untouched.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertError<K, V> {
    /// The entry weighs more than the whole cache may hold.
    TooHeavy {
        /// The key that was not stored.
        key: K,
        /// The value that was not stored.
        value: V,
        /// What the weigher said the entry weighs.
        weight: u64,
        /// The most one entry may weigh: the cache's whole capacity, or `u32::MAX` if that is
        /// less.
        limit: u64,
    },
    /// The entry has a time to live, but the cache has no clock to measure it (without `std`,
    /// give the builder a [`Clock`](crate::Clock)).
    NoClock {
        /// The key that was not stored.
        key: K,
        /// The value that was not stored.
        value: V,
    },
    /// The cache's memory budget is spent: its arena could not give the key's shard room. The
    /// shard evicted, but what it evicts is reused only once no reader can hold it (at a quiet
    /// point after the readers of the moment are gone), so a later insertion finds the room.
    OutOfMemory {
        /// The key that was not stored.
        key: K,
        /// The value that was not stored.
        value: V,
    },
}

impl<K, V> InsertError<K, V> {
    /// The key and value that were not stored.
    pub fn into_inner(self) -> (K, V) {
        match self {
            Self::TooHeavy { key, value, .. }
            | Self::NoClock { key, value }
            | Self::OutOfMemory { key, value } => (key, value),
        }
    }
}

impl<K, V> fmt::Debug for InsertError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooHeavy { weight, limit, .. } => f
                .debug_struct("TooHeavy")
                .field("weight", weight)
                .field("limit", limit)
                .finish_non_exhaustive(),
            Self::NoClock { .. } => f.debug_struct("NoClock").finish_non_exhaustive(),
            Self::OutOfMemory { .. } => f.debug_struct("OutOfMemory").finish_non_exhaustive(),
        }
    }
}

impl<K, V> fmt::Display for InsertError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooHeavy { weight, limit, .. } => write!(
                f,
                "an entry of weight {weight} is heavier than the most one entry may weigh \
                 ({limit}: the cache's capacity, or u32::MAX if less)"
            ),
            Self::NoClock { .. } => {
                f.write_str("the entry has a time to live but the cache has no clock")
            }
            Self::OutOfMemory { .. } => f.write_str(
                "the cache's memory budget is spent: no room for the entry now (what was evicted \
                 is reused once the readers that may hold it are gone)",
            ),
        }
    }
}

impl<K, V> core::error::Error for InsertError<K, V> {}
