//! Linux system calls: the current CPU, thread affinity and memory binding.

use core::mem::size_of;

/// What the OS said, as an errno value.
pub(crate) type Errno = i32;

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The CPU the calling thread runs on.
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: `sched_getcpu` takes no arguments and only reads the calling thread's state.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// The most CPUs an affinity mask can name.
pub(crate) const MAX_CPUS: u32 = libc::CPU_SETSIZE as u32;

/// Restricts the calling thread to `cpus`, each below [`MAX_CPUS`] (the caller checks).
pub(crate) fn set_affinity(cpus: &[u32]) -> Result<(), Errno> {
    // SAFETY: `cpu_set_t` is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    for &cpu in cpus {
        debug_assert!(cpu < MAX_CPUS);
        // SAFETY: `cpu` is below CPU_SETSIZE (checked by the caller), so the bit is inside
        // `set`, which is a valid, exclusively borrowed `cpu_set_t`.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: pid 0 names the calling thread; `set` is a valid `cpu_set_t` of the size passed
    // and outlives the call.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 { Ok(()) } else { Err(last_errno()) }
}

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

/// The most nodes a binding mask names.
pub(crate) const MAX_NODES: u32 = 64;

/// Sets the memory policy of the pages in `[start, start + len)` (page-aligned, inside one
/// mapping the caller owns) to `node`: `strict` binds them there (`MPOL_BIND`), otherwise
/// prefers it (`MPOL_PREFERRED`). Pages already touched move there (`MPOL_MF_MOVE`).
pub(crate) fn bind(start: usize, len: usize, node: u32, strict: bool) -> Result<(), Errno> {
    debug_assert!(node < MAX_NODES);
    const MPOL_PREFERRED: libc::c_long = 1;
    const MPOL_BIND: libc::c_long = 2;
    const MPOL_MF_MOVE: libc::c_ulong = 1 << 1;
    let mask: libc::c_ulong = 1 << node;
    let mode = if strict { MPOL_BIND } else { MPOL_PREFERRED };
    // SAFETY: `mbind` changes only where the kernel places the range's pages (their contents
    // are kept when it moves them), so no Rust-visible memory changes; `mask` is a valid node
    // mask of `MAX_NODES` bits that outlives the call, and the range is page-aligned as the
    // call requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            start,
            len,
            mode,
            &mask as *const libc::c_ulong,
            libc::c_ulong::from(MAX_NODES) + 1,
            MPOL_MF_MOVE,
        )
    };
    if rc == 0 { Ok(()) } else { Err(last_errno()) }
}

/// The node holding the page at `addr` (`get_mempolicy` with `MPOL_F_NODE | MPOL_F_ADDR`).
pub(crate) fn node_of_address(addr: usize) -> Result<u32, Errno> {
    const MPOL_F_NODE: libc::c_ulong = 1 << 0;
    const MPOL_F_ADDR: libc::c_ulong = 1 << 1;
    let mut node: libc::c_int = -1;
    // SAFETY: the kernel writes one int through `node`, which lives across the call; with
    // these flags it only reads where the page at `addr` lives, changing nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut node as *mut libc::c_int,
            core::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            addr,
            MPOL_F_NODE | MPOL_F_ADDR,
        )
    };
    if rc == 0 {
        u32::try_from(node).map_err(|_| libc::EINVAL)
    } else {
        Err(last_errno())
    }
}
