//! A frequency sketch for admission (TinyLFU: Einziger, Friedman & Manes, "TinyLFU: A Highly
//! Efficient Cache Admission Policy", ACM ToS 2017): a count-min sketch of 4-bit saturating
//! counters, four per key, halved once the sketch has counted four accesses per entry it is
//! sized for, so old popularity fades.
//!
//! Layout (after Caffeine's): the counters live in 64-byte blocks of sixteen 32-bit words; a
//! key's four counters are in one block (one cache line), in four different words, so an
//! increment or an estimate touches one line. Sixteen counters per entry (eight bytes).
//!
//! Every access is exclusive (the shard's writer replays hits in batches); a counter already at
//! its maximum is not written.

use alloc::vec::Vec;

/// The largest counter value (4 bits).
const MAX: u32 = 15;
/// Words per block (one 64-byte cache line of 32-bit words).
const BLOCK: usize = 16;
/// Counters per entry the sketch is sized for.
const COUNTERS_PER_ENTRY: usize = 16;
/// Increments counted per sized entry before every counter is halved. Caffeine and moka halve
/// after ten; forgetting faster serves a small cache of a program's working set and a workload
/// that turns to a new one. Four was chosen on half of the shared traces and holds on the other
/// half (`benches/results/NOTES.md`, "the sketch's aging").
const AGE_AFTER: usize = 4;

/// One cache line of counters: four rows of four words, eight 4-bit counters a word.
type Block = [u32; BLOCK];
// A block is one cache line (a reader's prefetch fetches a key's counters whole).
const _: () = assert!(core::mem::size_of::<Block>() == 64);

#[derive(Default)]
pub(crate) struct FrequencySketch {
    blocks: Vec<Block>,
    /// `blocks - 1` (blocks: a power of two).
    block_mask: usize,
    /// Entries the sketch is sized for (0: not sized yet).
    entries: usize,
    /// Increments that changed a counter since the last halving.
    additions: u32,
}

/// `hash`'s block before masking: its block is `block_of(hash) & block_mask`.
#[inline]
fn block_of(hash: u64) -> usize {
    (FrequencySketch::mix(hash) >> 32) as usize
}

impl FrequencySketch {
    #[inline]
    fn mix(hash: u64) -> u64 {
        // Shards and L1 sets take fixed bits of the hash; mix all of them into every position.
        (hash ^ (hash >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Where `hash`'s block is, for a reader that cannot see the sketch (see [`KeyHint`]).
    ///
    /// [`KeyHint`]: crate::policy::KeyHint
    pub(crate) fn hint(&self) -> crate::policy::KeyHint {
        if self.blocks.is_empty() {
            return crate::policy::KeyHint::NONE;
        }
        crate::policy::KeyHint::new(self.blocks.as_ptr().addr(), self.block_mask, block_of)
    }

    /// `hash`'s block, and for each row the word (within the block) and the shift of its
    /// counter.
    #[inline]
    fn counters(&self, hash: u64) -> Option<(usize, [(usize, u32); 4])> {
        if self.blocks.is_empty() {
            return None;
        }
        let mixed = Self::mix(hash);
        let block = block_of(hash) & self.block_mask;
        let at = |row: usize| {
            let bits = (mixed >> (12 + row * 5)) as usize;
            (row * 4 + (bits & 3), ((bits >> 2) & 7) as u32 * 4)
        };
        Some((block, [at(0), at(1), at(2), at(3)]))
    }

    /// Counts one access to `hash`.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u64) {
        let Some((block, counters)) = self.counters(hash) else {
            return;
        };
        let block = &mut self.blocks[block];
        let mut added = false;
        for (word, shift) in counters {
            let word = &mut block[word];
            if (*word >> shift) & MAX < MAX {
                *word += 1 << shift;
                added = true;
            }
        }
        // Only increments that changed something count toward the halving: when every key
        // in use has saturated its counters (a loop over more keys than the cache holds), the
        // counts stay where they are, ties keep the incumbents, and the cache keeps a stable
        // part of the loop instead of churning after each halving.
        if added {
            self.additions = self.additions.wrapping_add(1);
        }
    }

    /// How often `hash` was seen lately (the smallest of its counters, 0 to 15).
    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        let Some((block, counters)) = self.counters(hash) else {
            return 0;
        };
        let block = &self.blocks[block];
        counters
            .iter()
            .map(|&(word, shift)| (block[word] >> shift) & MAX)
            .min()
            .unwrap_or(0) as u8
    }

    /// Sizes the sketch for `entries` resident entries, and halves every
    /// counter once [`AGE_AFTER`] increments per sized entry changed a counter.
    ///
    /// The sketch grows by doubling as a cache fills, keeping its counts: a key's block index
    /// gains one bit, so each old block is copied to the two blocks its keys may now map to.
    #[inline]
    pub(crate) fn maintain(&mut self, entries: usize) {
        if entries > self.entries {
            self.grow(entries);
        } else if self.additions as usize >= AGE_AFTER * self.entries {
            self.halve();
        }
    }

    /// Sizes the sketch for `entries` (more than it is sized for), keeping its counts.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, entries: usize) {
        let sized = entries.max(8).next_power_of_two();
        let blocks = (sized * COUNTERS_PER_ENTRY / 8 / BLOCK).max(1);
        let old = core::mem::take(&mut self.blocks);
        self.blocks = (0..blocks)
            .map(|at| {
                old.get(at & old.len().wrapping_sub(1))
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        self.block_mask = blocks - 1;
        self.entries = sized;
    }

    /// Halves every counter now.
    #[cold]
    #[inline(never)]
    fn halve(&mut self) {
        for word in self.blocks.iter_mut().flatten() {
            // Halves each 4-bit counter in place.
            *word = (*word >> 1) & 0x7777_7777;
        }
        self.additions = 0;
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * core::mem::size_of::<Block>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 11)
    }

    #[test]
    fn the_hint_names_the_block_an_increment_changes() {
        let mut sketch = FrequencySketch::default();
        assert_eq!(
            sketch.hint().base,
            0,
            "an unsized sketch offers nothing to prefetch"
        );
        sketch.maintain(512);
        let hint = sketch.hint();
        for key in 0..100 {
            let before = sketch.blocks.clone();
            sketch.increment(hash(key));
            let changed = (0..before.len())
                .find(|&at| before[at] != sketch.blocks[at])
                .expect("an increment changes a counter");
            let named = hint.base + ((hint.block_of)(hash(key)) & hint.mask) * 64;
            assert_eq!(
                named,
                sketch.blocks.as_ptr().addr() + changed * 64,
                "key {key}"
            );
        }
    }

    #[test]
    fn counts_saturate_and_halve_after_four_changing_increments_per_entry() {
        let mut sketch = FrequencySketch::default();
        sketch.maintain(64);
        assert_eq!(sketch.estimate(hash(1)), 0);
        for _ in 0..20 {
            sketch.increment(hash(1));
        }
        for _ in 0..3 {
            sketch.increment(hash(2));
        }
        assert_eq!(sketch.estimate(hash(1)), 15, "4-bit counters saturate");
        assert_eq!(sketch.estimate(hash(2)), 3);
        // Saturated increments do not count toward the halving: 18 changed counters so far;
        // one short of the halving after these.
        for key in 100..(100 + AGE_AFTER as u64 * 64 - 19) {
            sketch.increment(hash(key));
        }
        let before = sketch.estimate(hash(2));
        sketch.maintain(64);
        assert_eq!(sketch.estimate(hash(2)), before, "not yet halved");
        sketch.increment(hash(99));
        sketch.maintain(64);
        assert_eq!(sketch.estimate(hash(1)), 7, "halved");
        assert_eq!(sketch.estimate(hash(2)), before / 2, "halved");
    }

    #[test]
    fn growing_keeps_the_counts() {
        let mut sketch = FrequencySketch::default();
        sketch.maintain(8);
        for key in 0..8 {
            for _ in 0..=key {
                sketch.increment(hash(key));
            }
        }
        let before: Vec<u8> = (0..8).map(|key| sketch.estimate(hash(key))).collect();
        sketch.maintain(1_000);
        let after: Vec<u8> = (0..8).map(|key| sketch.estimate(hash(key))).collect();
        assert_eq!(before, after);
        assert!(
            before
                .iter()
                .zip(1..)
                .all(|(&seen, used)| seen >= used.min(15))
        );
        assert_eq!(
            sketch.heap_bytes(),
            1024 * 16 / 2,
            "sixteen 4-bit counters per entry"
        );
    }
}
