//! L2: the sharded, capacity-bounded in-memory tier of the [`Cache`](crate::Cache), and the
//! eviction [`policy`] its shards run.
//!
//! - Shards are a power of two, chosen by the key's hash. A lookup takes no lock: it probes
//!   the shard's index and reads the entry in place, under the cache's epoch, and writes
//!   nothing shared but the entry's own use byte (until it saturates) and a record in the
//!   reader's own ring of the shard's read buffers.
//! - One writer at a time per shard (a lock): insertions, removals and evictions, and the
//!   policy's bookkeeping, which replays the readers' records in batches.
//! - Capacity by entries or by weight ([`Weigher`]) is enforced over the whole table.
//! - What leaves stays readable until no reader can hold it, and is dropped at a quiet point
//!   (the end of a write, a frame, `collect`).

mod buffer;
mod builder;
pub mod policy;
mod raw;
mod shard;
mod table;
mod tiers;
mod weigher;

pub(crate) use policy::{DefaultPolicy, Policy};
pub use weigher::{UnitWeigher, Weigher};

pub(crate) use builder::{TableBuilder, default_shards};
pub(crate) use raw::{Epoch, Found, OutOfMemory};
pub(crate) use shard::Shard;
pub(crate) use table::{Inserted, NEVER, StoreAs, Table};
pub(crate) use tiers::Tiers;
