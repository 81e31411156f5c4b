#!/usr/bin/env python3
"""Instructions an operation, nanoseconds an operation and their ratio, per subject and mix,
from one build of `replayed_windows` (NOTES.md, "what the unmet cells would take").

Instructions come from callgrind (two round counts, the difference over the extra
operations: they repeat exactly). Time comes from alternating runs of the subjects on the
same binary, as medians (this machine's noise moves single runs by a tenth). Run it on an
otherwise idle machine.

    cargo build --release -p stratacache-benches --example replayed_windows
    python3 benches/results/instruction_rates.py [RUNS] [MIX ...]

RUNS defaults to 7 and MIX to `read_heavy churn`. `BIN` in the environment names another
build of the example.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

SUBJECTS = ["quick_cache", "stratacache", "frames"]
# Rounds for the two callgrind runs and for each timed run, per mix (the churn mix's rounds
# take longer).
ROUNDS = {"read_heavy": (20, 40, 100), "churn": (20, 40, 60), "write_heavy": (20, 40, 60)}
OPS_PER_ROUND = 100_000


def binary():
    default = os.path.join(os.path.dirname(__file__), "../../target/release/examples/replayed_windows")
    return os.environ.get("BIN", default)


def instructions(subject, mix, rounds):
    """Instructions callgrind counts for one run."""
    with tempfile.NamedTemporaryFile() as out:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
             binary(), subject, str(rounds), mix],
            capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if not found:
        sys.exit(f"no instruction count from callgrind for {subject} {mix}:\n{run.stderr}")
    return int(found.group(1))


def nanoseconds(subject, mix, rounds):
    """Nanoseconds an operation one run prints."""
    run = subprocess.run([binary(), subject, str(rounds), mix],
                         capture_output=True, text=True, check=True)
    found = re.search(r"([\d.]+) ns/op", run.stdout)
    if not found:
        sys.exit(f"no time from {subject} {mix}:\n{run.stdout}")
    return float(found.group(1))


def main():
    args = sys.argv[1:]
    runs = int(args.pop(0)) if args and args[0].isdigit() else 7
    mixes = args or ["read_heavy", "churn"]
    if not os.path.exists(binary()):
        sys.exit(__doc__)
    print("| mix | subject | instructions / op | ns / op | instructions / ns |")
    print("|---|---|---:|---:|---:|")
    for mix in mixes:
        few, many, timed = ROUNDS[mix]
        counted = {
            subject: (instructions(subject, mix, many) - instructions(subject, mix, few))
            / ((many - few) * OPS_PER_ROUND)
            for subject in SUBJECTS
        }
        times = {subject: [] for subject in SUBJECTS}
        for _ in range(runs):
            for subject in SUBJECTS:
                times[subject].append(nanoseconds(subject, mix, timed))
        for subject in SUBJECTS:
            median = statistics.median(times[subject])
            print(f"| {mix} | {subject} | {counted[subject]:.1f} | {median:.1f} "
                  f"| {counted[subject] / median:.2f} |")


if __name__ == "__main__":
    main()
