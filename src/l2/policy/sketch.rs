//! A frequency sketch for admission (TinyLFU: Einziger, Friedman & Manes, "TinyLFU: A Highly
//! Efficient Cache Admission Policy", ACM ToS 2017): a count-min sketch of small saturating
//! counters, four rows, halved every `10 × width` additions so old popularity fades.
//!
//! Increments may run under a shard's read lock (hits): they are relaxed loads and stores of
//! byte counters, so racing increments may be lost, which only makes the estimate a little
//! low. Resizing and ageing need exclusive access.

use alloc::vec::Vec;

use crate::sync::{AtomicU8, AtomicUsize, Ordering};

/// The largest counter value (4 bits' worth, as in TinyLFU).
const MAX: u8 = 15;
const ROWS: usize = 4;
/// Seeds mixing the key's hash into one column per row.
const SEEDS: [u64; ROWS] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

#[derive(Default)]
pub(crate) struct FrequencySketch {
    counters: Vec<AtomicU8>,
    /// Columns per row, a power of two (0: not sized yet).
    width: usize,
    additions: AtomicUsize,
}

impl FrequencySketch {
    #[inline]
    fn index(&self, hash: u64, row: usize) -> usize {
        let mixed = (hash ^ (hash >> 29)).wrapping_mul(SEEDS[row]);
        row * self.width + ((mixed >> 32) as usize & (self.width - 1))
    }

    /// Counts one access to `hash` (shared access is enough).
    #[inline]
    pub(crate) fn increment(&self, hash: u64) {
        if self.width == 0 {
            return;
        }
        for row in 0..ROWS {
            let counter = &self.counters[self.index(hash, row)];
            // Relaxed: an estimate; a lost increment under a race is harmless.
            let c = counter.load(Ordering::Relaxed);
            if c < MAX {
                counter.store(c + 1, Ordering::Relaxed);
            }
        }
        // Relaxed: as above.
        let n = self.additions.load(Ordering::Relaxed);
        self.additions.store(n + 1, Ordering::Relaxed);
    }

    /// How often `hash` was seen lately (the smallest of its counters).
    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        if self.width == 0 {
            return 0;
        }
        (0..ROWS)
            // Relaxed: an estimate.
            .map(|row| self.counters[self.index(hash, row)].load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// With exclusive access: sizes the sketch for `entries` resident entries (growing it
    /// forgets the counts), and halves every counter once enough accesses were counted.
    pub(crate) fn maintain(&mut self, entries: usize) {
        let wanted = entries.max(16).next_power_of_two();
        if self.width < wanted {
            self.width = wanted;
            self.counters = (0..ROWS * wanted).map(|_| AtomicU8::new(0)).collect();
            self.additions = AtomicUsize::new(0);
            return;
        }
        // Relaxed: exclusive access.
        if self.additions.load(Ordering::Relaxed) >= 10 * self.width {
            for counter in &self.counters {
                let c = counter.load(Ordering::Relaxed);
                counter.store(c / 2, Ordering::Relaxed);
            }
            self.additions.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.counters.capacity()
    }
}
