//! # stratacache-alloc
//!
//! Memory control for the stratacache kernel, `#![no_std]` (with `alloc`).
//!
//! - [`Arena`]: size-class slabs carved from large chunks. Small blocks (up to 8 KiB) come
//!   from 64 KiB spans through a lock-free bitmap claim, on one of [`LANES`] lanes so shards
//!   and threads keep apart; large blocks (powers of two from 16 KiB) reuse their class's
//!   freed blocks. It implements [`allocator_api2::alloc::Allocator`], so `hashbrown` tables
//!   and `allocator_api2` vectors allocate from it, and reports what it holds
//!   ([`ArenaStats`], [`ClassStats`]).
//! - [`ChunkSource`]: where the chunks come from: the global allocator (under `std`, bound to a
//!   NUMA node if asked), a caller's memory region (a hard budget and no global allocator for
//!   the blocks), or, under the `mimalloc` feature, a mimalloc heap in an arena bound to a
//!   NUMA node.
//! - A byte budget on the arena ([`ArenaBuilder::budget`]): past it allocations fail, which
//!   makes a cache evict and then refuse, never abort.
//! - [`ByteBudget`]: a lock-free byte counter with a limit, for owners that charge sizes
//!   themselves.
//!
//! | feature | what it adds |
//! |---|---|
//! | (none) | `Arena`, global and region sources, budgets; no_std |
//! | `std` | [`ChunkSource::global_on_node`]: chunks from the global allocator bound to a NUMA node (Linux) |
//! | `mimalloc` | `ChunkSource::mimalloc_node`: chunks from a NUMA-bound mimalloc arena (std, C build) |
//!
//! A cache with a hard memory budget and no global allocator for its entries carves its
//! arena from a region:
//!
//! ```
//! use core::alloc::Layout;
//! use core::mem::MaybeUninit;
//! use stratacache_alloc::{Arena, ChunkSource};
//!
//! static mut REGION: [MaybeUninit<u8>; 1 << 20] = [MaybeUninit::uninit(); 1 << 20];
//! // SAFETY: the region is borrowed once, here, for the program's life.
//! let region = unsafe { &mut *core::ptr::addr_of_mut!(REGION) };
//! let arena = Arena::builder().source(ChunkSource::region(region)).build()?;
//!
//! let layout = Layout::new::<[u64; 6]>();
//! let block = arena.allocate(layout).expect("the region has room");
//! assert_eq!(arena.stats().in_use, 48);
//! // SAFETY: the block came from this arena with this layout and is not used again.
//! unsafe { arena.deallocate(block.cast(), layout) };
//! assert_eq!(arena.stats().in_use, 0);
//!
//! // The region bounds the arena: past it, allocations fail instead of aborting.
//! let huge = Layout::from_size_align(2 << 20, 8).unwrap();
//! assert!(arena.allocate(huge).is_err());
//! # Ok::<(), stratacache_alloc::ArenaError>(())
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod budget;
mod class;
mod raw;
mod stats;
mod sync;

pub use allocator_api2::alloc::{AllocError, Allocator};
pub use budget::{BudgetExceeded, ByteBudget, Reservation};
pub use class::{block_size, footprint};
pub use raw::arena::{Arena, ArenaBuilder, ArenaError, ArenaHandle, LANES};
pub use raw::memory::MemoryHandle;
#[cfg(feature = "mimalloc")]
pub use raw::mimalloc::NodeArenaError;
pub use raw::source::ChunkSource;
pub use raw::span::SPAN as SPAN_BYTES;
pub use stats::{ArenaStats, ClassStats};
