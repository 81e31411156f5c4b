//! Every subject is measured at the capacity it is given: none beats Belady's optimum at that
//! capacity. A cache that holds more than its capacity for a while (moka and mini-moka apply
//! evictions in batches of 64 unless their pending work is run) would, on a loop a little
//! larger than the capacity, hit far more often than the optimum can.

use stratacache_benches::sim::{Setup, Subject, simulate};
use stratacache_benches::trace::Request;

/// `cycles` passes over `keys` distinct keys, in order.
fn looping(keys: u64, cycles: u64) -> Vec<Request> {
    (0..cycles)
        .flat_map(|_| (0..keys).map(|key| Request { key, size: 1 }))
        .collect()
}

#[test]
fn no_subject_beats_the_optimum_at_its_capacity() {
    let requests = looping(40, 200);
    for capacity in [10, 30] {
        let ceiling = simulate(Subject::Belady, &requests, capacity, Setup::default()).hits;
        assert!(ceiling > 0 && ceiling < requests.len() as u64);
        for subject in Subject::ALL {
            let hits = simulate(subject, &requests, capacity, Setup::default()).hits;
            assert!(
                hits <= ceiling,
                "{} hit {hits} times at capacity {capacity}, above the optimum's {ceiling}: it \
                 held more than its capacity",
                subject.name()
            );
        }
    }
}
