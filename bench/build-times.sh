#!/bin/bash
# Build-time measurements for issue 20 (the crate walls): from the tree this script sits in,
#   1. `cargo build --release -p paas-controller` from clean (own target dir), twice;
#   2. debug `cargo build -p paas-controller` after `touch` of one router file, of one
#      registry file and of one API handler file (the tree warm from a debug build
#      before), twice each;
#   3. when a paas-registry crate exists, `cargo build -p paas-registry` after the same
#      touch (what `cargo test -p paas-registry` needs without the controller).
# Every line printed carries the 1-minute load average when the build started and ended,
# because the machine is shared. CARGO_INCREMENTAL=0 as every build on this machine.
# The release target dir is deleted at the end (disk is tight).
#   bench/run build-times   (TARGET=DIR: target dir, default target-bench; RUNS=N: runs of
#                            each, default 2; SKIP_RELEASE=1: only the debug rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
target=${TARGET:-target-bench}
runs=${RUNS:-2}
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
load() { cut -d' ' -f1 /proc/loadavg; }
timed() { # label, command...
    local label=$1; shift
    local l0 t0 t1 l1
    l0=$(load); t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N); l1=$(load)
    printf 'build-times %s %s: %.1f s (load %s -> %s, %s UTC)\n' "$rev" "$label" \
        "$(echo "$t1 - $t0" | bc)" "$l0" "$l1" "$(date -u +%H:%M)"
}
router_file=router/src/lib.rs
handler_file=controller/src/http/config.rs
if [ -d registry/src ]; then registry_file=registry/src/store.rs; else registry_file=controller/src/registry/store.rs; fi

if [ "${SKIP_RELEASE:-}" != 1 ]; then
    for i in $(seq "$runs"); do
        rm -rf "$target/release"
        timed "release clean #$i" cargo build --release -p paas-controller --target-dir "$target"
    done
    rm -rf "$target/release"
fi
timed "debug warm-up (not a result)" cargo build -p paas-controller --target-dir "$target"
for i in $(seq "$runs"); do
    touch "$router_file"
    timed "debug after touch $router_file #$i" cargo build -p paas-controller --target-dir "$target"
    touch "$registry_file"
    timed "debug after touch $registry_file #$i" cargo build -p paas-controller --target-dir "$target"
    touch "$handler_file"
    timed "debug after touch $handler_file #$i" cargo build -p paas-controller --target-dir "$target"
done
if [ -d registry/src ]; then
    for i in $(seq "$runs"); do
        touch "$registry_file"
        timed "debug paas-registry alone after touch $registry_file #$i" cargo build -p paas-registry --target-dir "$target"
    done
fi
