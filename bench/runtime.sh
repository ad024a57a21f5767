#!/bin/bash
# bench/run runtime: `run` of /bin/true from a busybox OCI bundle with new namespaces,
# paas-runtime (release build) against Debian's crun and runc, 200 runs each, taken in
# turn (paas, crun, runc, paas, …) so all three see the same machine state. Twice: the
# bundle as it is, then the same bundle with a user namespace (`linux.uidMappings` and
# `gidMappings`, container 0..65535 on host 2147483648..) for all three, as every paas
# job now runs. Neither run idmaps the bundle's rootfs (root-owned, world-readable: the
# mapped root can run /bin/true as it is), so all three do the same work. Then what the
# agent's jobs pay for their idmapped image layers: paas alone, a container from an
# overlay of one layer with and without a user namespace (idmapped layer).
# Last line (user namespaces): `runtime: paas <median ms> crun <median ms> ratio <paas/crun>`
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
# where the limits live, stay as they are. The host's mounts are not touched. runc leaves
# a directory with files there per container, so the tmpfs is 64 MiB (1 MiB filled up
# after ~400 containers: ENOSPC).
unified=/sys/fs/cgroup/unified
if [ -z "${PAAS_BENCH_NS:-}" ] && grep -q . "$unified/cgroup.controllers" 2>/dev/null; then
    exec unshare --mount --propagation private env PAAS_BENCH_NS=1 "$0" "$@"
fi
if [ -n "${PAAS_BENCH_NS:-}" ]; then
    umount "$unified"
    mount -t tmpfs -o size=64m paas-bench "$unified"
fi
paas=$(realpath "${CARGO_TARGET_DIR:-target}")/release/paas-runtime
work=$(mktemp -d /tmp/paas-bench-runtime.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The user-namespaced containers' root (an unprivileged host uid) must reach the rootfs.
chmod 755 "$work"
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$bundle/rootfs/bin/$a"; done
# The same config.json for all three: runc's default shape (pid, net, ipc, uts, mount,
# cgroup namespaces; masked and read-only paths; no seccomp), running /bin/true.
"$paas" spec --bundle "$bundle"
sed -i 's/"args":\["sh"\]/"args":["\/bin\/true"]/' "$bundle/config.json"
grep -q '"/bin/true"' "$bundle/config.json" || { echo "could not set args in config.json" >&2; exit 1; }
# The user namespace variant: the same config plus a user namespace and its maps, on
# the same rootfs.
userns_bundle=$work/bundle-userns
mkdir -p "$userns_bundle"
python3 - "$bundle/config.json" "$userns_bundle/config.json" "$bundle/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = sys.argv[3]
c["linux"]["namespaces"].append({"type": "user"})
m = [{"containerID": 0, "hostID": 2147483648, "size": 65536}]
c["linux"]["uidMappings"] = m
c["linux"]["gidMappings"] = m
json.dump(c, open(sys.argv[2], "w"))
PY

declare -A root=([paas]=$work/paas [crun]=$work/crun [runc]=$work/runc)
declare -A cmd=([paas]=$paas [crun]=$(command -v crun) [runc]=$(command -v runc))
declare -A times=()
one() { # NAME ID BUNDLE → appends the run time in µs
    local name=$1 id=$2 b=$3 t0 t1
    t0=$EPOCHREALTIME
    "${cmd[$name]}" --root "${root[$name]}" run --bundle "$b" "$id" >/dev/null
    t1=$EPOCHREALTIME
    times[$name]+="$(( (${t1/./} - ${t0/./}) )) "
}
median_ms() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'; }
ratio() { awk -v p="$1" -v c="$2" 'BEGIN {printf "%.2f", p/c}'; }
# runs BUNDLE TAG → sets p c r (medians, ms) for `run` of the bundle
runs_of() {
    local b=$1 tag=$2
    for name in paas crun runc; do one "$name" "warm-$tag-$name" "$b"; times[$name]=""; done
    for i in $(seq 1 "$runs"); do
        for name in paas crun runc; do one "$name" "$tag$i" "$b"; done
    done
    p=$(median_ms "${times[paas]}")
    c=$(median_ms "${times[crun]}")
    r=$(median_ms "${times[runc]}")
}

runs_of "$bundle" b
plain_p=$p plain_c=$c plain_r=$r
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
runs_of "$userns_bundle" u

# What an agent job's idmapped layer costs: paas only (the library path the agent
# takes: an overlay of the layer, not the bundle fast path), in turn with and without
# a user namespace.
layer=$bundle/rootfs
declare -A lt=()
for i in $(seq 0 $(( runs / 2 ))); do
    for mode in plain userns; do
        extra=()
        [ "$mode" = userns ] && extra=(--userns 2147483648)
        t0=$EPOCHREALTIME
        "$paas" --root "$work/layers" run --layer "$layer" "${extra[@]}" "l$mode$i" -- /bin/true >/dev/null
        t1=$EPOCHREALTIME
        [ "$i" -gt 0 ] && lt[$mode]+="$(( (${t1/./} - ${t0/./}) )) "
    done
done

echo "start of a created container, medians: paas $(median_ms "${starts[paas]}") ms, crun $(median_ms "${starts[crun]}") ms, runc $(median_ms "${starts[runc]}") ms"
echo "overlay of one layer (the agent's path), paas alone, medians: without a user namespace $(median_ms "${lt[plain]}") ms, with one and the layer idmapped $(median_ms "${lt[userns]}") ms"
echo "runs: $runs each; without user namespaces, medians: paas $plain_p ms, crun $plain_c ms, runc $plain_r ms, ratio $(ratio "$plain_p" "$plain_c")"
echo "runs: $runs each; with user namespaces (all three), medians: paas $p ms, crun $c ms, runc $r ms"
echo "runtime: paas $p crun $c ratio $(ratio "$p" "$c")"
