//! Finding the current CPU and node, pinning threads and binding memory, on this machine
//! (Linux). The topology comes from sysfs; simulated multi-socket machines are covered by the
//! fake-locator test.
#![cfg(all(feature = "std", target_os = "linux"))]

use stratacache_platform::{
    Binding, CpuLocator, OsCpu, PlacementError, Topology, bind_to_node, pin_current_thread,
    pin_current_thread_to_node,
};

/// `EINVAL`: what `sched_setaffinity` says for CPUs outside the process's cpuset.
const EINVAL: i32 = 22;

#[test]
fn the_os_names_a_cpu_of_this_machines_topology() {
    let topology = Topology::from_sysfs().expect("sysfs describes this machine");
    let cpu = OsCpu.current_cpu().expect("sched_getcpu answers on Linux");
    assert!(
        topology.node_of_cpu(cpu).is_some(),
        "CPU {cpu} is on no node"
    );
    assert!(topology.current_node(&OsCpu).is_some());
}

#[test]
fn a_fake_locator_places_threads_on_a_simulated_four_socket_machine() {
    let four =
        Topology::from_nodes((0..4).map(|node| (node, vec![node * 4, node * 4 + 1]))).unwrap();
    for (cpu, node) in [(0, Some(0)), (5, Some(1)), (13, Some(3)), (2, None)] {
        assert_eq!(four.current_node(&move || Some(cpu)), node, "CPU {cpu}");
    }
    assert_eq!(
        four.current_node(&|| None),
        None,
        "a locator that cannot tell"
    );
}

#[test]
fn a_pinned_thread_runs_on_its_cpu() {
    let topology = Topology::from_sysfs().unwrap();
    let cpus: Vec<u32> = topology
        .nodes()
        .iter()
        .flat_map(|n| n.cpus().to_vec())
        .collect();
    let mut pinned = 0;
    for &cpu in cpus.iter().take(4) {
        // A thread of its own, so the test harness's threads stay unpinned.
        let ran_on = std::thread::spawn(move || {
            pin_current_thread(&[cpu]).map(|()| {
                std::thread::yield_now();
                OsCpu.current_cpu()
            })
        })
        .join()
        .unwrap();
        match ran_on {
            Ok(ran_on) => {
                assert_eq!(ran_on, Some(cpu));
                pinned += 1;
            }
            // A CPU outside this process's cpuset (a container) is refused, clearly.
            Err(PlacementError::Os { call, errno }) => {
                assert_eq!((call, errno), ("sched_setaffinity", EINVAL));
            }
            Err(other) => panic!("pinning to CPU {cpu}: {other}"),
        }
    }
    assert!(pinned > 0, "no CPU of the topology could be pinned to");
    let node = topology.nodes()[0].id();
    std::thread::spawn(move || {
        pin_current_thread_to_node(&topology, node).unwrap();
        let cpu = OsCpu.current_cpu().unwrap();
        assert_eq!(topology.node_of_cpu(cpu), Some(node));
        assert_eq!(
            pin_current_thread_to_node(&topology, 999),
            Err(PlacementError::UnknownNode { node: 999 })
        );
    })
    .join()
    .unwrap();
}

#[test]
fn bad_pinning_requests_are_clear_errors() {
    assert_eq!(pin_current_thread(&[]), Err(PlacementError::NoCpus));
    assert_eq!(
        pin_current_thread(&[1 << 20]),
        Err(PlacementError::CpuOutOfRange { cpu: 1 << 20 })
    );
    let message = PlacementError::CpuOutOfRange { cpu: 1 << 20 }.to_string();
    assert!(message.contains("1048576"), "{message}");
}

#[test]
fn memory_binds_to_an_online_node_by_whole_pages_and_keeps_its_contents() {
    let topology = Topology::from_sysfs().unwrap();
    let node = topology.nodes()[0].id();
    let memory: Vec<u8> = (0..(1 << 20)).map(|i| i as u8).collect();
    for binding in [Binding::Strict, Binding::Preferred] {
        match bind_to_node(&memory, node, binding) {
            Ok(bound) => {
                // Rounded inward to whole pages: less than a page lost at each end.
                assert!(bound <= memory.len(), "{bound}");
                assert!(bound + 2 * 65_536 >= memory.len(), "{bound}");
                assert_eq!(bound % 4096, 0);
            }
            // A kernel without NUMA support (ENOSYS) or a sandbox without the call (EPERM):
            // a clear error, and nothing else to check here.
            Err(PlacementError::Os {
                call: "mbind",
                errno,
            }) => {
                assert!(matches!(errno, 1 | 38), "mbind errno {errno}");
                eprintln!("mbind is not available here (errno {errno})");
                return;
            }
            Err(other) => panic!("binding to node {node}: {other}"),
        }
    }
    assert!(
        memory.iter().enumerate().all(|(i, &b)| b == i as u8),
        "contents kept"
    );
    // Less than a page: nothing to bind.
    assert_eq!(bind_to_node(&memory[..100], node, Binding::Strict), Ok(0));
    // A node beyond the mask, and one that is not online.
    assert_eq!(
        bind_to_node(&memory, 64, Binding::Strict),
        Err(PlacementError::UnknownNode { node: 64 })
    );
    let offline = (0..64)
        .find(|n| topology.nodes().iter().all(|node| node.id() != *n))
        .unwrap();
    assert!(matches!(
        bind_to_node(&memory, offline, Binding::Strict),
        Err(PlacementError::Os { call: "mbind", .. })
    ));
}

#[test]
fn the_kernel_names_the_node_that_holds_memory() {
    let topology = Topology::from_sysfs().unwrap();
    let data = vec![7u8; 1 << 16];
    let node = stratacache_platform::node_of(&data[..]).unwrap();
    assert!(
        topology.nodes().iter().any(|n| n.id() == node),
        "node {node} is not one of this machine's"
    );
    // Bound memory reports the node it was bound to.
    let first = topology.nodes()[0].id();
    bind_to_node(&data, first, Binding::Strict).unwrap();
    // The first page-aligned byte: its page lies wholly inside the bound range.
    let aligned = data.as_ptr().align_offset(4096);
    assert_eq!(
        stratacache_platform::node_of(&data[aligned]).unwrap(),
        first
    );
}
