#!/bin/bash
# bench/run buildpacks: time from `git push` to the first 200 through the router for a
# Python app (pip: gunicorn) and a Node.js app (npm: ms) on the bookworm stack, cold (first
# push: pip/npm download and install) and warm (a second push with a one-line change: the
# deps come back from the build cache). Needs root and the package registries.
# The bookworm stack is built once into target/e2e-stacks/bookworm/ (shared with the e2e
# tests) and reused. Runs a throw-away standalone paas and removes it at the end.
# Last line: `buildpacks: python cold <ms> warm <ms> node cold <ms> warm <ms> ratio <warm python / 5000 ms target>`
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/paas.sh
[ "$(id -u)" -eq 0 ] || { echo "bench/run buildpacks needs root (it runs containers)" >&2; exit 1; }

cargo build --release -q -p paas-controller -p paas-node-agent
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d /tmp/paas-bench-buildpacks.XXXXXX)
prefix=bb$(printf '%04x' $(( $$ % 65535 )))
api_port=$(( 19000 + $$ % 1000 ))
router_port=$(( api_port + 1000 ))
shared=target/e2e-stacks/bookworm
mkdir -p "$shared" "$work/stacks"
flock "$shared/lock" deploy/build-stack bookworm "$shared/bookworm"
deploy/build-stack tiny "$work/stacks/tiny" >/dev/null
ln -s "$(pwd)/$shared/bookworm" "$work/stacks/bookworm"

cleanup() {
    paas_stop
    rm -rf "$work"
}
trap cleanup EXIT

paas_start --stacks-dir "$work/stacks" --prefix "$prefix" --subnet 10.211.7.0/24 --port-range 31100-31199
sleep 3 # the agent's first heartbeat

now_ms() { date +%s%3N; }
# push APP DIR NEEDLE → ms from push start to a 200 whose body contains NEEDLE
push_ms() {
    local app=$1 dir=$2 needle=$3 start
    start=$(now_ms)
    git -C "$dir" -c credential.helper= push -q "http://u:$token@127.0.0.1:$api_port/git/$app.git" main >"$work/push-$app.log" 2>&1 \
        || { cat "$work/push-$app.log" >&2; echo "push of $app failed; see $work/controller.log" >&2; exit 1; }
    for _ in $(seq 1 1200); do
        if curl -sf -H "Host: $app.localhost" "http://127.0.0.1:$router_port/" 2>/dev/null | grep -q "$needle"; then
            echo $(( $(now_ms) - start ))
            return
        fi
        sleep 0.05
    done
    echo "no 200 from $app within 60 s" >&2
    exit 1
}
mkapp() {
    local dir=$work/src-$1
    mkdir -p "$dir"
    git -C "$dir" init -q -b main
    echo "$dir"
}
commit() { git -C "$1" -c user.name=b -c user.email=b@paas.invalid add -A && git -C "$1" -c user.name=b -c user.email=b@paas.invalid commit -qm "$2"; }

p=$(mkapp python)
echo "gunicorn==22.0.0" > "$p/requirements.txt"
printf '%s\n' "def app(environ, start_response):" \
    "    start_response('200 OK', [('Content-Type', 'text/plain')])" \
    "    return [b'one\n']" > "$p/app.py"
commit "$p" one
py_cold=$(push_ms bpy "$p" one)
sed -i 's/one/two/' "$p/app.py"; commit "$p" two
py_warm=$(push_ms bpy "$p" two)

n=$(mkapp node)
printf '%s\n' '{"name":"b","version":"1.0.0","private":true,"scripts":{"start":"node server.js"},"dependencies":{"ms":"2.1.3"}}' > "$n/package.json"
printf '%s\n' "require('http').createServer((q, r) => r.end('one ' + require('ms')('1s'))).listen(process.env.PORT);" > "$n/server.js"
commit "$n" one
node_cold=$(push_ms bnode "$n" one)
sed -i "s/'one '/'two '/" "$n/server.js"; commit "$n" two
node_warm=$(push_ms bnode "$n" two)

echo "python: cold ${py_cold} ms, warm ${py_warm} ms; node: cold ${node_cold} ms, warm ${node_warm} ms"
ratio=$(awk -v w="$py_warm" 'BEGIN { printf "%.2f", w / 5000 }')
echo "buildpacks: python cold ${py_cold} ms warm ${py_warm} ms node cold ${node_cold} ms warm ${node_warm} ms ratio ${ratio} (warm python / 5000 ms target)"
