//! Allocation and free through the slab [`Arena`] against the system allocator and mimalloc
//! (called directly, whatever the global allocator is), in one run:
//!
//! - `pair/SIZE`: one thread allocates a block and frees it at once (the fast path, warm);
//! - `batch/SIZE/threadsT`: each of T threads allocates 1,024 blocks, then frees them in
//!   allocation order, again and again (spans fill and refill; the arena gives each thread a
//!   lane of its own);
//! - `remote_free/SIZE`: one thread allocates 1,024 blocks and another frees them (the way L1's
//!   retired copies are freed by whichever thread collects them).
//!
//! Throughput counts alloc-and-free pairs. Sizes: 48 B (a slot-sized node) and 256 B.
//!
//! `cargo bench -p stratacache-benches --bench alloc` (`-- --quick` for a short run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stratacache_alloc::Arena;

#[global_allocator]
static GLOBAL: stratacache_benches::BaseAllocator = stratacache_benches::BaseAllocator;

/// Blocks per batch.
const BATCH: usize = 1024;

/// An allocator under test, by lane (the arena's; the others ignore it).
trait Subject: Sync {
    fn alloc(&self, lane: usize, layout: Layout) -> NonNull<u8>;
    /// # Safety
    /// `block` came from `alloc` on this subject with `layout` and is not used again.
    unsafe fn free(&self, block: NonNull<u8>, layout: Layout);
}

impl Subject for Arena {
    #[inline]
    fn alloc(&self, lane: usize, layout: Layout) -> NonNull<u8> {
        self.allocate_in(lane, layout).expect("no budget").cast()
    }

    #[inline]
    unsafe fn free(&self, block: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's contract is `deallocate`'s.
        unsafe { self.deallocate(block, layout) }
    }
}

/// A `GlobalAlloc`, called directly.
struct Global<A>(A);

impl<A: GlobalAlloc + Sync> Subject for Global<A> {
    #[inline]
    fn alloc(&self, _lane: usize, layout: Layout) -> NonNull<u8> {
        // SAFETY: the layouts here are non-zero-sized.
        NonNull::new(unsafe { self.0.alloc(layout) }).expect("out of memory")
    }

    #[inline]
    unsafe fn free(&self, block: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's contract is `dealloc`'s.
        unsafe { self.0.dealloc(block.as_ptr(), layout) }
    }
}

fn subjects() -> Vec<(&'static str, Box<dyn Subject>)> {
    vec![
        ("arena", Box::new(Arena::new())),
        ("system", Box::new(Global(System))),
        ("mimalloc", Box::new(Global(mimalloc::MiMalloc))),
    ]
}

/// A block's address, to hand between threads.
#[derive(Clone, Copy)]
struct Addr(NonNull<u8>);

// SAFETY: the address is plain data; whoever frees it owns the block by then.
unsafe impl Send for Addr {}

/// Allocates a batch on `lane`, then frees it in order.
fn batch(subject: &dyn Subject, lane: usize, layout: Layout, held: &mut Vec<NonNull<u8>>) {
    held.extend((0..BATCH).map(|_| subject.alloc(lane, layout)));
    for block in held.drain(..) {
        // SAFETY: allocated just above with this layout, freed once.
        unsafe { subject.free(black_box(block), layout) };
    }
}

fn allocation(c: &mut Criterion) {
    let subjects = subjects();
    let threads = stratacache_benches::mixed::thread_counts();
    for size in [48usize, 256] {
        let layout = Layout::from_size_align(size, 8).expect("valid");
        let mut group = c.benchmark_group(format!("pair/{size}"));
        group.throughput(Throughput::Elements(1));
        for (name, subject) in &subjects {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let block = subject.alloc(0, layout);
                    // SAFETY: allocated just above with this layout, freed once.
                    unsafe { subject.free(black_box(block), layout) };
                })
            });
        }
        group.finish();

        for &t in &threads {
            let mut group = c.benchmark_group(format!("batch/{size}/threads{t}"));
            group.throughput(Throughput::Elements((t * BATCH) as u64));
            for (name, subject) in &subjects {
                let subject = subject.as_ref();
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| {
                        std::thread::scope(|s| {
                            let start = Instant::now();
                            for lane in 0..t {
                                s.spawn(move || {
                                    let mut held = Vec::with_capacity(BATCH);
                                    for _ in 0..iters {
                                        batch(subject, lane, layout, &mut held);
                                    }
                                });
                            }
                            start
                        })
                        .elapsed()
                    })
                });
            }
            group.finish();
        }

        let mut group = c.benchmark_group(format!("remote_free/{size}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        for (name, subject) in &subjects {
            let subject = subject.as_ref();
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Addr>>(4);
                    std::thread::scope(|s| {
                        let start = Instant::now();
                        s.spawn(move || {
                            for _ in 0..iters {
                                let blocks = (0..BATCH).map(|_| Addr(subject.alloc(0, layout)));
                                send.send(blocks.collect()).expect("the freer runs");
                            }
                        });
                        s.spawn(move || {
                            for blocks in receive {
                                for Addr(block) in blocks {
                                    // SAFETY: allocated by the other thread with this layout,
                                    // sent here and freed once.
                                    unsafe { subject.free(block, layout) };
                                }
                            }
                        });
                        start
                    })
                    .elapsed()
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = allocation
}
criterion_main!(benches);
