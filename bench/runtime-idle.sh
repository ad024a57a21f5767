#!/bin/bash
# bench/run runtime-idle: 200 idle `sleep` containers started through the runtime library
# as the node agent uses it (runtime/examples/idle.rs: default options, overlay rootfs,
# memory and pids limits, two worker threads). Measures the caller's RSS growth per
# container (target < 100 KiB) and the runtime-side processes per container (no shim:
# target 0; every process added is a container's own init).
# Last line: `runtime-idle: containers N rss-growth <KiB>/container runtime-processes <n>/container ratio <growth/100 KiB>`
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/run runtime-idle needs root (it runs containers)" >&2; exit 1; }
n=${CONTAINERS:-200}
[ -x /bin/busybox ] || apt-get install -y -q busybox-static >/dev/null
cargo build --release -q -p paas-runtime --example idle
out=$(target/release/examples/idle "$n" "$(mktemp -d /tmp/paas-bench-idle.XXXXXX)")
echo "$out"
get() { sed -n "s/^$1=//p" <<<"$out"; }
g=$(get caller_rss_growth_per_container_kib)
echo "runtime-idle: containers $(get containers) rss-growth ${g}KiB/container runtime-processes $(get runtime_processes_per_container)/container ratio $(awk -v g="$g" 'BEGIN {printf "%.2f", g/100}')"
