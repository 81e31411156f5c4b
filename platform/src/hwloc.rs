//! The topology from hwloc, under the `hwloc` feature.
//!
//! Through `hwlocality`, not `hwloc2`: `hwloc2` 2.2.0 builds against Debian's hwloc 2.9 but
//! panics when asked for NUMA nodes (it maps hwloc 2.x's virtual NUMA depth with 1.x
//! numbering), while `hwlocality` supports hwloc 2.x's memory children properly.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use hwlocality::object::types::ObjectType;

use crate::{Topology, TopologyError};

/// hwloc could not describe the machine.
#[derive(Debug)]
#[non_exhaustive]
pub enum HwlocError {
    /// hwloc failed to load the topology.
    Load(String),
    /// A NUMA node without an OS index or CPU set.
    IncompleteNode,
    /// What hwloc described was not a valid topology.
    Topology(TopologyError),
}

impl fmt::Display for HwlocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(why) => write!(f, "hwloc could not load the topology: {why}"),
            Self::IncompleteNode => {
                f.write_str("hwloc described a NUMA node without an index or CPUs")
            }
            Self::Topology(e) => write!(f, "hwloc described an invalid topology: {e}"),
        }
    }
}

impl core::error::Error for HwlocError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Topology(e) => Some(e),
            _ => None,
        }
    }
}

impl Topology {
    /// The machine's NUMA nodes and their CPUs, as hwloc sees them.
    ///
    /// # Errors
    /// [`HwlocError`] if hwloc cannot load the topology or describes one that is not valid.
    pub fn from_hwloc() -> Result<Self, HwlocError> {
        let hw = hwlocality::Topology::new().map_err(|e| HwlocError::Load(e.to_string()))?;
        let mut nodes = Vec::new();
        for node in hw.objects_with_type(ObjectType::NUMANode) {
            let id = node.os_index().ok_or(HwlocError::IncompleteNode)?;
            let cpuset = node.cpuset().ok_or(HwlocError::IncompleteNode)?;
            let cpus: Vec<u32> = cpuset
                .iter_set()
                .map(|cpu| usize::from(cpu) as u32)
                .collect();
            nodes.push((id as u32, cpus));
        }
        Topology::from_nodes(nodes).map_err(HwlocError::Topology)
    }
}
