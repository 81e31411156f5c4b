//! # stratacache
//!
//! A tiered cache kernel for latency-critical loops (game servers and engines first). The core
//! is `#![no_std]` with `alloc`.
//!
//! What exists today:
//!
//! - [`Cache`]: the tiered in-memory cache. A wait-free L1 of hot copies in front of a sharded
//!   L2, per-key linearizable across both tiers (promotions never leave a stale copy), with
//!   capacity by entries or by weight enforced over the whole cache.
//! - [`l1`]: a fixed-capacity, set-associative table with **wait-free reads**, epoch-based
//!   reclamation (crossbeam-epoch) whose cost is bounded and can be driven by the caller, and
//!   per-set CLOCK eviction. Gets are zero-copy (`&V` bound to a guard) and allocate nothing.
//! - [`l2`]: the sharded L2 ([`L2`]), its single-threaded [`l2::Shard`], and the shard-level
//!   [`l2::Policy`] trait with the default scan-resistant [`l2::ProbationClock`]
//!   (S3-FIFO family).
//!
//! TTL, priorities, `get_or_insert_with`, the eviction listener and statistics, NUMA placement,
//! arenas and the persistent L3 come next (see `DESIGN.md`).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `std`   | yes     | per-thread handles kept by each table, so [`Cache::get`], [`L1::pin`], [`L1::get_cloned`] … work without an explicit handle; L2 shards use the standard library's `RwLock` (parking, not spinning); foldhash seeds also mix in the clock |
//!
//! Without `std` the crate builds for bare-metal targets (`x86_64-unknown-none`,
//! `thumbv7em-none-eabihf`); threads then take part through an explicit [`CacheHandle`] or
//! [`l1::Handle`], and L2 shards use spin locks.
//!
//! ## Example
//! ```
//! use stratacache::L1;
//!
//! // A table for 4096 entries; every thread registers a handle and pins it per batch of work.
//! let table: L1<u32, [f32; 3]> = L1::with_capacity(4096)?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let handle = table.handle();
//!         let guard = handle.pin();
//!         for id in 0..100 {
//!             guard.insert(id, [id as f32, 0.0, 0.0]);
//!         }
//!     });
//! });
//! let handle = table.handle();
//! let frame = handle.pin();
//! let position: &[f32; 3] = frame.get(&42).expect("inserted above and nothing evicts it");
//! assert_eq!(position[0], 42.0);
//! # Ok::<(), stratacache::BuildError>(())
//! ```
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod clock;
mod entry;
mod error;
pub mod hash;
pub mod l1;
pub mod l2;
mod sync;
mod tier;

#[cfg(any(loom, target_has_atomic = "64"))]
pub use clock::ManualClock;
#[cfg(feature = "std")]
pub use clock::StdClock;
pub use clock::{Clock, FnClock};
pub use entry::{InsertOptions, Priority, RemovalCause};
pub use error::{Absent, BuildError, InsertError};
pub use hash::DefaultHashBuilder;
pub use l1::L1;
pub use l2::L2;
pub use tier::{Cache, CacheBuilder, CacheFrame, CacheHandle, CacheStats};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
