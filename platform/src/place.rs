//! Placing threads and memory on nodes: thread pinning (`sched_setaffinity`) and memory binding
//! (`mbind`), on Linux under `std`.

use core::fmt;

use crate::Topology;
use crate::raw::linux;

/// A thread or a memory range could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementError {
    /// No CPU was named.
    NoCpus,
    /// A CPU number beyond what an affinity mask can hold (1,024 on Linux).
    CpuOutOfRange {
        /// The CPU.
        cpu: u32,
    },
    /// A node the topology does not have, or beyond the 64 a binding mask holds.
    UnknownNode {
        /// The node.
        node: u32,
    },
    /// The operating system refused.
    Os {
        /// The system call.
        call: &'static str,
        /// Its `errno`.
        errno: i32,
    },
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCpus => f.write_str("no CPU to pin the thread to"),
            Self::CpuOutOfRange { cpu } => {
                write!(
                    f,
                    "CPU {cpu} is beyond the {} an affinity mask holds",
                    linux::MAX_CPUS
                )
            }
            Self::UnknownNode { node } => write!(f, "node {node} is not a node of this machine"),
            Self::Os { call, errno } => write!(
                f,
                "{call} failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl core::error::Error for PlacementError {}

/// Restricts the calling thread to `cpus` (for benches and for worker threads that own a
/// socket's replica).
///
/// # Errors
/// [`PlacementError::NoCpus`] for an empty list, [`PlacementError::CpuOutOfRange`], or
/// [`PlacementError::Os`] when the OS refuses (none of the CPUs is allowed to this process).
pub fn pin_current_thread(cpus: &[u32]) -> Result<(), PlacementError> {
    if cpus.is_empty() {
        return Err(PlacementError::NoCpus);
    }
    if let Some(&cpu) = cpus.iter().find(|&&cpu| cpu >= linux::MAX_CPUS) {
        return Err(PlacementError::CpuOutOfRange { cpu });
    }
    linux::set_affinity(cpus).map_err(|errno| PlacementError::Os {
        call: "sched_setaffinity",
        errno,
    })
}

/// Restricts the calling thread to the CPUs of `node` in `topology`.
///
/// # Errors
/// [`PlacementError::UnknownNode`] if the topology has no such node; otherwise as
/// [`pin_current_thread`].
pub fn pin_current_thread_to_node(topology: &Topology, node: u32) -> Result<(), PlacementError> {
    let node = topology
        .nodes()
        .iter()
        .find(|n| n.id() == node)
        .ok_or(PlacementError::UnknownNode { node })?;
    pin_current_thread(node.cpus())
}

/// How strictly memory is bound to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Only that node's memory (`MPOL_BIND`): allocation fails rather than spill.
    Strict,
    /// That node first, others when it is full (`MPOL_PREFERRED`).
    Preferred,
}

/// Places the whole pages of `memory` on `node` (pages it has touched move there) and returns
/// how many bytes that covered: the range rounded inward to page boundaries, so a region
/// smaller than a page is left alone (`Ok(0)`). Contents are kept.
///
/// # Errors
/// [`PlacementError::UnknownNode`] for a node beyond the 64 a mask holds, and
/// [`PlacementError::Os`] when the kernel refuses (a node that is not online: `EINVAL`; a
/// kernel without NUMA: `ENOSYS`; a sandbox that forbids the call: `EPERM`).
pub fn bind_to_node<T>(memory: &[T], node: u32, binding: Binding) -> Result<usize, PlacementError> {
    if node >= linux::MAX_NODES {
        return Err(PlacementError::UnknownNode { node });
    }
    let page = linux::page_size();
    let start = memory.as_ptr() as usize;
    let end = start + core::mem::size_of_val(memory);
    let first = start.div_ceil(page) * page;
    let last = end / page * page;
    if last <= first {
        return Ok(0);
    }
    linux::bind(first, last - first, node, binding == Binding::Strict).map_err(|errno| {
        PlacementError::Os {
            call: "mbind",
            errno,
        }
    })?;
    Ok(last - first)
}

/// The NUMA node whose memory holds `value` (its first byte's page), as the kernel reports it
/// (`get_mempolicy`). To check where a cache's shards or arenas landed.
///
/// # Errors
/// [`PlacementError::Os`] when the kernel refuses (`ENOSYS` without NUMA support).
pub fn node_of<T: ?Sized>(value: &T) -> Result<u32, PlacementError> {
    linux::node_of_address((value as *const T).cast::<u8>() as usize).map_err(|errno| {
        PlacementError::Os {
            call: "get_mempolicy",
            errno,
        }
    })
}
