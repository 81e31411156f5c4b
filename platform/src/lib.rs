//! # stratacache-platform
//!
//! What the machine looks like, for NUMA-aware placement: which CPUs belong to which memory
//! node. `#![no_std]` with `alloc`; the `std` feature (default) reads Linux sysfs.
//!
//! A [`Topology`] comes from an explicit description ([`Topology::from_nodes`], for
//! embedded targets, consoles and tests that simulate 2- or 4-socket machines) or, under
//! `std` on Linux, from `/sys/devices/system/node` ([`Topology::from_sysfs`]).
//!
//! Which node a thread is on comes from a [`CpuLocator`]: [`OsCpu`] (`sched_getcpu`) under
//! `std` on Linux, or any `Fn() -> Option<u32>` the embedder supplies without it. Under `std`
//! on Linux, [`pin_current_thread`] pins threads (`sched_setaffinity`), [`bind_to_node`]
//! places memory (`mbind`) and [`node_of`] says where memory landed (`get_mempolicy`). The
//! system calls are the crate's only `unsafe` code, in a private `raw` module.
//!
//! Under the `hwloc` feature, `Topology::from_hwloc` asks hwloc instead (through
//! `hwlocality`: `hwloc2` 2.2.0 panics on NUMA nodes with hwloc 2.x; see the `hwloc` module).
//!
//! | feature | what it adds |
//! |---|---|
//! | `std` (default) | `from_sysfs`, [`OsCpu`], thread pinning and memory binding (Linux) |
//! | `hwloc` | `Topology::from_hwloc` (needs the system's hwloc ≥ 2.8: `libhwloc-dev`, `libudev-dev`) |
//!
//! ```
//! use stratacache_platform::Topology;
//!
//! // A simulated two-socket machine: CPUs 0-3 on node 0, 4-7 on node 1.
//! let topo = Topology::from_nodes([(0, vec![0, 1, 2, 3]), (1, vec![4, 5, 6, 7])])?;
//! assert_eq!(topo.node_of_cpu(5), Some(1));
//! assert_eq!(topo.nodes().len(), 2);
//! # Ok::<(), stratacache_platform::TopologyError>(())
//! ```
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cpulist;
#[cfg(feature = "hwloc")]
mod hwloc;
mod locate;
#[cfg(all(feature = "std", target_os = "linux"))]
mod place;
mod raw;
#[cfg(all(feature = "std", target_os = "linux"))]
mod sysfs;
mod topology;

pub use cpulist::{CpuListError, parse_cpu_list};
#[cfg(feature = "hwloc")]
pub use hwloc::HwlocError;
pub use locate::CpuLocator;
#[cfg(all(feature = "std", target_os = "linux"))]
pub use locate::OsCpu;
#[cfg(all(feature = "std", target_os = "linux"))]
pub use place::{
    Binding, PlacementError, bind_to_node, node_of, pin_current_thread, pin_current_thread_to_node,
};
#[cfg(all(feature = "std", target_os = "linux"))]
pub use sysfs::SysfsError;
pub use topology::{Node, Topology, TopologyError};
