//! Where a cache's memory comes from: the arenas of the `stratacache-alloc` crate, re-exported.
//!
//! A cache whose entries live in the caller's memory and never grow past it:
//!
//! ```
//! use std::mem::MaybeUninit;
//! use std::sync::Arc;
//! use stratacache::Cache;
//! use stratacache::memory::{Arena, ChunkSource};
//!
//! let region: &'static mut [MaybeUninit<u8>] =
//!     Box::leak(vec![MaybeUninit::uninit(); 4 << 20].into_boxed_slice());
//! let arena = Arc::new(Arena::builder().source(ChunkSource::region(region)).build()?);
//! let cache: Cache<u64, u64> = Cache::builder()
//!     .capacity(10_000)
//!     .memory(arena.clone())
//!     .build()?;
//! cache.insert(1, 10)?;
//! let stats = cache.stats().arena.expect("the cache has an arena");
//! assert!(stats.in_use > 0 && stats.reserved <= 4 << 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use stratacache_alloc::{
    Arena, ArenaBuilder, ArenaError, ArenaHandle, ArenaStats, ChunkSource, ClassStats, MemoryHandle,
};
