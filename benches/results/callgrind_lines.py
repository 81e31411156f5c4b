#!/usr/bin/env python3
"""Exclusive instruction counts per function *and* source line, from two callgrind runs.

`callgrind_annotate` sums a source line over every function it was inlined into, and its
inclusive figures count an inlined callee's cost again; with the L2 table inlined into
`Cache::insert`, neither says which function's line costs what. This reads callgrind's
output files directly and keeps (function, file, line) apart.

Usage, as in NOTES.md (a path's cost is the difference of two runs divided by the extra
operations):

    valgrind --tool=callgrind --callgrind-out-file=a.out target/release/examples/miss_paths 100000 20000
    valgrind --tool=callgrind --callgrind-out-file=b.out target/release/examples/miss_paths 100000 120000
    python3 benches/results/callgrind_lines.py a.out b.out 100000 'Cache<K,V,S,W,P>>::insert' 40
    python3 benches/results/callgrind_lines.py a.out b.out 100000 --functions 20

Build with `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` so that lines are known.
"""
import collections
import os
import re
import sys


def parse(path):
    """Exclusive Ir per (function, file, line) of one callgrind output file."""
    names = {"fl": {}, "fn": {}, "ob": {}}
    table_of = {"fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
                "fn": "fn", "cfn": "fn", "ob": "ob", "cob": "ob"}
    costs = collections.Counter()
    function = file_name = current_file = None
    line = 0
    after_calls = False
    for raw in open(path, errors="replace"):
        text = raw.rstrip("\n")
        if not text:
            continue
        spec = re.match(r"^(fl|fi|fe|fn|cfn|cfi|cfl|ob|cob)=(.*)$", text)
        if spec:
            kind, value = spec.groups()
            table = names[table_of[kind]]
            compressed = re.match(r"\((\d+)\)(?: (.*))?", value)
            if compressed:
                if compressed.group(2) is not None:
                    table[compressed.group(1)] = compressed.group(2)
                value = table.get(compressed.group(1), "?")
            if kind == "fl":
                file_name = current_file = value
            elif kind in ("fi", "fe"):
                current_file = value
            elif kind == "fn":
                function, current_file = value, file_name
            continue
        if text.startswith("calls="):
            after_calls = True  # the next cost line is a call's inclusive cost
            continue
        if text[0] in "0123456789+-*":
            parts = text.split()
            position = parts[0]
            if position.startswith("+"):
                line += int(position[1:])
            elif position.startswith("-"):
                line -= int(position[1:])
            elif position != "*":
                line = int(position)
            if after_calls:
                after_calls = False
                continue
            if len(parts) > 1:
                costs[(function, current_file, line)] += int(parts[1])
    return costs


def source(path, line, cache={}):
    try:
        if path not in cache:
            cache[path] = open(path).read().split("\n")
        return cache[path][line - 1].strip()[:90]
    except (OSError, IndexError):
        return ""


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    before, after = parse(sys.argv[1]), parse(sys.argv[2])
    per = float(sys.argv[3])
    pattern = sys.argv[4]
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    if pattern == "--functions":
        by_function = collections.Counter()
        for key, cost in after.items():
            by_function[key[0]] += (cost - before.get(key, 0)) / per
        for function, cost in by_function.most_common(top):
            print(f"{cost:8.1f} {function}")
        return
    rows = sorted(
        (((cost - before.get(key, 0)) / per, key) for key, cost in after.items()
         if pattern in (key[0] or "")),
        reverse=True,
    )
    print(f"total in matching functions: {sum(cost for cost, _ in rows):.1f}")
    for cost, (_, path, line) in rows[:top]:
        if cost >= float(os.environ.get("MIN_COST", "1.5")):
            print(f"{cost:7.1f} {(path or '?').split('/')[-1]}:{line}  {source(path, line)}")


if __name__ == "__main__":
    main()
