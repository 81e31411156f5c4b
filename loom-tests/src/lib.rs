//! Loom models of stratacache's concurrent protocols.
//!
//! The models live in `tests/` and only exist under `cfg(loom)`; an ordinary `cargo test`
//! compiles them to nothing. Run them with both cfgs, so that the kernel's atomics and
//! crossbeam-epoch's are loom's, a bounded preemption count, and a target directory of their
//! own (the flags rebuild everything):
//!
//! ```text
//! RUSTFLAGS="--cfg loom --cfg crossbeam_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target/loom cargo test -p stratacache-loom-tests --release
//! ```
//!
//! Each model builds an L1 of one set (every key contends for the same ways) inside
//! `loom::model`, so loom explores every interleaving of the set protocol together with
//! crossbeam-epoch's pinning and reclamation.
