//! NUMA nodes and their CPUs.

use alloc::vec::Vec;
use core::fmt;

/// One memory node (a socket, or a sub-NUMA cluster) and the CPUs closest to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    id: u32,
    cpus: Vec<u32>,
}

impl Node {
    /// The node's id (as the OS numbers it).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The node's CPUs, ascending.
    pub fn cpus(&self) -> &[u32] {
        &self.cpus
    }
}

/// A description was not a valid topology.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopologyError {
    /// No node was described.
    NoNodes,
    /// A node was described without any CPU.
    NodeWithoutCpus {
        /// The node's id.
        node: u32,
    },
    /// Two nodes share an id.
    DuplicateNode {
        /// The repeated id.
        node: u32,
    },
    /// A CPU was placed on two nodes.
    CpuOnTwoNodes {
        /// The CPU.
        cpu: u32,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => f.write_str("a topology needs at least one node"),
            Self::NodeWithoutCpus { node } => write!(f, "node {node} has no CPUs"),
            Self::DuplicateNode { node } => write!(f, "node {node} is described twice"),
            Self::CpuOnTwoNodes { cpu } => write!(f, "CPU {cpu} is placed on two nodes"),
        }
    }
}

impl core::error::Error for TopologyError {}

/// Which CPUs belong to which memory node. Nodes are kept in ascending id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    nodes: Vec<Node>,
}

impl Topology {
    /// A topology from `(node id, CPUs)` pairs.
    ///
    /// # Errors
    /// [`TopologyError`] when no node is given, a node has no CPU, a node id repeats, or a CPU
    /// is on two nodes. Nodes without CPUs (memory-only nodes) are not placement targets, so
    /// describe only nodes that have CPUs.
    pub fn from_nodes<C>(nodes: impl IntoIterator<Item = (u32, C)>) -> Result<Self, TopologyError>
    where
        C: IntoIterator<Item = u32>,
    {
        let mut list: Vec<Node> = Vec::new();
        for (id, cpus) in nodes {
            let mut cpus: Vec<u32> = cpus.into_iter().collect();
            cpus.sort_unstable();
            cpus.dedup();
            if cpus.is_empty() {
                return Err(TopologyError::NodeWithoutCpus { node: id });
            }
            list.push(Node { id, cpus });
        }
        if list.is_empty() {
            return Err(TopologyError::NoNodes);
        }
        list.sort_unstable_by_key(|n| n.id);
        if let Some(pair) = list.windows(2).find(|p| p[0].id == p[1].id) {
            return Err(TopologyError::DuplicateNode { node: pair[0].id });
        }
        let mut all: Vec<u32> = list.iter().flat_map(|n| n.cpus.iter().copied()).collect();
        all.sort_unstable();
        if let Some(pair) = all.windows(2).find(|p| p[0] == p[1]) {
            return Err(TopologyError::CpuOnTwoNodes { cpu: pair[0] });
        }
        Ok(Self { nodes: list })
    }

    /// One node 0 holding CPUs `0..cpus` (at least one): a machine without NUMA.
    pub fn single_node(cpus: u32) -> Self {
        Self {
            nodes: alloc::vec![Node {
                id: 0,
                cpus: (0..cpus.max(1)).collect(),
            }],
        }
    }

    /// The nodes, ascending by id.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node that `cpu` belongs to.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.cpus.binary_search(&cpu).is_ok())
            .map(|n| n.id)
    }

    /// The number of CPUs over all nodes.
    pub fn cpu_count(&self) -> usize {
        self.nodes.iter().map(|n| n.cpus.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn a_four_socket_description_maps_cpus_to_nodes() {
        let topo = Topology::from_nodes((0..4).map(|n| (3 - n, (n * 4)..(n * 4 + 4)))).unwrap();
        assert_eq!(
            topo.nodes().iter().map(Node::id).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(topo.node_of_cpu(0), Some(3));
        assert_eq!(topo.node_of_cpu(15), Some(0));
        assert_eq!(topo.node_of_cpu(16), None);
        assert_eq!(topo.cpu_count(), 16);
    }

    #[test]
    fn invalid_descriptions_are_refused() {
        let none: [(u32, Vec<u32>); 0] = [];
        assert_eq!(
            Topology::from_nodes(none).unwrap_err(),
            TopologyError::NoNodes
        );
        assert_eq!(
            Topology::from_nodes([(0, vec![0]), (1, vec![])]).unwrap_err(),
            TopologyError::NodeWithoutCpus { node: 1 }
        );
        assert_eq!(
            Topology::from_nodes([(1, vec![0]), (1, vec![1])]).unwrap_err(),
            TopologyError::DuplicateNode { node: 1 }
        );
        assert_eq!(
            Topology::from_nodes([(0, vec![0, 1]), (1, vec![1, 2])]).unwrap_err(),
            TopologyError::CpuOnTwoNodes { cpu: 1 }
        );
        assert_eq!(Topology::single_node(0).cpu_count(), 1);
    }
}
