//! Shared workload helpers for stratacache's benchmarks.
//!
//! The benches compare stratacache side by side with peer caches in one run; this crate is
//! the only place those peers are dependencies.

pub mod mixed;
pub mod peers;
pub mod sim;
pub mod tail;
pub mod trace;

/// The global allocator the benches install: mimalloc under the `mimalloc` feature, the
/// system's otherwise (so every figure can be measured both ways).
#[cfg(feature = "mimalloc")]
pub use mimalloc::MiMalloc as BaseAllocator;
/// The global allocator the benches install: mimalloc under the `mimalloc` feature, the
/// system's otherwise (so every figure can be measured both ways).
#[cfg(not(feature = "mimalloc"))]
pub use std::alloc::System as BaseAllocator;

/// The name of [`BaseAllocator`], for the reports.
pub const ALLOCATOR_NAME: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

/// A fast deterministic generator (xorshift64*) for keys and operation mixes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// `n` distinct, well-spread keys and a shuffled order to look them up in.
pub fn keys_and_lookup_order(n: usize, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let mut keys: Vec<u64> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut order = keys.clone();
    rng.shuffle(&mut order);
    (keys, order)
}
