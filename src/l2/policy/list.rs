//! An intrusive circular doubly-linked list through entries' policy state, shared by the
//! policies: the front is the oldest entry (where a CLOCK hand points), the back the newest.

use super::{Entries, SlotId};

/// Policy state that can be linked into a [`List`].
pub(crate) trait Linked {
    fn links(&self) -> (SlotId, SlotId);
    fn set_links(&mut self, prev: SlotId, next: SlotId);
    fn set_prev(&mut self, prev: SlotId);
    fn set_next(&mut self, next: SlotId);
}

/// A list identified by its front; it tracks its length and its entries' total weight.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct List {
    pub(crate) front: Option<SlotId>,
    pub(crate) len: usize,
    pub(crate) weight: u64,
}

impl List {
    /// Links `id` at the back (newest end).
    #[inline(always)]
    pub(crate) fn push_back<M: Linked>(&mut self, entries: &mut impl Entries<M>, id: SlotId) {
        match self.front {
            None => {
                entries.meta_mut(id).set_links(id, id);
                self.front = Some(id);
            }
            Some(front) => {
                let back = entries.meta(front).links().0;
                entries.meta_mut(id).set_links(back, front);
                entries.meta_mut(back).set_next(id);
                entries.meta_mut(front).set_prev(id);
            }
        }
        self.len += 1;
        self.weight += entries.weight(id);
    }

    /// Unlinks `id`, which must be in this list.
    #[inline(always)]
    pub(crate) fn remove<M: Linked>(&mut self, entries: &mut impl Entries<M>, id: SlotId) {
        let links = entries.meta(id).links();
        self.unlink(entries, links, id);
        self.weight -= entries.weight(id);
    }

    /// Takes the entry linked by `(prev, next)`, known to the list's front as `at`, out of the
    /// ring, and counts it off the length (the caller counts its weight).
    #[inline(always)]
    fn unlink<M: Linked>(
        &mut self,
        entries: &mut impl Entries<M>,
        (prev, next): (SlotId, SlotId),
        at: SlotId,
    ) {
        if next == at {
            // The only entry: it links to itself.
            self.front = None;
        } else {
            entries.meta_mut(prev).set_next(next);
            entries.meta_mut(next).set_prev(prev);
            if self.front == Some(at) {
                self.front = Some(next);
            }
        }
        self.len -= 1;
    }

    /// Unlinks the entry that lived at `old` and now lives at `new`, with `old`'s links moved
    /// there (see [`Policy::on_replace`](super::Policy::on_replace)), counting `old_weight` off:
    /// [`replaced`](Self::replaced) then [`remove`](Self::remove) in one step, for an entry
    /// that leaves its place as it is replaced.
    #[inline(always)]
    pub(crate) fn remove_moved<M: Linked>(
        &mut self,
        entries: &mut impl Entries<M>,
        old: SlotId,
        new: SlotId,
        old_weight: u64,
    ) {
        let links = entries.meta(new).links();
        self.unlink(entries, links, old);
        self.weight -= old_weight;
    }

    /// Entry `old` now lives at `new`, with `old`'s links moved there, and weighs
    /// `new_weight` instead of `old_weight` (see
    /// [`Policy::on_replace`](super::Policy::on_replace)): points its neighbours and the front
    /// at `new` (nothing to do when the two are the same) and counts the new weight.
    pub(crate) fn replaced<M: Linked>(
        &mut self,
        entries: &mut impl Entries<M>,
        old: SlotId,
        new: SlotId,
        old_weight: u64,
        new_weight: u64,
    ) {
        self.weight = self.weight - old_weight + new_weight;
        if old == new {
            return;
        }
        let (prev, next) = entries.meta(new).links();
        if prev == old {
            // The only entry: it links to itself.
            entries.meta_mut(new).set_links(new, new);
        } else {
            entries.meta_mut(prev).set_next(new);
            entries.meta_mut(next).set_prev(new);
        }
        if self.front == Some(old) {
            self.front = Some(new);
        }
    }

    /// The entry after `id` (wrapping from the back to the front).
    pub(crate) fn next<M: Linked>(entries: &impl Entries<M>, id: SlotId) -> SlotId {
        entries.meta(id).links().1
    }

    /// Rotates the front to the next entry (a CLOCK hand moving on: the old front becomes the
    /// back).
    pub(crate) fn rotate<M: Linked>(&mut self, entries: &impl Entries<M>) {
        if let Some(front) = self.front {
            self.front = Some(Self::next(entries, front));
        }
    }
}

/// Implements [`Linked`] for a meta type with `prev` and `next` fields.
macro_rules! linked_meta {
    ($meta:ty) => {
        impl $crate::policy::list::Linked for $meta {
            #[inline]
            fn links(&self) -> (SlotId, SlotId) {
                (self.prev, self.next)
            }
            #[inline]
            fn set_links(&mut self, prev: SlotId, next: SlotId) {
                self.prev = prev;
                self.next = next;
            }
            #[inline]
            fn set_prev(&mut self, prev: SlotId) {
                self.prev = prev;
            }
            #[inline]
            fn set_next(&mut self, next: SlotId) {
                self.next = next;
            }
        }
    };
}
pub(crate) use linked_meta;
