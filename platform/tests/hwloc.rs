//! hwloc and sysfs agree on this machine's NUMA nodes and CPUs (`--features hwloc`).
#![cfg(all(feature = "hwloc", target_os = "linux"))]

use stratacache_platform::Topology;

#[test]
fn hwloc_and_sysfs_describe_the_same_machine() {
    let hwloc = Topology::from_hwloc().expect("hwloc loads this machine's topology");
    let sysfs = Topology::from_sysfs().expect("sysfs describes this machine");
    assert_eq!(hwloc, sysfs);
    assert!(hwloc.cpu_count() >= 1);
}
