//! The only unsafe code of the crate: the operating system calls behind the safe placement
//! functions.

#[cfg(all(feature = "std", target_os = "linux"))]
pub(crate) mod linux;
