//! # stratacache
//!
//! A tiered cache kernel for latency-critical loops (game servers and engines first). The core
//! is `#![no_std]` with `alloc`.
//!
//! What exists today:
//!
//! - [`Cache`]: the tiered in-memory cache. A wait-free L1 of hot copies in front of a sharded
//!   L2 read without locks, per-key linearizable across both tiers (promotions never leave a
//!   stale copy), with
//!   capacity by entries or by weight enforced over the whole cache. Entries carry a
//!   [`Priority`] and a time to live ([`InsertOptions`], timed by a [`Clock`], or chosen by an
//!   [`Expiry`]), may idle out ([`CacheBuilder::time_to_idle`]) and be reloaded some time after
//!   their write ([`CacheBuilder::refresh_after_write`]);
//!   [`Cache::get_with`] runs one loader per concurrent miss, and [`Cache::entry`] inserts on a
//!   miss or computes a key's next value from its current one; an eviction listener
//!   hears every [`RemovalCause`]; [`Cache::stats`] sums per-thread counters; a
//!   [`CacheFrame`] batches operations under one L1 pin.
//! - [`l1`]: a fixed-capacity, set-associative table with **wait-free reads**, epoch-based
//!   reclamation (crossbeam-epoch) whose cost is bounded and can be driven by the caller, and
//!   per-set CLOCK eviction. Gets are zero-copy (`&V` bound to a guard) and allocate nothing.
//! - [`policy`]: the L2 tier's eviction policies: the shard-level [`policy::Policy`] trait,
//!   the default [`policy::WTinyLfu`] (frequency-sketch admission, adaptive window), CLOCK,
//!   seven others to compare with (the `policies` feature), and the single-threaded
//!   [`policy::Harness`] that drives one policy alone (the trace simulator's). L2's shards,
//!   their lock-free index and slots are internal.
//!
//! - [`memory`]: where the L2 shards' memory comes from ([`CacheBuilder::memory`],
//!   [`CacheBuilder::memory_budget`]): size-class slab arenas over the global allocator, a
//!   caller's region or NUMA-bound mimalloc arenas (the `stratacache-alloc` crate). A spent
//!   budget makes the cache evict, then refuse with the entry handed back.
//!
//! - **Per-socket L1**: on a machine of several NUMA nodes, one L1 replica per node, each
//!   thread reading its own node's ([`CacheBuilder::topology`], [`CacheBuilder::cpu_locator`],
//!   [`CacheBuilder::per_socket_l1`]); writes and removals reach every replica before they
//!   return, and the L2 shards are striped over one arena per node.
//!
//! The persistent L3 comes next (see `DESIGN.md`).
//!
//! ```
//! use std::time::Duration;
//! use stratacache::{Cache, InsertOptions, Priority};
//!
//! let cache: Cache<u64, String> = Cache::builder()
//!     .capacity(10_000)
//!     .time_to_live(Duration::from_secs(300)) // a default; per-entry options override it
//!     .build()?;
//! cache.insert_with(1, "match state".into(), InsertOptions::new().priority(Priority::Critical))?;
//! let name = cache.get_with(&2, || "loaded once".into());
//! assert_eq!(name, "loaded once");
//! assert_eq!(cache.get(&1).as_deref(), Some("match state"));
//! assert_eq!(cache.stats().l1_hits, 1); // Critical entries are in L1 from the start
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `policies` | no   | the L2 policies beside the default W-TinyLFU and CLOCK: LRU, ARC, LFU, SIEVE, S3-FIFO, probation CLOCK and a predictive one (the trace simulator compares them) |
//! | `std`   | yes     | per-thread handles kept by each table, so [`Cache::get`], [`L1::pin`], [`L1::get_cloned`] … work without an explicit handle; L2 shards use the standard library's `RwLock` (parking, not spinning) and `get_with` waiters park; [`StdClock`] is the default clock for time to live; foldhash seeds also mix in the clock; the topology from sysfs and `sched_getcpu` for per-socket L1, and node-bound arenas (`stratacache-platform/std`, `stratacache-alloc/std`) |
//!
//! Without `std` the crate builds for bare-metal targets (`x86_64-unknown-none`,
//! `thumbv7em-none-eabihf`); threads then take part through an explicit [`CacheHandle`] or
//! [`l1::Handle`], L2 shards use spin locks, loader waiters spin then yield, and time to live
//! needs a [`Clock`] from the embedder (a frame counter, a hardware timer).
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
// Loom runs on a host with the standard library, whose lock errors its locks return.
#[cfg(any(feature = "std", loom))]
extern crate std;

/// An event on a slow path (the disk tier's recovery, compaction and write failures, warming,
/// coherence's reconnections) for the `tracing` feature's subscribers; nothing without it.
#[cfg_attr(not(feature = "persistent"), allow(unused_macros))]
macro_rules! slow_path {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        tracing::$level!(target: "stratacache", $($arg)+);
    }};
}

mod clock;
#[cfg(all(feature = "redis", not(loom)))]
pub mod coherence;
mod entry;
mod error;
#[cfg(all(feature = "async", not(loom)))]
pub mod future;
pub mod hash;
pub mod l1;
mod l2;
#[cfg(feature = "persistent")]
// `File::try_lock` (1.89), for a store directory's lock file.
#[clippy::msrv = "1.89"]
pub mod l3;
pub mod memory;
#[cfg(all(feature = "std", not(loom)))]
pub mod prefetch;
mod sync;
mod tier;

#[cfg(any(loom, target_has_atomic = "64"))]
pub use clock::ManualClock;
#[cfg(feature = "std")]
pub use clock::StdClock;
pub use clock::{Clock, FnClock};
pub use entry::{Expiry, InsertOptions, Priority, RemovalCause};
pub use error::{Absent, BuildError, InsertError};
pub use hash::DefaultHashBuilder;
pub use l1::L1;
pub use l2::policy;
pub use l2::{UnitWeigher, Weigher};
pub use tier::{
    Cache, CacheBuilder, CacheFrame, CacheHandle, CacheStats, ComputeOp, Computed, Concern,
    EntryRef, Fetched, Health, HealthThresholds, Iter,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
