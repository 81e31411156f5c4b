//! A slot's storage: the key and value in place, the tag and use byte beside them, and what
//! readers and the writer see of it (see the [parent module](super) for a slot's life).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use super::{NEVER, NIL};
use crate::sync::{AtomicU8, AtomicU32, Ordering};

/// Asks the processor to bring the cache line at `at` closer (a hint: nothing is read, no
/// address is checked; a no-op where the architecture offers no stable prefetch).
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: SSE is enabled (the cfg); a prefetch neither faults nor changes what the program
    // can observe, whatever the address.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = at;
}

/// Hits (the low 7 bits, saturating) and the referenced bit of a slot.
const REFERENCED: u8 = 0x80;
const HITS: u8 = 0x7F;

/// One entry's storage (see the module docs for its life).
#[repr(C)]
pub(crate) struct Slot<K, V> {
    pub(super) key: UnsafeCell<MaybeUninit<K>>,
    pub(super) value: UnsafeCell<MaybeUninit<V>>,
    /// The key's 32-bit hash while live; the stack link otherwise.
    pub(super) tag: AtomicU32,
    /// Hits counted by readers and the referenced bit (see [`Uses`]).
    pub(super) uses: AtomicU8,
}

// SAFETY: a slot owns its key and value; readers share them as `&K` and `&V` (so `Sync` needs
// `K: Sync, V: Sync`), the writer and the reclaimer move and drop them (so `Send` both ways).
unsafe impl<K: Send, V: Send> Send for Slot<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Slot<K, V> {}

impl<K, V> Slot<K, V> {
    pub(super) fn vacant() -> Self {
        Self {
            key: UnsafeCell::new(MaybeUninit::uninit()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            tag: AtomicU32::new(NIL),
            uses: AtomicU8::new(0),
        }
    }

    /// The key of a live or retired slot.
    ///
    /// # Safety
    /// The slot holds a key (live, or retired and not reclaimed) and nothing writes it
    /// meanwhile (see the module docs).
    pub(super) unsafe fn key(&self) -> &K {
        // SAFETY: the caller's guarantee: initialised and not written.
        unsafe { (*self.key.get()).assume_init_ref() }
    }

    /// The value, as [`key`](Self::key).
    ///
    /// # Safety
    /// As `key`.
    pub(super) unsafe fn value(&self) -> &V {
        // SAFETY: as `key`.
        unsafe { (*self.value.get()).assume_init_ref() }
    }
}

/// The readers' count of an entry's hits and its referenced bit: one byte, written by a hit
/// only until the count saturates and the bit is set.
pub(crate) struct Uses<'a>(pub(super) &'a AtomicU8);

impl Uses<'_> {
    /// Counts a hit (up to `cap`, at most 127; a count already beyond stays) and marks the
    /// entry referenced; returns the hits before this one and with it (equal once the count
    /// has reached `cap`). Writes nothing once the count has reached `cap` and the mark is set.
    #[inline]
    pub(crate) fn record(&self, cap: u8) -> (u8, u8) {
        let cap = cap.min(HITS);
        // Relaxed: a hint for promotion and the policy; the promotion itself is ordered by the
        // shard's lock.
        let mut seen = self.0.load(Ordering::Relaxed);
        loop {
            let hits = seen & HITS;
            if seen & REFERENCED != 0 && hits >= cap {
                return (hits, hits);
            }
            let wanted = REFERENCED | if hits < cap { hits + 1 } else { hits };
            // A read-modify-write (not a load and a store) so that a racing hit cannot write
            // back a smaller count. Relaxed: as above.
            match self
                .0
                .compare_exchange_weak(seen, wanted, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (hits, wanted & HITS),
                Err(now) => seen = now,
            }
        }
    }

    /// The hits so far.
    #[inline]
    pub(crate) fn hits(&self) -> u8 {
        // Relaxed: as in `record`.
        self.0.load(Ordering::Relaxed) & HITS
    }

    /// Whether the entry was marked referenced since the last call; clears the mark.
    #[inline]
    pub(crate) fn take_referenced(&self) -> bool {
        // Relaxed: as in `record`. A read first, so a clear mark is not written.
        self.0.load(Ordering::Relaxed) & REFERENCED != 0
            && self.0.fetch_and(!REFERENCED, Ordering::Relaxed) & REFERENCED != 0
    }

    /// Sets the hit count to its maximum (an entry copied into L1 when stored).
    pub(crate) fn saturate(&self) {
        // Relaxed: as in `record`.
        self.0.fetch_or(HITS, Ordering::Relaxed);
    }
}

/// An entry a reader found: its slot, readable for as long as the reader's epoch.
pub(crate) struct Found<'g, K, V> {
    pub(super) slot: &'g Slot<K, V>,
    pub(super) id: u32,
    /// The earlier of its deadline and its idle deadline.
    pub(super) expires: u64,
}

impl<'g, K, V> Found<'g, K, V> {
    /// The slot's id (the writer can check it is still the key's: [`RawWriter::holds`](super::RawWriter::holds)).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn key(&self) -> &'g K {
        // SAFETY: found through the index under an epoch: the slot holds its key until the
        // epoch ends (a retirement waits for it) and nothing writes it meanwhile.
        unsafe { self.slot.key() }
    }

    pub(crate) fn value(&self) -> &'g V {
        // SAFETY: as `key`.
        unsafe { self.slot.value() }
    }

    /// The entry's deadline ([`NEVER`] if it has none): the earlier of the one it was stored
    /// with and its idle deadline, if its shard keeps those.
    pub(crate) fn expires(&self) -> u64 {
        self.expires
    }

    pub(crate) fn uses(&self) -> Uses<'g> {
        Uses(&self.slot.uses)
    }
}

/// A deadline beside a slot that readers move: an entry's idle deadline (time to idle) or its
/// refresh time (refresh after write). Set by the writer when it fills the slot, moved or
/// claimed later by the readers of the entry, so atomic. All accesses are relaxed: the value
/// is a time, ordered with nothing else (the first one is published with the slot, like its
/// key), and a reader that reads an older one than another reader stored only acts a little
/// early or late; a claim is a compare-and-swap, so exactly one reader wins it.
#[cfg(any(loom, target_has_atomic = "64"))]
pub(crate) struct Moving(crate::sync::AtomicU64);

#[cfg(any(loom, target_has_atomic = "64"))]
impl Moving {
    pub(super) fn never() -> Self {
        Self(crate::sync::AtomicU64::new(NEVER))
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, at: u64) {
        self.0.store(at, Ordering::Relaxed);
    }

    /// Moves the deadline to `at` if that is more than `slack` later. A plain load and store,
    /// not a `fetch_max`: two readers racing store nearly the same time, and a
    /// read-modify-write on every read of a hot entry would cost more than the error.
    pub(super) fn extend(&self, at: u64, slack: u64) {
        if at > self.get().saturating_add(slack) {
            self.set(at);
        }
    }

    /// Sets the deadline to `at` if that differs from it by more than `slack`, either way.
    pub(super) fn reset(&self, at: u64, slack: u64) {
        if at.abs_diff(self.get()) > slack {
            self.set(at);
        }
    }

    /// Takes the deadline if it has come by `now`, leaving [`NEVER`] (no other reader can take
    /// it until [`set`](Self::set) puts one back); the deadline taken.
    pub(super) fn claim(&self, now: u64) -> Option<u64> {
        let due = self.get();
        if due > now {
            return None;
        }
        self.0
            .compare_exchange(due, NEVER, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
    }
}

/// Without 64-bit atomics the cache keeps no moving deadlines (the builder offers no time to
/// idle and no refresh there): every entry's is [`NEVER`].
#[cfg(not(any(loom, target_has_atomic = "64")))]
pub(crate) struct Moving;

#[cfg(not(any(loom, target_has_atomic = "64")))]
impl Moving {
    pub(super) fn never() -> Self {
        Self
    }

    pub(super) fn get(&self) -> u64 {
        NEVER
    }

    pub(super) fn set(&self, _: u64) {}

    pub(super) fn extend(&self, _: u64, _: u64) {}

    pub(super) fn reset(&self, _: u64, _: u64) {}

    pub(super) fn claim(&self, _: u64) -> Option<u64> {
        None
    }
}

/// An entry's deadline, beside its slot: written by the writer while the slot is free (no
/// reader can reach it), read by readers once it is published (Acquire), never changed while
/// it is live. So a plain `u64`, even on targets without 64-bit atomics.
pub(crate) struct Deadline(UnsafeCell<u64>);

// SAFETY: written only while its slot is unreachable by readers (the writer owns it then), and
// read only after the slot's publication, which orders the write before the read.
unsafe impl Sync for Deadline {}

impl Deadline {
    pub(super) fn never() -> Self {
        Self(UnsafeCell::new(NEVER))
    }

    /// The deadline.
    ///
    /// # Safety
    /// The slot is published (or the caller is its writer) and not being filled.
    pub(super) unsafe fn get(&self) -> u64 {
        // SAFETY: the caller's guarantee: no write runs meanwhile.
        unsafe { *self.0.get() }
    }

    /// Sets the deadline.
    ///
    /// # Safety
    /// The slot is free (no reader can reach it) and the caller is its writer.
    pub(super) unsafe fn set(&self, expires: u64) {
        // SAFETY: the caller's guarantee: no reader reads it meanwhile.
        unsafe { *self.0.get() = expires };
    }
}
