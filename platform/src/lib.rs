//! # stratacache-platform
//!
//! What the machine looks like, for NUMA-aware placement: which CPUs belong to which memory
//! node. `#![no_std]` with `alloc`; the `std` feature (default) reads Linux sysfs.
//!
//! A [`Topology`] comes from an explicit description ([`Topology::from_nodes`], for
//! embedded targets, consoles and tests that simulate 2- or 4-socket machines) or, under
//! `std` on Linux, from `/sys/devices/system/node` ([`Topology::from_sysfs`]).
//!
//! It is where the kernel's platform layer will grow (see `DESIGN.md` §6): the current CPU and
//! node (`sched_getcpu` under std, a user hook without it), memory binding (`mbind`), thread
//! pinning for benches, and an hwloc-backed topology under an `hwloc` feature.
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
#[cfg(all(feature = "std", target_os = "linux"))]
mod sysfs;
mod topology;

pub use cpulist::{CpuListError, parse_cpu_list};
#[cfg(all(feature = "std", target_os = "linux"))]
pub use sysfs::SysfsError;
pub use topology::{Node, Topology, TopologyError};
