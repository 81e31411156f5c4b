//! Read buffers: where a shard's readers record the hits its policy has not been told of yet.
//!
//! A hit must not take the shard's lock or write memory other threads write, yet the policy
//! (recency order, frequency sketch) should learn of it. So a reader appends the key's 32-bit
//! hash to a small ring of its own stripe (threads map to stripes; with more threads than
//! stripes, some share one), with a relaxed load and two relaxed stores: no read-modify-write.
//! The shard's next writer replays the rings through [`Policy::on_access`] in a batch
//! (Caffeine's read buffers). The buffers are lossy: a ring overwritten before it is replayed,
//! or two racing readers of one stripe, lose records; a reader that finds its ring full tries
//! to take the lock and replay it itself, and gives up if another thread holds it. A lost
//! record still leaves the entry marked referenced, which the policy asks before evicting.
//!
//! [`Policy::on_access`]: super::Policy::on_access

use alloc::boxed::Box;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicBool, AtomicU32, Ordering};

/// Records a ring holds.
pub(crate) const RING: usize = 15;

/// One stripe: a ring of hashes, how many were written and how many the writer replayed. One
/// cache line on 64-bit targets.
struct Stripe {
    ring: [AtomicU32; RING],
    /// Records written (wrapping).
    written: AtomicU32,
}

/// A shard's read buffers: one ring per stripe.
pub(crate) struct ReadBuffer {
    /// Whether some ring may hold records not replayed: a writer with nothing to replay
    /// reads this one word instead of every stripe's line.
    pending: CachePadded<AtomicBool>,
    stripes: Box<[CachePadded<Stripe>]>,
    /// Per stripe, records the writer replayed (its own state, read by readers as a hint).
    replayed: Box<[AtomicU32]>,
    mask: usize,
}

impl ReadBuffer {
    /// Buffers of `stripes` stripes (rounded up to a power of two).
    pub(crate) fn new(stripes: usize) -> Self {
        let stripes = stripes.next_power_of_two().max(1);
        Self {
            pending: CachePadded::new(AtomicBool::new(false)),
            stripes: (0..stripes)
                .map(|_| {
                    CachePadded::new(Stripe {
                        ring: core::array::from_fn(|_| AtomicU32::new(0)),
                        written: AtomicU32::new(0),
                    })
                })
                .collect(),
            replayed: (0..stripes).map(|_| AtomicU32::new(0)).collect(),
            mask: stripes - 1,
        }
    }

    /// Records a hit on `hash` in `stripe`'s ring. Returns whether the ring is now full of
    /// records not replayed (the caller may replay it).
    #[inline]
    pub(crate) fn record(&self, stripe: usize, hash: u32) -> bool {
        let at = stripe & self.mask;
        let stripe = &self.stripes[at];
        // Relaxed: the records are hints; the writer reads them after the lock's acquire, and
        // what it misses it reads at a later replay (or loses, which is allowed).
        let written = stripe.written.load(Ordering::Relaxed);
        stripe.ring[written as usize % RING].store(hash, Ordering::Relaxed);
        let written = written.wrapping_add(1);
        // Release pairs with the Acquire in `replay`: the record above is visible to a writer
        // that sees the count.
        stripe.written.store(written, Ordering::Release);
        // Relaxed load: a flag already set is left alone (no write to a shared line). Release
        // store pairs with the Acquire swap in `replay`: a writer that clears the flag sees the
        // count above. (A flag seen set just before a writer clears it leaves this record for
        // the replay after the next record: records are hints.)
        if !self.pending.load(Ordering::Relaxed) {
            self.pending.store(true, Ordering::Release);
        }
        // Relaxed: a hint.
        written.wrapping_sub(self.replayed[at].load(Ordering::Relaxed)) >= RING as u32
    }

    /// Whether a record may be waiting (a look: [`replay`](Self::replay) decides).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        // Relaxed: a hint; `replay`'s swap orders what it reads.
        self.pending.load(Ordering::Relaxed)
    }

    /// Replays every stripe's records not replayed yet (at most a ring's worth each) into
    /// `replay`. The shard's writer calls this, holding its lock.
    pub(crate) fn replay(&self, mut replay: impl FnMut(u32)) {
        // Acquire pairs with the Release store in `record`.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return;
        }
        for (stripe, replayed) in self.stripes.iter().zip(self.replayed.iter()) {
            // Acquire pairs with the Release in `record`.
            let written = stripe.written.load(Ordering::Acquire);
            // Relaxed: the writer's own count (written only under the shard's lock).
            let done = replayed.load(Ordering::Relaxed);
            let waiting = written.wrapping_sub(done).min(RING as u32);
            if waiting == 0 {
                continue;
            }
            for back in (1..=waiting).rev() {
                let at = written.wrapping_sub(back) as usize % RING;
                // Relaxed: see `record`.
                replay(stripe.ring[at].load(Ordering::Relaxed));
            }
            replayed.store(written, Ordering::Relaxed);
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        core::mem::size_of::<CachePadded<AtomicBool>>()
            + self.stripes.len()
                * (core::mem::size_of::<CachePadded<Stripe>>() + core::mem::size_of::<AtomicU32>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_replayed_once_in_order_and_only_the_last_ring_full() {
        let buffer = ReadBuffer::new(2);
        for hash in 1..=5 {
            assert!(!buffer.record(0, hash));
        }
        buffer.record(1, 99);
        let mut seen = alloc::vec::Vec::new();
        buffer.replay(|hash| seen.push(hash));
        assert_eq!(seen, [1, 2, 3, 4, 5, 99]);
        seen.clear();
        buffer.replay(|hash| seen.push(hash));
        assert!(seen.is_empty(), "each record is replayed once");
        let full = (1..=RING as u32 + 4).fold(false, |_, hash| buffer.record(0, hash));
        assert!(full, "a full ring says so");
        buffer.replay(|hash| seen.push(hash));
        assert_eq!(seen, (5..=RING as u32 + 4).collect::<alloc::vec::Vec<_>>());
    }
}
