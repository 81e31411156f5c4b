//! L2: the sharded, capacity-bounded in-memory tier.
//!
//! - [`L2`]: power-of-two shards behind reader-writer locks (the standard library's under
//!   `std`, spin locks without it); lookups take the read side, and capacity by entries or by
//!   weight ([`Weigher`]) is enforced over the whole table.
//! - [`Shard`]: the single-threaded core of one shard, a hashbrown `HashTable` index over a
//!   slot arena, usable on its own.
//! - [`Policy`]: the shard-level eviction and admission policy; the default
//!   ([`DefaultPolicy`]) is [`WTinyLfu`]: a small LRU window in front of a segmented main
//!   region, frequency-sketch admission, and a window sized by what one more step of it
//!   would catch against what one step less of the main region would lose. [`policy`] holds
//!   the others (CLOCK, SIEVE, S3-FIFO, LRU, LFU, ARC, the S3-FIFO family's
//!   [`ProbationClock`] and a predictive policy).
//!
//! The tiered [`Cache`](crate::Cache) is built on these: it stores priorities and deadlines
//! in the slots, keeps L1 in step under the shard locks, and tells the policy which entries
//! were used in L1 ([`policy::Entries::used_elsewhere`]).

pub mod policy;
pub(crate) mod shard;
pub(crate) mod table;
#[cfg(test)]
mod tests;

pub use policy::{DefaultPolicy, Policy, ProbationClock, WTinyLfu};
pub use shard::{Evicted, Shard};
pub use table::{L2, L2Builder, UnitWeigher, Weigher};
