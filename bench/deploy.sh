#!/bin/bash
# bench/run deploy: time from `git push` to the first 200 through the router, for a static
# app and a Procfile app, cold (first push) and warm (a second push with a one-line change).
# Prints the layer sizes of each app's release image (stack layers + the app layer).
# Runs a throw-away standalone paas (own data dir, ports, prefix, uid range) and removes it
# at the end. Every job runs in a user namespace (idmapped image layers), as in production.
# Last line: `deploy: static cold <ms> warm <ms> procfile cold <ms> warm <ms> ratio <warm static/2000 ms target>`
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/paas.sh
[ "$(id -u)" -eq 0 ] || { echo "bench/run deploy needs root (it runs containers)" >&2; exit 1; }

cargo build --release -q -p paas-controller -p paas-node-agent
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d /tmp/paas-bench-deploy.XXXXXX)
prefix=bd$(printf '%04x' $(( $$ % 65535 )))
api_port=$(( 18000 + $$ % 1000 ))
router_port=$(( api_port + 1000 ))
deploy/build-stack tiny "$work/stacks/tiny" >/dev/null
# Every job runs in a user namespace of its app's uid range: the bench's agent gets 16
# ranges of its own, away from the default range of a paas running on this machine.
export PAAS_AGENT_USERNS_RANGE="$(( 3221225472 + ($$ % 1000) * 1048576 )):1048576"

cleanup() {
    paas_stop
    rm -rf "$work"
}
trap cleanup EXIT

paas_start --stacks-dir "$work/stacks" --prefix "$prefix" --subnet 10.202.7.0/24 --port-range 31000-31099
sleep 3 # the agent's first heartbeat

now_ms() { date +%s%3N; }
# push APP DIR NEEDLE → ms from push start to a 200 whose body contains NEEDLE
push_ms() {
    local app=$1 dir=$2 needle=$3 start
    start=$(now_ms)
    git -C "$dir" -c credential.helper= push -q "http://u:$token@127.0.0.1:$api_port/git/$app.git" main >"$work/push.log" 2>&1 \
        || { echo "push of $app failed:" >&2; cat "$work/push.log" >&2; tail -30 "$work/controller.log" >&2; exit 1; }
    for _ in $(seq 1 600); do
        if curl -sf -H "Host: $app.localhost" "http://127.0.0.1:$router_port/" 2>/dev/null | grep -q "$needle"; then
            echo $(( $(now_ms) - start ))
            return
        fi
        sleep 0.05
    done
    echo "no 200 from $app within 30 s" >&2
    exit 1
}

mkapp() {
    local dir=$work/src-$1
    mkdir -p "$dir"
    git -C "$dir" init -q -b main
    echo "$dir"
}
commit() { git -C "$1" -c user.name=b -c user.email=b@paas.invalid add -A && git -C "$1" -c user.name=b -c user.email=b@paas.invalid commit -qm "$2"; }

s=$(mkapp static); echo "<p>one</p>" > "$s/index.html"; commit "$s" one
static_cold=$(push_ms bstatic "$s" one)
echo "<p>two</p>" > "$s/index.html"; commit "$s" two
static_warm=$(push_ms bstatic "$s" two)

p=$(mkapp proc)
printf '%s\n' "web: sh -c 'mkdir -p /tmp/w && echo one > /tmp/w/index.html && exec httpd -f -p \$PORT -h /tmp/w'" > "$p/Procfile"
commit "$p" one
proc_cold=$(push_ms bproc "$p" one)
sed -i 's/echo one/echo two/' "$p/Procfile"; commit "$p" two
proc_warm=$(push_ms bproc "$p" two)

# Layer sizes (compressed, as stored in the registry) of each app's last release image:
# the shared stack layer(s) and the app layer on top.
layer_sizes() {
    local app=$1 image
    image=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/apps/$app/releases" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); r=r if isinstance(r,list) else r.get("releases",r); print(max(r,key=lambda x:x["version"])["image"])')
    curl -sf -H "Authorization: Bearer $token" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$api_port/v2/${image%@*}/manifests/${image#*@}" \
        | python3 -c 'import json,sys; l=[x["size"] for x in json.load(sys.stdin)["layers"]]; print("stack %s bytes + app %d bytes" % ("+".join(map(str,l[:-1])), l[-1]))'
}
echo "layers: static $(layer_sizes bstatic); procfile $(layer_sizes bproc)"
echo "static: cold ${static_cold} ms, warm ${static_warm} ms; procfile: cold ${proc_cold} ms, warm ${proc_warm} ms"
ratio=$(awk -v w="$static_warm" 'BEGIN { printf "%.2f", w / 2000 }')
echo "deploy: static cold ${static_cold} ms warm ${static_warm} ms procfile cold ${proc_cold} ms warm ${proc_warm} ms ratio ${ratio} (warm static / 2000 ms target)"
