#!/usr/bin/env bash
# Compares each published crate's public API with its snapshot in .ci/api/, so that a change
# to the API is made on purpose: `bash .ci/api.sh --bless` rewrites the snapshots after one.
# Needs a nightly toolchain (rustdoc's JSON output) and python3. A snapshot made with another
# version of rustdoc's JSON format is not compared (the output would differ in form, not in
# API): the script says so and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
bless=${1:-}
status=0
for spec in "stratacache:std,policies,persistent,serde,async,redis,metrics,tracing" "stratacache-alloc:std" "stratacache-platform:std"; do
    crate=${spec%%:*}
    features=${spec#*:}
    cargo +nightly rustdoc -q -p "$crate" --lib --features "$features" -- \
        -Z unstable-options --output-format json
    current=$(python3 .ci/public_api.py "target/doc/${crate//-/_}.json")
    snapshot=".ci/api/$crate.txt"
    if [ "$bless" = "--bless" ]; then
        printf '%s\n' "$current" > "$snapshot"
        echo "$crate: snapshot written ($(($(wc -l < "$snapshot") - 1)) items)"
        continue
    fi
    if [ "$(head -1 "$snapshot")" != "$(head -1 <<< "$current")" ]; then
        echo "$crate: SKIPPED: the snapshot's $(head -1 "$snapshot" | tr -d '#') differs from this nightly's $(head -1 <<< "$current" | tr -d '#'); run with --bless on a checked change"
        continue
    fi
    if ! diff -u "$snapshot" <(printf '%s\n' "$current"); then
        echo "$crate: the public API changed (above). If on purpose: bash .ci/api.sh --bless" >&2
        status=1
    else
        echo "$crate: public API as in $snapshot"
    fi
done
exit $status
