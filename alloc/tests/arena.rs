//! The arena's behaviour: classes, reuse, budgets, regions, the `Allocator` trait, threads.

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::collections::HashSet;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as ApiVec;
use stratacache_alloc::{Arena, ArenaError, ChunkSource};

/// Fewer rounds under Miri, which is slow.
const SCALE: usize = if cfg!(miri) { 1 } else { 16 };

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// A block held by a test, freed to its allocator on drop.
struct Held<'a, A: Allocator> {
    allocator: &'a A,
    block: NonNull<u8>,
    len: usize,
    layout: Layout,
}

impl<'a, A: Allocator> Held<'a, A> {
    fn new(allocator: &'a A, layout: Layout) -> Option<Self> {
        let block = allocator.allocate(layout).ok()?;
        assert!(block.len() >= layout.size());
        Some(Self {
            allocator,
            block: block.cast(),
            len: block.len(),
            layout,
        })
    }

    fn addr(&self) -> usize {
        self.block.as_ptr() as usize
    }

    /// Fills the block with `tag`.
    fn stamp(&mut self, tag: u8) {
        // SAFETY: the block is live, this holder's alone, and `layout.size()` bytes long.
        unsafe { self.block.as_ptr().write_bytes(tag, self.layout.size()) };
    }

    /// Whether the block still holds `tag` everywhere.
    fn stamped(&self, tag: u8) -> bool {
        // SAFETY: as in `stamp`; every byte was written by `stamp`.
        let bytes = unsafe { core::slice::from_raw_parts(self.block.as_ptr(), self.layout.size()) };
        bytes.iter().all(|&b| b == tag)
    }

    /// Grows or shrinks the block to `new`.
    fn resize(&mut self, new: Layout) {
        // SAFETY: the block came from this allocator with `self.layout`, and is replaced by
        // the result, which the holder owns from now on.
        let block = unsafe {
            if new.size() >= self.layout.size() {
                self.allocator.grow(self.block, self.layout, new)
            } else {
                self.allocator.shrink(self.block, self.layout, new)
            }
        }
        .unwrap();
        self.block = block.cast();
        self.len = block.len();
        self.layout = new;
    }
}

// SAFETY: a held block is plain memory owned by its holder; `A: Sync` lets the holder free it
// through a shared borrow from any thread.
unsafe impl<A: Allocator + Sync> Send for Held<'_, A> {}

impl<A: Allocator> Drop for Held<'_, A> {
    fn drop(&mut self) {
        // SAFETY: the block came from this allocator with this layout and is not used again.
        unsafe { self.allocator.deallocate(self.block, self.layout) };
    }
}

fn leaked_region(bytes: usize) -> &'static mut [MaybeUninit<u8>] {
    Box::leak(vec![MaybeUninit::uninit(); bytes].into_boxed_slice())
}

/// Spans are 64 KiB and aligned to it: a block's span is its address rounded down.
fn span_of(addr: usize) -> usize {
    addr & !0xFFFF
}

#[test]
fn blocks_are_aligned_disjoint_and_keep_their_contents() {
    let arena = Arena::new();
    let sizes = [
        1, 8, 16, 24, 100, 128, 129, 1000, 4096, 8192, 8193, 20_000, 70_000,
    ];
    let aligns = [1, 8, 16, 64, 256, 4096];
    let mut live = Vec::new();
    for round in 0..2 * SCALE {
        for (i, &size) in sizes.iter().enumerate() {
            let align = aligns[(i + round) % aligns.len()];
            let mut held = Held::new(&arena, layout(size, align)).unwrap();
            assert_eq!(held.addr() % align, 0, "{size} B at {align}");
            let tag = (live.len() % 251) as u8;
            held.stamp(tag);
            live.push((held, tag));
        }
    }
    let mut ranges: Vec<(usize, usize)> = live
        .iter()
        .map(|(h, _)| (h.addr(), h.addr() + h.layout.size()))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "blocks overlap: {pair:?}");
    }
    for (held, tag) in &live {
        assert!(held.stamped(*tag), "a block was overwritten");
    }
    drop(live);
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn freed_blocks_are_reused_before_more_memory_is_taken() {
    let arena = Arena::new();
    let small = layout(48, 8);
    let large = layout(100_000, 8);
    let first: Vec<_> = (0..2000)
        .map(|_| Held::new(&arena, small).unwrap())
        .collect();
    let big = Held::new(&arena, large).unwrap();
    let (big_addr, reserved) = (big.addr(), arena.stats().reserved);
    let spans: HashSet<usize> = first.iter().map(|h| span_of(h.addr())).collect();
    drop((first, big));
    assert_eq!(arena.stats().in_use, 0);

    let again: Vec<_> = (0..2000)
        .map(|_| Held::new(&arena, small).unwrap())
        .collect();
    let big_again = Held::new(&arena, large).unwrap();
    assert_eq!(arena.stats().reserved, reserved, "reuse took no new memory");
    assert_eq!(big_again.addr(), big_addr, "the large block came back");
    assert_eq!(
        again
            .iter()
            .map(|h| span_of(h.addr()))
            .collect::<HashSet<_>>(),
        spans,
        "small blocks came from the spans of the freed ones"
    );
    let stats: Vec<_> = arena.class_stats().collect();
    let class_48 = stats.iter().find(|c| c.block_size == 48).unwrap();
    assert_eq!(class_48.in_use, 2000);
    assert!(class_48.blocks >= 2000);
    let class_128k = stats.iter().find(|c| c.block_size == 128 << 10).unwrap();
    assert_eq!((class_128k.blocks, class_128k.in_use), (1, 1));
}

#[test]
fn a_budget_is_never_exceeded_and_freeing_makes_room_again() {
    let budget = if cfg!(miri) { 256 << 10 } else { 1 << 20 };
    let arena = Arena::builder().budget(budget).build().unwrap();
    let l = layout(64, 8);
    let mut blocks = Vec::new();
    while let Some(held) = Held::new(&arena, l) {
        blocks.push(held);
        if blocks.len() % 256 == 0 {
            assert!(arena.stats().reserved <= budget);
        }
    }
    assert!(arena.stats().reserved <= budget);
    assert!(
        blocks.len() * 64 > budget / 2,
        "most of the budget was usable: {} blocks",
        blocks.len()
    );
    // What spans left of the last chunk serves large blocks, then they fail too.
    let mut large = Vec::new();
    while let Some(held) = Held::new(&arena, layout(20_000, 8)) {
        large.push(held);
        assert!(large.len() < 4, "at most the last chunk's tail is left");
    }
    assert!(arena.stats().reserved <= budget);
    let freed = blocks.pop().unwrap().addr();
    let again = Held::new(&arena, l).expect("a freed block is available again");
    assert_eq!(again.addr(), freed);
}

#[test]
fn reserved_room_stays_with_its_class_when_others_spend_the_budget() {
    let budget = 256 << 10;
    let arena = Arena::builder().budget(budget).build().unwrap();
    let (small, large) = (layout(48, 8), layout(20_000, 8));
    arena.reserve(small, 100).unwrap();
    arena.reserve(large, 2).unwrap();
    // Another class takes everything else.
    let mut others = Vec::new();
    while let Some(held) = Held::new(&arena, layout(200, 8)) {
        others.push(held);
    }
    assert!(!others.is_empty());
    let reserved: Vec<_> = (0..100)
        .map(|i| Held::new(&arena, small).unwrap_or_else(|| panic!("reserved block {i}")))
        .collect();
    let big: Vec<_> = (0..2)
        .map(|i| Held::new(&arena, large).unwrap_or_else(|| panic!("reserved large block {i}")))
        .collect();
    assert!(arena.stats().reserved <= budget);
    // Asking for more than the budget holds fails, and says so.
    assert!(arena.reserve(small, budget).is_err());
    drop((reserved, big));
}

#[test]
fn a_region_bounds_the_arena_and_every_block_lies_inside_it() {
    let region = leaked_region(512 << 10);
    let (start, end) = (
        region.as_ptr() as usize,
        region.as_ptr() as usize + region.len(),
    );
    let arena = Arena::builder()
        .source(ChunkSource::region(region))
        .build()
        .unwrap();
    let mut blocks = Vec::new();
    for &size in [32usize, 300, 20_000].iter().cycle().take(10_000) {
        let Some(held) = Held::new(&arena, layout(size, 8)) else {
            break;
        };
        assert!(
            held.addr() >= start && held.addr() + size <= end,
            "outside the region"
        );
        blocks.push(held);
    }
    assert!(blocks.len() < 10_000, "the region ran out");
    assert!(arena.stats().reserved <= 512 << 10);
    drop(blocks);
    assert!(
        Held::new(&arena, layout(32, 8)).is_some(),
        "usable again once freed"
    );
}

#[test]
fn bad_arenas_and_bad_layouts_are_clear_errors() {
    assert_eq!(
        Arena::builder().budget(0).build().unwrap_err(),
        ArenaError::ZeroBudget
    );
    let err = Arena::builder().budget(1000).build().unwrap_err();
    assert!(
        matches!(err, ArenaError::TooSmall { bytes: 1000, .. }),
        "{err}"
    );
    let tiny = Arena::builder()
        .source(ChunkSource::region(leaked_region(4096)))
        .build()
        .unwrap_err();
    assert!(matches!(tiny, ArenaError::TooSmall { bytes: 4096, .. }));

    let arena = Arena::new();
    assert!(
        arena.allocate(layout(8, 8192)).is_err(),
        "alignment above 4 KiB"
    );
    // Miri stops the program where the system allocator would refuse an absurd size.
    if !cfg!(miri) {
        assert!(
            arena.allocate(layout(isize::MAX as usize / 2, 8)).is_err(),
            "absurd size"
        );
    }
    let empty = Held::new(&arena, layout(0, 64)).unwrap();
    assert_eq!((empty.len, empty.addr() % 64), (0, 0));
    drop(empty);
    assert_eq!(arena.stats().reserved, 0, "nothing was taken for those");
}

#[test]
fn collections_allocate_from_the_arena_and_give_everything_back() {
    let arena = Arena::new();
    let n = (2_000 * SCALE) as u64;
    {
        let mut map: hashbrown::HashMap<u64, u64, foldhash::fast::FixedState, &Arena> =
            hashbrown::HashMap::with_hasher_in(foldhash::fast::FixedState::with_seed(7), &arena);
        let mut vec: ApiVec<u64, &Arena> = ApiVec::new_in(&arena);
        for i in 0..n {
            map.insert(i, i * 3);
            vec.push(i);
        }
        assert!(arena.stats().in_use as u64 > n * 16);
        assert_eq!(map.get(&77), Some(&231));
        assert_eq!(vec.iter().sum::<u64>(), (0..n).sum());
        vec.shrink_to_fit();
        assert_eq!(vec.len() as u64, n);
    }
    assert_eq!(arena.stats().in_use, 0, "dropping them freed every block");
}

#[test]
fn growing_within_a_class_keeps_the_block() {
    let arena = Arena::new();
    let mut held = Held::new(&arena, layout(100, 8)).unwrap();
    held.stamp(9);
    let before = held.addr();
    held.resize(layout(110, 8));
    assert_eq!(held.addr(), before, "100 and 110 B share a class");
    held.resize(layout(5000, 8));
    assert_ne!(held.addr(), before, "5000 B is another class");
    assert!(
        held.block_starts_with(9, 100),
        "contents moved with the block"
    );
    held.resize(layout(60, 8));
    assert!(held.block_starts_with(9, 60));
    drop(held);
    assert_eq!(arena.stats().in_use, 0);
}

impl<A: Allocator> Held<'_, A> {
    fn block_starts_with(&self, tag: u8, len: usize) -> bool {
        assert!(len <= self.layout.size());
        // SAFETY: the block is live and at least `len` bytes, all written before.
        let bytes = unsafe { core::slice::from_raw_parts(self.block.as_ptr(), len) };
        bytes.iter().all(|&b| b == tag)
    }
}

#[test]
fn threads_allocating_and_freeing_never_share_a_block() {
    let arena = std::sync::Arc::new(Arena::builder().budget(64 << 20).build().unwrap());
    let rounds = if cfg!(miri) { 50 } else { 20_000 };
    std::thread::scope(|s| {
        for t in 0..4 {
            let handle = Arena::handle(&arena, t);
            s.spawn(move || {
                let mut held = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                for i in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if held.len() > 64 || (x.is_multiple_of(3) && !held.is_empty()) {
                        let (block, tag): (Held<'_, _>, u8) =
                            held.swap_remove((x as usize / 3) % held.len());
                        assert!(block.stamped(tag), "another thread wrote here");
                    } else {
                        let size = [16, 40, 64, 200, 1000, 9000][(x >> 8) as usize % 6];
                        let mut block = Held::new(&handle, layout(size, 8)).unwrap();
                        let tag = ((t * 61 + i) % 256) as u8;
                        block.stamp(tag);
                        held.push((block, tag));
                    }
                }
                for (block, tag) in &held {
                    assert!(block.stamped(*tag));
                }
            });
        }
    });
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn blocks_freed_on_another_thread_return_to_their_span() {
    let arena = Arena::new();
    let l = layout(64, 8);
    let blocks: Vec<_> = (0..1000).map(|_| Held::new(&arena, l).unwrap()).collect();
    let reserved = arena.stats().reserved;
    std::thread::scope(|s| {
        s.spawn(move || drop(blocks));
    });
    assert_eq!(arena.stats().in_use, 0);
    let again: Vec<_> = (0..1000).map(|_| Held::new(&arena, l).unwrap()).collect();
    assert_eq!((arena.stats().reserved, again.len()), (reserved, 1000));
}

#[cfg(all(feature = "std", target_os = "linux", not(miri)))]
#[test]
fn chunks_bound_to_a_node_hold_blocks_on_that_node() {
    let topology = stratacache_platform::Topology::from_sysfs().unwrap();
    let node = topology.nodes()[0].id();
    let arena = Arena::builder()
        .source(ChunkSource::global_on_node(node).unwrap())
        .build()
        .unwrap();
    let mut held: Vec<_> = (0..1000)
        .map(|_| Held::new(&arena, layout(256, 8)).unwrap())
        .collect();
    for (i, block) in held.iter_mut().enumerate() {
        block.stamp(i as u8);
    }
    for block in held.iter().step_by(100) {
        // SAFETY: the block is live and was written by `stamp`.
        let first = unsafe { &*block.block.as_ptr() };
        assert_eq!(stratacache_platform::node_of(first).unwrap(), node);
    }
    assert!(
        ChunkSource::global_on_node(63).is_err(),
        "node 63 is not online"
    );
}
