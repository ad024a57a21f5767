#!/bin/bash
# bench/run containerd: `ctr run --rm` of /bin/true from the `tiny` stack under containerd
# (1.6, runc shim v2), with paas-runtime (release build) vs Debian's runc as the runc
# binary (`--runc-binary`), taken in turn so both see the same machine state. The
# script starts its own containerd (own config, root, state dir and socket in a temp dir,
# no CRI plugin, a unique namespace) and removes everything at the end.
# Last line: `containerd: paas <median ms> runc <median ms> ratio <paas/runc>`
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/run containerd needs root (it runs containerd)" >&2; exit 1; }
runs=${RUNS:-50}
for tool in containerd ctr containerd-shim-runc-v2 runc; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run deploy/install-deps" >&2; exit 1; }
done

cargo build --release -q -p paas-runtime
paas=$(realpath "${CARGO_TARGET_DIR:-target}")/release/paas-runtime
runc=$(command -v runc)
work=$(mktemp -d /tmp/paas-bench-containerd.XXXXXX)
ns=paas-bench-$$
ctd_pid=
cleanup() {
    if [ -n "$ctd_pid" ]; then
        for id in $(ctr -a "$work/containerd.sock" -n "$ns" containers ls -q 2>/dev/null); do
            ctr -a "$work/containerd.sock" -n "$ns" task kill -s KILL "$id" >/dev/null 2>&1 || true
            ctr -a "$work/containerd.sock" -n "$ns" task rm -f "$id" >/dev/null 2>&1 || true
            ctr -a "$work/containerd.sock" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
        done
        ctr -a "$work/containerd.sock" -n "$ns" images rm paas/tiny:latest >/dev/null 2>&1 || true
        kill "$ctd_pid" 2>/dev/null || true
        wait "$ctd_pid" 2>/dev/null || true
    fi
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "/run/containerd/runc/$ns" "$work"
    for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    return 0
}
trap cleanup EXIT

cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[debug]
  address = "$work/debug.sock"
[metrics]
  address = ""
EOF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctd_pid=$!
ctr_() { ctr -a "$work/containerd.sock" -n "$ns" "$@"; }
for _ in $(seq 1 200); do
    ctr_ version >/dev/null 2>&1 && break
    sleep 0.1
done
ctr_ version >/dev/null || { echo "containerd did not start: $(tail -5 "$work/containerd.log")" >&2; exit 1; }

deploy/build-stack tiny "$work/layout" >/dev/null
tar -C "$work/layout" -cf "$work/tiny.tar" .
ctr_ images import --base-name paas/tiny "$work/tiny.tar" >/dev/null

declare -A bin=([paas]=$paas [runc]=$runc)
declare -A times=()
one() { # NAME ID → appends the time of one `ctr run --rm` in µs
    local name=$1 id=$2 t0 t1
    t0=$EPOCHREALTIME
    ctr_ run --rm --runc-binary "${bin[$name]}" paas/tiny:latest "$id" /bin/true >/dev/null
    t1=$EPOCHREALTIME
    times[$name]+="$(( (${t1/./} - ${t0/./}) )) "
}
median_ms() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
for name in paas runc; do one "$name" "warm-$name"; times[$name]=""; done
for i in $(seq 1 "$runs"); do
    for name in paas runc; do one "$name" "$name-$i"; done
done
p=$(median_ms "${times[paas]}")
r=$(median_ms "${times[runc]}")
echo "runs: $runs each (ctr run --rm of /bin/true, tiny stack, containerd $(containerd --version | awk '{print $3}'))"
echo "containerd: paas $p runc $r ratio $(awk -v p="$p" -v r="$r" 'BEGIN {printf "%.2f", p/r}')"
