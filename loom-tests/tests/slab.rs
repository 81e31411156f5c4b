//! Loom models of the arena's slab protocol (`alloc/src/raw/span.rs`): claiming a block's bit
//! against other claims and against frees, and the partial list that finds spans again once
//! a block comes back. Under loom a span holds three blocks of the 2 KiB class, so two
//! threads exhaust spans and carve new ones.
#![cfg(loom)]

use core::alloc::Layout;
use core::ptr::NonNull;

use loom::sync::Arc;
use loom::thread;
use stratacache_alloc::Arena;

const BLOCK: usize = 2048;

fn layout() -> Layout {
    Layout::from_size_align(BLOCK, 8).unwrap()
}

/// A block's address, which is `Send`.
type Addr = usize;

fn take(arena: &Arena, lane: usize) -> Addr {
    arena
        .allocate_in(lane, layout())
        .unwrap()
        .cast::<u8>()
        .as_ptr() as usize
}

fn give(arena: &Arena, block: Addr) {
    let block = NonNull::new(block as *mut u8).unwrap();
    // SAFETY: every address given back here was taken from this arena with this layout by
    // `take`, and is given back once.
    unsafe { arena.deallocate(block, layout()) };
}

fn blocks(arena: &Arena) -> (usize, usize) {
    arena
        .class_stats()
        .find(|c| c.block_size == BLOCK)
        .map_or((0, 0), |c| (c.blocks, c.in_use))
}

/// Checks that no block in `held` was handed out twice and the count in use is exact, then
/// gives them all back and checks the arena is empty.
fn all_distinct_then_give_back(arena: &Arena, held: Vec<Addr>) {
    let mut distinct = held.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        held.len(),
        "a block was handed out twice: {held:x?}"
    );
    assert_eq!(blocks(arena).1, held.len());
    for block in held {
        give(arena, block);
    }
    assert_eq!(blocks(arena).1, 0);
}

/// Two threads on one lane (so on one span) take, give back and take again: no block is ever
/// held twice, and the count of blocks in use is exact afterwards.
#[test]
fn concurrent_takes_and_frees_never_share_a_block() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let other = Arc::clone(&arena);
        let worker = thread::spawn(move || {
            let a = take(&other, 0);
            let b = take(&other, 0);
            give(&other, a);
            let c = take(&other, 0);
            [b, c]
        });
        let x = take(&arena, 0);
        let y = take(&arena, 0);
        give(&arena, x);
        let z = take(&arena, 0);
        let mut held = worker.join().unwrap().to_vec();
        held.extend([y, z]);
        all_distinct_then_give_back(&arena, held);
    });
}

/// A block given back to a full span while another thread on the same lane moves on to a new
/// span: once both are done, every free block is reachable from the lane (its current span or
/// the partial list), so taking them all carves nothing new.
#[test]
fn a_span_that_regains_a_block_is_found_again() {
    loom::model(|| {
        let arena = Arc::new(Arena::new());
        let full: Vec<Addr> = (0..3).map(|_| take(&arena, 0)).collect();
        let _next = take(&arena, 0); // a second span, now the lane's current one
        let other = Arc::clone(&arena);
        let freed = full[0];
        let freer = thread::spawn(move || give(&other, freed));
        let more: Vec<Addr> = (0..3).map(|_| take(&arena, 0)).collect();
        freer.join().unwrap();
        let (carved, in_use) = blocks(&arena);
        for _ in 0..carved - in_use {
            take(&arena, 0);
        }
        assert_eq!(
            blocks(&arena).0,
            carved,
            "a free block was stranded: taking the free ones carved a new span"
        );
        drop(more);
    });
}

/// With a budget, lanes share spans that have room: two threads on two lanes take from the
/// same span, give back and take again, and never hold one block twice.
#[test]
fn lanes_sharing_a_span_under_a_budget_never_share_a_block() {
    loom::model(|| {
        let arena = Arc::new(Arena::builder().budget(64 << 10).build().unwrap());
        let other = Arc::clone(&arena);
        let worker = thread::spawn(move || {
            let a = take(&other, 1);
            give(&other, a);
            [take(&other, 1), take(&other, 1)]
        });
        let x = take(&arena, 0);
        let y = take(&arena, 0);
        let mut held = worker.join().unwrap().to_vec();
        held.extend([x, y]);
        all_distinct_then_give_back(&arena, held);
    });
}
