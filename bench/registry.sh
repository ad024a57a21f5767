#!/bin/bash
# bench/run registry: the registry's blob pull throughput (`GET /v2/NAME/blobs/DIGEST` over
# loopback HTTP with the admin token, read by curl into /dev/null) against reading the same
# blob file from disk (`cat` into /dev/null). Both read a warm page cache: the blob was just
# pushed, and each side reads once before the timed runs. Median of 5 runs each.
# Runs a throw-away standalone paas (no agent; own data dir and ports) and removes it.
# BENCH_MB sets the blob size (default 512).
# Last line: `registry: paas <MB/s> disk <MB/s> ratio <paas/disk>`
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/paas.sh

profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release -q -p paas-controller
else
    cargo build -q -p paas-controller
fi
bin=${CARGO_TARGET_DIR:-target}/$profile
mb=${BENCH_MB:-512}
work=$(mktemp -d /tmp/paas-bench-registry.XXXXXX)
api_port=$(( 17000 + $$ % 1000 ))
router_port=$(( api_port + 1000 ))
deploy/build-stack tiny "$work/stacks/tiny" >/dev/null

cleanup() {
    paas_stop
    rm -rf "$work"
}
trap cleanup EXIT

paas_start --no-local-agent --no-router-tls --stacks-dir "$work/stacks" --gc-interval-secs 0
base=http://127.0.0.1:$api_port/v2/bench/blob

head -c $(( mb * 1024 * 1024 )) /dev/urandom > "$work/blob"
digest=sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)
location=$(curl -sf -D - -o /dev/null -X POST -H "Authorization: Bearer $token" "$base/blobs/uploads/" \
    | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case "$location" in http*) ;; *) location="http://127.0.0.1:$api_port$location" ;; esac
sep='?'; case "$location" in *\?*) sep='&' ;; esac
curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$work/blob" "$location${sep}digest=$digest" \
    || { echo "pushing the blob failed; see $work/controller.log" >&2; exit 1; }
file=$work/data/registry/blobs/sha256/${digest#sha256:}
[ -f "$file" ] || { echo "the blob is not at $file" >&2; exit 1; }
rm -f "$work/blob"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
now_ns() { date +%s%N; }
paas_once() {
    curl -sf -o /dev/null -w '%{speed_download}\n' -H "Authorization: Bearer $token" "$base/blobs/$digest" \
        | awk '{ printf "%.1f\n", $1 / 1048576 }'
}
disk_once() {
    local start end
    start=$(now_ns)
    cat "$file" > /dev/null
    end=$(now_ns)
    awk -v mb="$mb" -v ns=$(( end - start )) 'BEGIN { printf "%.1f\n", mb / (ns / 1e9) }'
}
paas_once >/dev/null; disk_once >/dev/null
paas=$(for _ in 1 2 3 4 5; do paas_once; done | median)
disk=$(for _ in 1 2 3 4 5; do disk_once; done | median)
ratio=$(awk -v p="$paas" -v d="$disk" 'BEGIN { printf "%.2f", p / d }')
echo "blob ${mb} MiB, $profile build; MB/s = MiB/s; median of 5"
echo "registry: paas ${paas} MB/s disk ${disk} MB/s ratio ${ratio}"
