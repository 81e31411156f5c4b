//! The node-bound mimalloc chunk source (feature `mimalloc`).
#![cfg(feature = "mimalloc")]

use core::alloc::Layout;

use stratacache_alloc::{Arena, ChunkSource, NodeArenaError};
use stratacache_platform::{Topology, node_of};

#[test]
fn an_arena_on_a_node_bound_mimalloc_heap_places_its_blocks_on_that_node() {
    let topology = Topology::from_sysfs().unwrap();
    let node = topology.nodes()[0].id();
    let source = ChunkSource::mimalloc_node(node, 64 << 20).unwrap();
    assert_eq!(source.capacity(), Some(64 << 20));
    let arena = Arena::builder()
        .source(source)
        .budget(16 << 20)
        .build()
        .unwrap();
    let layout = Layout::new::<[u64; 8]>();
    let mut blocks = Vec::new();
    for i in 0..10_000u64 {
        let block = arena.allocate(layout).unwrap().cast::<u64>();
        // SAFETY: a fresh block of 64 bytes, ours alone.
        unsafe { block.as_ptr().write(i) };
        blocks.push(block);
    }
    for (i, block) in blocks.iter().enumerate() {
        // SAFETY: written above, still allocated.
        let value = unsafe { &*block.as_ptr() };
        assert_eq!(*value, i as u64);
        if i % 1000 == 0 {
            assert_eq!(node_of(value).unwrap(), node, "block {i} is off its node");
        }
    }
    assert!(arena.stats().reserved <= 16 << 20);
    for block in blocks {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { arena.deallocate(block.cast(), layout) };
    }
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn bad_node_arenas_are_clear_errors() {
    assert!(matches!(
        ChunkSource::mimalloc_node(0, 1 << 20),
        Err(NodeArenaError::TooSmall { .. })
    ));
    let err = ChunkSource::mimalloc_node(63, 32 << 20).unwrap_err();
    assert!(matches!(err, NodeArenaError::Bind(_)), "{err}");
}
