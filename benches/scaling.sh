#!/usr/bin/env bash
# The scaling table of benches/RESULTS.md: the read-heavy and churn workloads of the `cache`
# bench at 1, 2, 4, 8 and 16 threads (those this machine has), stratacache (plain calls and
# frames) beside quick_cache, moka and scc, in interleaved rounds (the `ratios` example). Writes
# benches/results/scaling-<CPUs>cpu.txt, which `bash benches/results.sh` turns into tables and
# charts.
#   bash benches/scaling.sh [THREADS...]     (default: 1 2 4 8 16, up to the CPU count)
set -euo pipefail
cd "$(dirname "$0")/.."
cpus=$(nproc)
threads=("$@")
if [ ${#threads[@]} -eq 0 ]; then
    for t in 1 2 4 8 16; do
        if [ "$t" -le "$cpus" ]; then threads+=("$t"); fi
    done
fi
cargo build -q --release -p stratacache-benches --example ratios
RATIO_ROUNDS="${RATIO_ROUNDS:-5}" RATIO_SUBJECTS=moka,scc target/release/examples/ratios \
    "${threads[@]}" | tee "benches/results/scaling-${cpus}cpu.txt"
