//! Every `unsafe` line of the crate: spans and their bitmaps, chunk carving, chunk sources,
//! and the arena that ties them together. The modules above it are safe code.

pub(crate) mod arena;
pub(crate) mod carver;
pub(crate) mod memory;
#[cfg(feature = "mimalloc")]
pub(crate) mod mimalloc;
pub(crate) mod source;
pub(crate) mod span;
#[cfg(test)]
mod tests;
