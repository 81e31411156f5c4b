//! The topology from Linux sysfs: `/sys/devices/system/node/online` and `nodeN/cpulist`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use std::path::{Path, PathBuf};

use crate::{CpuListError, Topology, TopologyError, parse_cpu_list};

/// The sysfs topology could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum SysfsError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file did not hold a CPU or node list.
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        source: CpuListError,
    },
    /// The files described an invalid topology.
    Topology(TopologyError),
}

impl fmt::Display for SysfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "reading {}: {source}", path.display()),
            Self::Parse { path, source } => write!(f, "parsing {}: {source}", path.display()),
            Self::Topology(e) => write!(f, "sysfs describes an invalid topology: {e}"),
        }
    }
}

impl core::error::Error for SysfsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Parse { source, .. } => Some(source),
            Self::Topology(e) => Some(e),
        }
    }
}

fn read_list(path: PathBuf) -> Result<Vec<u32>, SysfsError> {
    let text: String = std::fs::read_to_string(&path).map_err(|source| SysfsError::Io {
        path: path.clone(),
        source,
    })?;
    parse_cpu_list(&text).map_err(|source| SysfsError::Parse { path, source })
}

impl Topology {
    /// The running machine's topology from `/sys/devices/system/node`.
    ///
    /// # Errors
    /// [`SysfsError`] naming the file that could not be read or parsed.
    pub fn from_sysfs() -> Result<Self, SysfsError> {
        Self::from_sysfs_root(Path::new("/sys/devices/system/node"))
    }

    /// The topology described by a sysfs-style node directory at `root` (for tests and
    /// containers that mount sysfs elsewhere). Online nodes without CPUs are skipped.
    ///
    /// # Errors
    /// As [`from_sysfs`](Self::from_sysfs).
    pub fn from_sysfs_root(root: &Path) -> Result<Self, SysfsError> {
        let mut nodes = Vec::new();
        for node in read_list(root.join("online"))? {
            let cpus = read_list(root.join(alloc::format!("node{node}/cpulist")))?;
            if !cpus.is_empty() {
                nodes.push((node, cpus));
            }
        }
        Topology::from_nodes(nodes).map_err(SysfsError::Topology)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_two_node_tree_and_skips_memory_only_nodes() {
        let root =
            std::env::temp_dir().join(alloc::format!("stratacache-sysfs-{}", std::process::id()));
        for (node, cpus) in [(0, "0-1,4-5\n"), (1, "2-3,6-7\n"), (2, "\n")] {
            std::fs::create_dir_all(root.join(alloc::format!("node{node}"))).unwrap();
            std::fs::write(root.join(alloc::format!("node{node}/cpulist")), cpus).unwrap();
        }
        std::fs::write(root.join("online"), "0-2\n").unwrap();
        let topo = Topology::from_sysfs_root(&root).unwrap();
        assert_eq!(topo.nodes().len(), 2);
        assert_eq!(topo.node_of_cpu(5), Some(0));
        assert_eq!(topo.node_of_cpu(6), Some(1));

        std::fs::write(root.join("node1/cpulist"), "2-x\n").unwrap();
        let err = Topology::from_sysfs_root(&root).unwrap_err();
        assert!(
            matches!(err, SysfsError::Parse { ref path, .. } if path.ends_with("node1/cpulist")),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert!(matches!(
            Topology::from_sysfs_root(&root),
            Err(SysfsError::Io { .. })
        ));
    }

    #[test]
    fn this_machine_has_a_topology_when_sysfs_shows_one() {
        let root = Path::new("/sys/devices/system/node");
        if !root.join("online").exists() {
            return; // no NUMA sysfs in this container: nothing to compare against
        }
        let topo = Topology::from_sysfs().unwrap();
        // sysfs lists every online CPU; this process may be limited to fewer, never more.
        let usable = std::thread::available_parallelism().unwrap().get();
        assert!(
            topo.cpu_count() >= usable,
            "{} CPUs in sysfs, {usable} usable",
            topo.cpu_count()
        );
        assert!(topo.nodes().iter().all(|n| !n.cpus().is_empty()));
    }
}
