//! # stratacache
//!
//! A tiered cache kernel for latency-critical loops (game servers and engines first). The core
//! is `#![no_std]` with `alloc`.
//!
//! What exists today:
//!
//! - [`l1`]: a fixed-capacity, set-associative table with **wait-free reads**, epoch-based
//!   reclamation (crossbeam-epoch) whose cost is bounded and can be driven by the caller, and
//!   per-set CLOCK eviction. Gets are zero-copy (`&V` bound to a guard) and allocate nothing.
//!
//! The sharded CLOCK L2, the tiered `Cache` facade, NUMA placement, arenas and the persistent
//! L3 are built on top of this in later steps (see `DESIGN.md`).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `std`   | yes     | per-thread handles kept by each table, so [`L1::pin`], [`L1::get_cloned`], [`L1::insert`] … work without an explicit [`l1::Handle`]; foldhash seeds also mix in the clock |
//!
//! Without `std` the crate builds for bare-metal targets (`x86_64-unknown-none`,
//! `thumbv7em-none-eabihf`); threads then take part through an explicit [`l1::Handle`].
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

mod error;
pub mod hash;
pub mod l1;
pub mod l2;
mod sync;

pub use error::{Absent, BuildError, InsertError};
pub use hash::DefaultHashBuilder;
pub use l1::L1;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
