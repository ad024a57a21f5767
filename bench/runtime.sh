#!/bin/bash
# bench/run runtime: `run` of /bin/true from a busybox OCI bundle with new namespaces,
# paas-runtime (release build) against Debian's crun and runc, 200 runs each, taken in
# turn (paas, crun, runc, paas, …) so all three see the same machine state.
# Last line: `runtime: paas <median ms> crun <median ms> ratio <paas/crun>`
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/run runtime needs root (it runs containers)" >&2; exit 1; }
runs=${RUNS:-200}

missing=()
command -v crun >/dev/null || missing+=(crun)
command -v runc >/dev/null || missing+=(runc)
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q "${missing[@]}" >/dev/null
fi

cargo build --release -q -p paas-runtime
# crun (1.8) refuses a hybrid cgroup host whose cgroup2 mount offers a controller
# ("cgroups in hybrid mode not supported"). Then all three runtimes run in a private
# mount namespace where an empty tmpfs hides that cgroup2 mount: the v1 hierarchies,
# where the limits live, stay as they are. The host's mounts are not touched.
unified=/sys/fs/cgroup/unified
if [ -z "${PAAS_BENCH_NS:-}" ] && grep -q . "$unified/cgroup.controllers" 2>/dev/null; then
    exec unshare --mount --propagation private env PAAS_BENCH_NS=1 "$0" "$@"
fi
if [ -n "${PAAS_BENCH_NS:-}" ]; then
    umount "$unified"
    mount -t tmpfs -o size=1m paas-bench "$unified"
fi
paas=$PWD/target/release/paas-runtime
work=$(mktemp -d /tmp/paas-bench-runtime.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$bundle/rootfs/bin/$a"; done
# The same config.json for all three: runc's default shape (pid, net, ipc, uts, mount,
# cgroup namespaces; masked and read-only paths; no seccomp), running /bin/true.
"$paas" spec --bundle "$bundle"
sed -i 's/"args":\["sh"\]/"args":["\/bin\/true"]/' "$bundle/config.json"
grep -q '"/bin/true"' "$bundle/config.json" || { echo "could not set args in config.json" >&2; exit 1; }

declare -A root=([paas]=$work/paas [crun]=$work/crun [runc]=$work/runc)
declare -A cmd=([paas]=$paas [crun]=$(command -v crun) [runc]=$(command -v runc))
declare -A times=()
one() { # NAME ID → appends the run time in µs
    local name=$1 id=$2 t0 t1
    t0=$EPOCHREALTIME
    "${cmd[$name]}" --root "${root[$name]}" run --bundle "$bundle" "$id" >/dev/null
    t1=$EPOCHREALTIME
    times[$name]+="$(( (${t1/./} - ${t0/./}) )) "
}
for name in paas crun runc; do one "$name" "warm-$name"; times[$name]=""; done
for i in $(seq 1 "$runs"); do
    for name in paas crun runc; do one "$name" "b$i"; done
done
# create → start latency: `start` alone, on a created container (then it runs /bin/true
# and is deleted), fewer rounds.
declare -A starts=()
for i in $(seq 1 $(( runs / 4 + 1 ))); do
    for name in paas crun runc; do
        "${cmd[$name]}" --root "${root[$name]}" create --bundle "$bundle" "s$i" >/dev/null
        t0=$EPOCHREALTIME
        "${cmd[$name]}" --root "${root[$name]}" start "s$i"
        t1=$EPOCHREALTIME
        starts[$name]+="$(( (${t1/./} - ${t0/./}) )) "
        for _ in $(seq 1 200); do
            "${cmd[$name]}" --root "${root[$name]}" delete "s$i" 2>/dev/null && break
            sleep 0.01
        done
    done
done
median_ms() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
p=$(median_ms "${times[paas]}")
c=$(median_ms "${times[crun]}")
r=$(median_ms "${times[runc]}")
echo "start of a created container, medians: paas $(median_ms "${starts[paas]}") ms, crun $(median_ms "${starts[crun]}") ms, runc $(median_ms "${starts[runc]}") ms"
echo "runs: $runs each; medians: paas $p ms, crun $c ms, runc $r ms"
echo "runtime: paas $p crun $c ratio $(awk -v p="$p" -v c="$c" 'BEGIN {printf "%.2f", p/c}')"
