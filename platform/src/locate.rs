//! Which CPU the calling thread runs on, and so which node: the operating system's answer under
//! `std` on Linux, or a hook the embedder supplies (a console SDK call, a fixed core for a
//! pinned thread, a fake one in tests).

use crate::Topology;

/// Tells which CPU the calling thread runs on.
///
/// Any `Fn() -> Option<u32>` is one, so a `no_std` embedder passes a closure over its
/// platform's call, and a test passes a fake:
///
/// ```
/// use stratacache_platform::{CpuLocator, Topology};
///
/// let two_sockets = Topology::from_nodes([(0, vec![0, 1]), (1, vec![2, 3])])?;
/// let on_cpu_3 = || Some(3);
/// assert_eq!(on_cpu_3.current_cpu(), Some(3));
/// assert_eq!(two_sockets.current_node(&on_cpu_3), Some(1));
/// # Ok::<(), stratacache_platform::TopologyError>(())
/// ```
pub trait CpuLocator {
    /// The CPU the calling thread runs on now, if known. The thread may move right after,
    /// unless it is pinned, so the answer is a placement hint, never a guarantee.
    fn current_cpu(&self) -> Option<u32>;
}

impl<F: Fn() -> Option<u32>> CpuLocator for F {
    fn current_cpu(&self) -> Option<u32> {
        self()
    }
}

/// The operating system's answer: `sched_getcpu` (a vDSO call, tens of nanoseconds).
#[cfg(all(feature = "std", target_os = "linux"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OsCpu;

#[cfg(all(feature = "std", target_os = "linux"))]
impl CpuLocator for OsCpu {
    fn current_cpu(&self) -> Option<u32> {
        crate::raw::linux::current_cpu()
    }
}

impl Topology {
    /// The node of the CPU `locator` says the calling thread runs on (`None` if it cannot
    /// tell, or names a CPU this topology does not have).
    pub fn current_node(&self, locator: &impl CpuLocator) -> Option<u32> {
        self.node_of_cpu(locator.current_cpu()?)
    }
}
