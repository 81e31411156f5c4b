//! L2: the sharded in-memory tier.
//!
//! Built here so far: the single-threaded [`Shard`], a hashbrown `HashTable` index over a slot
//! arena, and the shard-level [`Policy`] trait with the default [`ProbationClock`] (a
//! probationary FIFO and a ghost set in front of a CLOCK of 2-bit counters: the S3-FIFO family).
//!
//! The concurrent L2 (power-of-two shards, each behind a lock, lookups under the read side,
//! capacity by entries or weight enforced cache-wide, TTL) and the tiered facade are built on
//! these pieces next.

pub mod policy;
mod shard;
#[cfg(test)]
mod tests;

pub use policy::{Policy, ProbationClock};
pub use shard::{Evicted, Shard};
