#!/usr/bin/env bash
# The scaling curves of docs/performance.md in one batched run, for a machine with >= 16 cores:
# builds `compare` in release, runs the throughput, wait, sync and priority workloads at 1, 2, 4,
# 8 and 16 workers (W3 is fib(35) from 8 workers on), REPS invocations each with the worker
# counts interleaved, and draws the plots.
#
#   bash benches/scaling.sh [OUT_DIR] [REPS]     # defaults: results/scaling, 5
#
# OUT_DIR receives cmp-t{T}-r{I}.md (the raw outputs) and the SVG plots (benches/plot.py).
# Pinning stays at compare's default; run on an otherwise idle machine.
set -euo pipefail
out=${1:-results/scaling}
reps=${2:-5}
workers="1 2 4 8 16"
cores=$(nproc)
if [ "$cores" -lt 16 ]; then
    echo "scaling.sh: this machine has $cores cores; the 16-worker points need 16 (continuing)" >&2
fi
cargo build --release -p jobsys-benches --bin compare
bin=${CARGO_TARGET_DIR:-target}/release/compare
mkdir -p "$out"
for i in $(seq 1 "$reps"); do
    for t in $workers; do
        echo "run $i, $t workers" >&2
        "$bin" --workers "$t" --only W1,W1b,W2,W3,W6,sync,prio > "$out/cmp-t$t-r$i.md"
    done
done
python3 benches/plot.py "$out" "$out"
