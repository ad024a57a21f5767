#!/bin/bash
# bench/run scheduler: one call of the pure planner (controller/src/scheduler/mod.rs `plan`)
# placing 10,000 jobs onto 1,000 nodes; the target is ≤ 50 ms (ratio = ms / 50).
# Last line: `scheduler: <ms> ms for 10000 jobs on 1000 nodes ratio <ms/50>`
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p paas-controller --example plan_bench
exec target/release/examples/plan_bench
