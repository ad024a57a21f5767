#!/bin/bash
# bench/run dockerfile: the same multi-stage Dockerfile (a small Python app on the bookworm
# stack: a build stage with a venv, COPY of the source and a compile step, then a run stage
# that copies the venv and the compiled app from it; nothing networked) built by paas's own
# builder and by Debian's buildah, cold and then warm after a one-file change, in the same
# run. paas: a throw-away standalone controller (release build), timed from `git push` to
# the push's `Releasing` line (the image built and stored; the deploy after it is not
# counted). buildah: `buildah bud --layers --runtime runc` (Debian's default runtime, crun,
# refuses this host's hybrid cgroups) with overlay storage in a temp root, the base
# image the same bookworm stack (pulled from its OCI layout into that root before timing),
# `--network none`. Needs root.
# Last line: `dockerfile: warm paas <s> s, buildah <s> s, ratio <paas/buildah>` (goal ≤ 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/paas.sh
[ "$(id -u)" -eq 0 ] || { echo "bench/run dockerfile needs root (it runs containers)" >&2; exit 1; }
command -v buildah >/dev/null || { echo "bench/run dockerfile needs buildah: run deploy/install-deps" >&2; exit 1; }

cargo build --release -q -p paas-controller -p paas-node-agent
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d /tmp/paas-bench-dockerfile.XXXXXX)
prefix=bd$(printf '%04x' $(( $$ % 65535 )))
api_port=$(( 21000 + $$ % 1000 ))
router_port=$(( api_port + 1000 ))
shared=target/e2e-stacks/bookworm
mkdir -p "$shared" "$work/stacks"
flock "$shared/lock" deploy/build-stack bookworm "$shared/bookworm"
deploy/build-stack tiny "$work/stacks/tiny" >/dev/null
ln -s "$(pwd)/$shared/bookworm" "$work/stacks/bookworm"
bah=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay)

cleanup() {
    paas_stop
    "${bah[@]}" rm --all >/dev/null 2>&1 || true
    "${bah[@]}" rmi --all --force >/dev/null 2>&1 || true
    umount -R "$work/buildah/root/overlay" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

paas_start --stacks-dir "$work/stacks" --prefix "$prefix" --subnet 10.211.9.0/24 --port-range 31300-31399
sleep 3 # the agent's first heartbeat

now_ms() { date +%s%3N; }
src=$work/src
mkdir -p "$src/app"
git -C "$src" init -q -b main
cat > "$src/Dockerfile" <<'DOCKERFILE'
FROM bookworm AS build
WORKDIR /srv
RUN python3 -m venv --without-pip /venv
COPY requirements.txt ./
RUN /venv/bin/python -c "open('/srv/deps.txt', 'w').write(open('requirements.txt').read())"
COPY app/ ./app/
RUN /venv/bin/python -m compileall -q app

FROM bookworm
WORKDIR /srv
COPY --from=build /venv /venv
COPY --from=build /srv/deps.txt ./
COPY --from=build /srv/app ./app
ENV PORT=8080
EXPOSE 8080
CMD ["/venv/bin/python", "app/server.py"]
DOCKERFILE
echo "# no dependencies: nothing networked" > "$src/requirements.txt"
for i in $(seq 1 20); do printf 'VALUE_%s = %s\n' "$i" "$i" > "$src/app/mod$i.py"; done
cat > "$src/app/server.py" <<'PY'
import http.server, os
MSG = b"one\n"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(MSG)
http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
PY
commit() { git -C "$src" -c user.name=b -c user.email=b@paas.invalid add -A && git -C "$src" -c user.name=b -c user.email=b@paas.invalid commit -qm "$1"; }
commit one

# paas: ms from the push to its `Releasing` line.
paas_ms() {
    local start line
    start=$(now_ms)
    echo "$start" >"$work/push-start"
    git -C "$src" -c credential.helper= push "http://u:$token@127.0.0.1:$api_port/git/bdf.git" main 2>&1 \
        | while IFS= read -r line; do printf '%s %s\n' "$(now_ms)" "$line"; done >"$work/push.log"
    line=$(grep -m1 'Releasing v' "$work/push.log") \
        || { cat "$work/push.log" >&2; echo "the paas push failed; see $work/controller.log" >&2; exit 1; }
    echo $(( ${line%% *} - start ))
}
# buildah: ms of `buildah bud --layers`.
buildah_ms() {
    local start
    start=$(now_ms)
    "${bah[@]}" bud --runtime runc --layers --network none -q -t bdf "$src" >"$work/buildah.log" 2>&1 \
        || { cat "$work/buildah.log" >&2; echo "buildah bud failed" >&2; exit 1; }
    echo $(( $(now_ms) - start ))
}

# The base image in buildah's root, named as paas's stack is (outside the timing).
"${bah[@]}" pull -q "oci:$(pwd)/$shared/bookworm:latest" >/dev/null 2>&1 \
    || "${bah[@]}" pull -q "oci:$(pwd)/$shared/bookworm" >/dev/null
"${bah[@]}" tag "$("${bah[@]}" images -q | head -1)" localhost/bookworm:latest

paas_cold=$(paas_ms)
buildah_cold=$(buildah_ms)
sed -i 's/one/two/' "$src/app/server.py"; commit two
paas_warm=$(paas_ms)
# The warm push's own lines, in ms since it began (where the time goes).
echo "warm push (ms since git push began):"
awk -v t0="$(cat "$work/push-start")" '{ ms = $1 - t0; $1 = ""; printf "%6d%s\n", ms, $0 }' "$work/push.log" \
    | grep -v '^ *[0-9]* *$' | sed -n '1,60p'
buildah_warm=$(buildah_ms)

s() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
echo "cold: paas $(s "$paas_cold") s, buildah $(s "$buildah_cold") s"
ratio=$(awk -v p="$paas_warm" -v b="$buildah_warm" 'BEGIN { printf "%.2f", p / b }')
echo "dockerfile: warm paas $(s "$paas_warm") s, buildah $(s "$buildah_warm") s, ratio ${ratio}"
