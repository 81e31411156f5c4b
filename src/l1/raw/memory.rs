//! Where L1's nodes are allocated (the global allocator, or a replica's arena: the tiered cache
//! gives each socket's replica its node's arena), and how retired nodes come back.
//!
//! # Reclamation at quiet points
//! A retired node cannot be freed while a guard pinned before its unlink lives. The epoch
//! collector tracks that, and runs a node's deferred function once no such guard remains;
//! crossbeam-epoch runs those functions inside `pin` (every 128th) and `flush`, that is inside
//! whatever operation happens to pin. So the deferred function does not drop the node: it only
//! pushes it onto this memory's **ready list** (a lock-free stack linked through the dead
//! node's hash field), which runs no user code. The node's key and value are dropped, and its
//! memory freed, only by [`NodeMemory::reclaim`], which the table's owner calls where user code
//! may run: between frames, in `collect`, after a write has released its locks. A `get` never
//! drops anything.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use alloc::sync::Arc;
use stratacache_alloc::Arena;

use super::set::Node;
use crate::sync::epoch::{Guard, Shared};
use crate::sync::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// A replica's node memory and its ready list. Kept by the raw table after its collector, so
/// every deferred push (the collector runs the last ones as it drops) finds it alive; its own
/// drop frees what is left on the list.
pub(crate) struct NodeMemory {
    arena: Option<(Arc<Arena>, usize)>,
    ready: Ready,
    /// Drops and frees one node of the table's type (`free_erased::<K, V>`), so that
    /// reclamation and this memory's drop need not know `K` and `V`.
    free_node: unsafe fn(&NodeMemory, NonNull<u8>),
}

/// Retired nodes whose grace period is over, waiting to be dropped and freed: a stack linked
/// through each node's `hash` field (no reader can see a node here). Any thread pushes; one at
/// a time pops (`draining`), so a pop's compare-and-swap cannot meet a node popped and pushed
/// again (no ABA).
struct Ready {
    head: AtomicPtr<u8>,
    draining: AtomicBool,
    /// Nodes retired and not yet freed (in the collector's bags or on this list).
    pending: AtomicUsize,
}

/// A node made for publishing, freed to its memory if it is dropped unpublished.
pub(crate) struct NewNode<'m, K, V> {
    ptr: NonNull<Node<K, V>>,
    memory: &'m NodeMemory,
}

/// Drops and frees a node of type `Node<K, V>`.
///
/// # Safety
/// As [`NodeMemory::free`], for a node of these types.
unsafe fn free_erased<K, V>(memory: &NodeMemory, node: NonNull<u8>) {
    // SAFETY: the caller's guarantee.
    unsafe { memory.free(node.cast::<Node<K, V>>()) }
}

impl NodeMemory {
    /// Nodes of `Node<K, V>` from the global allocator.
    pub(crate) fn global<K, V>() -> Self {
        Self {
            arena: None,
            ready: Ready::default(),
            free_node: free_erased::<K, V>,
        }
    }

    /// Nodes of `Node<K, V>` from `arena`, on `lane`.
    pub(crate) fn arena<K, V>(arena: Arc<Arena>, lane: usize) -> Self {
        Self {
            arena: Some((arena, lane)),
            ready: Ready::default(),
            free_node: free_erased::<K, V>,
        }
    }

    /// Whether retired nodes are ready to be freed (a hint, read without ordering).
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        // Relaxed: a hint; `reclaim` reads the list properly.
        !self.ready.head.load(Ordering::Relaxed).is_null()
    }

    /// Nodes retired and not yet freed.
    pub(crate) fn pending(&self) -> usize {
        // Relaxed: a count for back-pressure and statistics; it orders nothing.
        self.ready.pending.load(Ordering::Relaxed)
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

    /// Retires an unlinked node: once no guard can see it, the collector moves it to the
    /// ready list, from where [`reclaim`](Self::reclaim) drops and frees it (a no-op for null).
    ///
    /// # Safety
    /// `node` was made by this memory, unlinked from its slot under the set lock by this
    /// caller (so no other thread retires it too), and `guard` is pinned on the collector of
    /// the table that keeps this memory (which drops that collector before this memory).
    pub(crate) unsafe fn retire<K, V>(&self, node: Shared<'_, Node<K, V>>, guard: &Guard) {
        if node.is_null() {
            return;
        }
        // Relaxed: a count (see `pending`).
        self.ready.pending.fetch_add(1, Ordering::Relaxed);
        let ready: *const Ready = &self.ready;
        let node = node.as_raw().cast_mut();
        // SAFETY: the node is unreachable for new readers and retired once; the collector runs
        // the function after every guard that could see it is gone, and before this memory
        // (which holds `ready`) drops. The function runs no user code: it links the dead node
        // into the ready list. Two words: crossbeam keeps the function inline, allocating
        // nothing.
        unsafe {
            guard.defer_unchecked(move || (*ready).push(node));
        }
    }

    /// Drops and frees up to `max` nodes of the ready list (their keys' and values' `Drop`
    /// runs here: call it where user code may run, holding no lock). Returns how many. If
    /// another thread is reclaiming, returns 0 at once.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        // Relaxed: an empty list needs no ordering; a non-empty one is read with Acquire below.
        if self.ready.head.load(Ordering::Relaxed).is_null() {
            return 0;
        }
        // Acquire pairs with the Release in `Draining::drop`: the previous drainer's pops
        // happened before.
        if self.ready.draining.swap(true, Ordering::Acquire) {
            return 0;
        }
        // Ends the round even if a `Drop` panics (that node's memory is leaked).
        let mut round = Draining {
            ready: &self.ready,
            freed: 0,
        };
        while round.freed < max {
            let Some(node) = self.ready.pop() else {
                break;
            };
            round.freed += 1;
            // SAFETY: a node on the ready list was made by this memory (of the table's
            // types, which `free_node` was made for), is linked nowhere and no guard can see
            // it; popping it made this thread its only owner. Its `hash` field held the list
            // link, which dropping a node does not read.
            unsafe { (self.free_node)(self, node) };
        }
        round.freed
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

/// A round of draining: releases the drainer's flag and counts what left the list when it
/// ends, normally or by a panic in a `Drop`.
struct Draining<'a> {
    ready: &'a Ready,
    freed: usize,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        // Release pairs with the Acquire in `reclaim`.
        self.ready.draining.store(false, Ordering::Release);
        // Relaxed: a count.
        self.ready.pending.fetch_sub(self.freed, Ordering::Relaxed);
    }
}

impl Default for Ready {
    fn default() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            draining: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
        }
    }
}

impl Ready {
    /// Links a dead node onto the list.
    fn push<K, V>(&self, node: *mut Node<K, V>) {
        // Relaxed: the node is published by the compare-and-swap's Release below.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is dead (no guard can see it) and owned by the list from now
            // on; its `hash` field, never read again as a hash, holds the link.
            unsafe { ptr::addr_of_mut!((*node).hash).write(head as usize as u64) };
            // Release pairs with the Acquire in `pop`: the link written above is visible to
            // the popper. Relaxed on failure: the new head is only used as the next link.
            match self.head.compare_exchange_weak(
                head,
                node.cast(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Unlinks the newest node. Only the holder of `draining` pops.
    fn pop(&self) -> Option<NonNull<u8>> {
        // Acquire pairs with the Release in `push`: the node's link is visible.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let node = NonNull::new(head)?;
            // SAFETY: a node on the list stays there (and allocated) until popped, and only
            // this thread pops. Every node's `hash` is its first field (`Node` is `repr(C)`).
            let next = unsafe { node.cast::<u64>().as_ptr().read() } as usize as *mut u8;
            // Acquire on both outcomes, as above, for the node the next attempt reads.
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(node),
                Err(now) => head = now,
            }
        }
    }
}

impl Drop for NodeMemory {
    fn drop(&mut self) {
        // The table's collector has dropped (it is declared before this memory), running every
        // deferred push: the list holds every retired node not freed yet.
        while self.reclaim(usize::MAX) > 0 {}
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
