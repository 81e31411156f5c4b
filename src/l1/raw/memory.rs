//! Where L1's nodes are allocated: the global allocator (boxes, as crossbeam-epoch's `Owned`),
//! or a replica's arena (the tiered cache gives each socket's replica its node's arena).

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use alloc::sync::Arc;
use stratacache_alloc::Arena;

use super::set::Node;
use crate::sync::epoch::{Guard, Shared};

/// A replica's node memory. Kept by the raw table after its collector, so every deferred free
/// into an arena runs while the arena is alive.
#[derive(Default)]
pub(crate) struct NodeMemory {
    arena: Option<(Arc<Arena>, usize)>,
}

/// A node made for publishing, freed to its memory if it is dropped unpublished.
pub(crate) struct NewNode<'m, K, V> {
    ptr: NonNull<Node<K, V>>,
    memory: &'m NodeMemory,
}

impl NodeMemory {
    /// Nodes from `arena`, on `lane`.
    pub(crate) fn arena(arena: Arc<Arena>, lane: usize) -> Self {
        Self {
            arena: Some((arena, lane)),
        }
    }

    /// Allocates `node`; hands it back when the arena is spent.
    pub(crate) fn make<K, V>(&self, node: Node<K, V>) -> Result<NewNode<'_, K, V>, Node<K, V>> {
        let ptr = match &self.arena {
            None => NonNull::from(alloc::boxed::Box::leak(alloc::boxed::Box::new(node))),
            Some((arena, lane)) => {
                let Ok(block) = arena.allocate_in(*lane, Layout::new::<Node<K, V>>()) else {
                    return Err(node);
                };
                let ptr = block.cast::<Node<K, V>>();
                // SAFETY: a fresh block of the node's layout, ours alone.
                unsafe { ptr.as_ptr().write(node) };
                ptr
            }
        };
        Ok(NewNode { ptr, memory: self })
    }

    /// Retires an unlinked node: it is dropped and freed once no guard can see it (a no-op for
    /// null).
    ///
    /// # Safety
    /// `node` was made by this memory, unlinked from its slot under the set lock by this
    /// caller (so no other thread retires it too), and `guard` is pinned on the collector of
    /// the table that keeps this memory.
    pub(crate) unsafe fn retire<K, V>(&self, node: Shared<'_, Node<K, V>>, guard: &Guard) {
        if node.is_null() {
            return;
        }
        match &self.arena {
            // SAFETY: the node is a box (made by `make`), unreachable for new readers and
            // retired once; the collector frees it after the pinned readers unpin.
            None => unsafe { guard.defer_destroy(node) },
            Some((arena, _)) => {
                let arena: *const Arena = Arc::as_ptr(arena);
                let node = node.as_raw().cast_mut();
                // SAFETY: as above; and the arena outlives every deferred function of the
                // table's collector (this memory is dropped after the collector, and holds the
                // arena). Two words: crossbeam keeps the function inline, allocating nothing.
                unsafe {
                    guard.defer_unchecked(move || {
                        ptr::drop_in_place(node);
                        (*arena).deallocate(
                            NonNull::new_unchecked(node).cast(),
                            Layout::new::<Node<K, V>>(),
                        );
                    });
                }
            }
        }
    }

    /// Drops and frees a node no reader can reach.
    ///
    /// # Safety
    /// `node` was made by this memory, is linked nowhere, and nothing uses it any more.
    pub(crate) unsafe fn free<K, V>(&self, node: NonNull<Node<K, V>>) {
        // SAFETY: the caller gives the node up: its contents are dropped once, then its memory
        // freed without dropping them again.
        unsafe {
            ptr::drop_in_place(node.as_ptr());
            self.free_uninit(node);
        }
    }

    /// Frees a node's memory without dropping its contents (dropped or moved out already).
    ///
    /// # Safety
    /// `node` was made by this memory, its contents are gone, and nothing uses it.
    unsafe fn free_uninit<K, V>(&self, node: NonNull<Node<K, V>>) {
        match &self.arena {
            // SAFETY: a box of `Node<K, V>` whose contents are gone: freed as a box of
            // uninitialised memory of the same layout.
            None => drop(unsafe {
                alloc::boxed::Box::from_raw(
                    node.as_ptr().cast::<core::mem::MaybeUninit<Node<K, V>>>(),
                )
            }),
            // SAFETY: made from this arena with the node's layout.
            Some((arena, _)) => unsafe {
                arena.deallocate(node.cast(), Layout::new::<Node<K, V>>())
            },
        }
    }
}

impl<'m, K, V> NewNode<'m, K, V> {
    /// The node.
    pub(crate) fn node(&self) -> &Node<K, V> {
        // SAFETY: the node is initialised and owned by this value.
        unsafe { self.ptr.as_ref() }
    }

    /// Gives the node up for publishing.
    pub(crate) fn into_shared<'g>(self, _guard: &'g Guard) -> Shared<'g, Node<K, V>> {
        let ptr = self.ptr;
        core::mem::forget(self);
        Shared::from(ptr.as_ptr().cast_const())
    }

    /// Takes the node back, unpublished.
    pub(crate) fn into_inner(self) -> Node<K, V> {
        let ptr = self.ptr;
        let memory = self.memory;
        core::mem::forget(self);
        // SAFETY: the node is initialised and owned by this value, read once here; its memory
        // is then freed without dropping it again.
        unsafe {
            let node = ptr::read(ptr.as_ptr());
            memory.free_uninit(ptr);
            node
        }
    }
}

impl<K, V> Drop for NewNode<'_, K, V> {
    fn drop(&mut self) {
        // SAFETY: an unpublished node, owned by this value.
        unsafe { self.memory.free(self.ptr) };
    }
}
