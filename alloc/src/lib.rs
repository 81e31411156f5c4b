//! # stratacache-alloc
//!
//! Memory control for the stratacache kernel, `#![no_std]`.
//!
//! Today this crate provides [`ByteBudget`]: a lock-free byte budget that a cache charges
//! before it stores an entry and credits when the entry is freed, so the cache can evict, or
//! refuse and hand the value back, instead of growing past what the embedder allowed.
//!
//! It is where the kernel's allocation control will live (see `DESIGN.md` §6): size-class
//! slabs carved from large chunks for the kernel's nodes and slots; chunk sources from the
//! global allocator, a caller-provided memory region (a hard budget with no global allocator
//! at all) or mimalloc arenas bound to a NUMA node; and an `allocator_api2::Allocator`
//! implementation so hashbrown tables allocate from them. Each of those charges a
//! [`ByteBudget`].
//!
//! ```
//! use stratacache_alloc::ByteBudget;
//!
//! let budget = ByteBudget::new(1024);
//! let entry = budget.try_reserve(600)?;
//! assert!(budget.try_reserve(600).is_err(), "would exceed the budget");
//! drop(entry); // freeing the entry gives its bytes back
//! assert_eq!(budget.in_use(), 0);
//! let _kept = budget.try_reserve(600)?;
//! # Ok::<(), stratacache_alloc::BudgetExceeded>(())
//! ```
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

mod budget;
mod sync;

pub use budget::{BudgetExceeded, ByteBudget, Reservation};
