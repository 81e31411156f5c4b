//! Instructions per cold `get_with` (a miss, a load, an insertion with an eviction), async
//! and plain, for callgrind: `async_paths WHICH N` runs N lookups of distinct keys through a
//! full cache of 10,000 on one thread (`valgrind --tool=callgrind`, twice with two N, and
//! divide the difference). WHICH: async, sync, qc_async, qc_sync.

use std::task::{Context, Poll, Waker};

use stratacache::Cache;
use stratacache::future::AsyncCache;

/// Polls `future` to completion on this thread (the loaders here never wait).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().expect("WHICH");
    let n: u64 = args.next().expect("N").parse().expect("N");
    let mut sum = 0u64;
    match which.as_str() {
        "async" => {
            let cache: AsyncCache<u64, u64> =
                Cache::builder().capacity(10_000).build().unwrap().into();
            block_on(async {
                for key in 0..n {
                    sum += cache.get_with(&key, async move { key }).await;
                }
            });
        }
        "sync" => {
            let cache: Cache<u64, u64> = Cache::builder().capacity(10_000).build().unwrap();
            for key in 0..n {
                sum += cache.get_with(&key, || key);
            }
        }
        "qc_async" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(10_000);
            block_on(async {
                for key in 0..n {
                    sum += cache
                        .get_or_insert_async(&key, async move { Ok::<u64, ()>(key) })
                        .await
                        .unwrap();
                }
            });
        }
        "qc_sync" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(10_000);
            for key in 0..n {
                sum += cache
                    .get_or_insert_with(&key, || Ok::<u64, ()>(key))
                    .unwrap();
            }
        }
        other => panic!("unknown {other}"),
    }
    std::hint::black_box(sum);
}
