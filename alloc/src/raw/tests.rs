//! The raw layer under Miri (Tree Borrows) as much as natively: small counts, every path.
//! `MIRIFLAGS=-Zmiri-tree-borrows cargo +nightly miri test -p stratacache-alloc --lib`

extern crate std;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use allocator_api2::alloc::Allocator;

use super::arena::Arena;
use super::source::ChunkSource;
use super::span::SPAN;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Bytes stamped at each end of a block (not all of it: Miri checks every byte it touches).
const STAMP: usize = 32;

/// Allocates, writes `tag` over both ends of the block and hands it back with its layout.
fn stamped(arena: &Arena, lane: usize, size: usize, tag: u8) -> (NonNull<u8>, Layout) {
    let l = layout(size);
    let block = arena.allocate_in(lane, l).unwrap().cast::<u8>();
    let end = size.saturating_sub(STAMP);
    // SAFETY: a fresh block of at least `size` bytes, ours alone; both ranges lie inside it.
    unsafe {
        block.as_ptr().write_bytes(tag, STAMP.min(size));
        block.as_ptr().add(end).write_bytes(tag, size - end);
    }
    (block, l)
}

/// Checks the tag at both ends and frees the block.
fn check_and_free(arena: &Arena, (block, l): (NonNull<u8>, Layout), tag: u8) {
    let end = l.size().saturating_sub(STAMP);
    // SAFETY: the block is live and both ends were written with `tag`.
    let (head, tail) = unsafe {
        (
            core::slice::from_raw_parts(block.as_ptr(), STAMP.min(l.size())),
            core::slice::from_raw_parts(block.as_ptr().add(end), l.size() - end),
        )
    };
    assert!(
        head.iter().chain(tail).all(|&b| b == tag),
        "a block was overwritten"
    );
    // SAFETY: allocated by this arena with this layout, freed once.
    unsafe { arena.deallocate(block, l) };
}

#[test]
fn small_blocks_fill_spans_and_come_back_to_them() {
    let arena = Arena::new();
    // A span holds (64 KiB - 1 KiB) / 4096 = 15 blocks of 4 KiB: 40 take three spans.
    let blocks: Vec<_> = (0..40).map(|i| stamped(&arena, 0, 4096, i as u8)).collect();
    assert_eq!(arena.stats().in_use, 40 * 4096);
    for (i, block) in blocks.into_iter().enumerate() {
        check_and_free(&arena, block, i as u8);
    }
    assert_eq!(arena.stats().in_use, 0);
    let reserved = arena.stats().reserved;
    // The same lane: its current span and the two listed full ones serve all 40 again
    // (another lane would carve a span for want of the first lane's current one).
    let again: Vec<_> = (0..40).map(|i| stamped(&arena, 0, 4096, i as u8)).collect();
    assert_eq!(arena.stats().reserved, reserved, "the spans were reused");
    for (i, block) in again.into_iter().enumerate() {
        check_and_free(&arena, block, i as u8);
    }
}

#[test]
fn large_blocks_are_reused_and_a_dedicated_chunk_serves_a_huge_one() {
    let arena = Arena::new();
    let a = stamped(&arena, 0, 20_000, 1);
    let first = a.0;
    check_and_free(&arena, a, 1);
    let b = stamped(&arena, 0, 30_000, 2);
    assert_eq!(b.0, first, "same class, same block");
    let huge = stamped(&arena, 0, 200 << 10, 3); // over half a chunk under Miri
    check_and_free(&arena, huge, 3);
    check_and_free(&arena, b, 2);
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn threads_take_and_free_in_one_span() {
    let arena = Arc::new(Arena::new());
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let arena = &arena;
            s.spawn(move || {
                for round in 0..8u8 {
                    let tag = t * 16 + round;
                    let held: Vec<_> = (0..6).map(|_| stamped(arena, 0, 4096, tag)).collect();
                    for block in held {
                        check_and_free(arena, block, tag);
                    }
                }
            });
        }
    });
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn a_block_freed_by_another_thread_returns_to_its_span() {
    struct Sendable((NonNull<u8>, Layout));
    // SAFETY: the block is plain memory handed to the other thread, which frees it.
    unsafe impl Send for Sendable {}
    let arena = Arena::new();
    let held: Vec<_> = (0..15)
        .map(|_| Sendable(stamped(&arena, 0, 4096, 7)))
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for Sendable(block) in held {
                check_and_free(&arena, block, 7);
            }
        });
    });
    let reserved = arena.stats().reserved;
    let again: Vec<_> = (0..15).map(|_| stamped(&arena, 0, 4096, 8)).collect();
    assert_eq!(arena.stats().reserved, reserved);
    for block in again {
        check_and_free(&arena, block, 8);
    }
}

#[test]
fn a_region_source_and_collections_in_the_arena() {
    // A vector growing from 8 to 2,400 bytes passes through eight small classes, a span each.
    let mut region: Vec<MaybeUninit<u8>> = alloc::vec![MaybeUninit::uninit(); 24 * SPAN];
    let base = NonNull::new(region.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: the buffer is used by nothing else and outlives the arena (dropped after it).
    let source = unsafe { ChunkSource::from_raw_region(base, region.len()) };
    let arena = Arena::builder().source(source).build().unwrap();
    {
        let mut v: allocator_api2::vec::Vec<u64, &Arena> = allocator_api2::vec::Vec::new_in(&arena);
        for i in 0..300 {
            v.push(i);
        }
        assert_eq!(v.iter().sum::<u64>(), 300 * 299 / 2);
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(v.len(), 10);
    }
    assert_eq!(arena.stats().in_use, 0);
    assert!(
        Allocator::allocate(&arena, layout(2 << 20)).is_err(),
        "past the region"
    );
    drop(arena);
    drop(region);
}
