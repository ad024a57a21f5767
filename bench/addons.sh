#!/bin/bash
# bench/run addons: a PostgreSQL add-on against the same PostgreSQL 15 on the host.
#
#  (a) create-to-available: `POST /v1/apps/APP/addons` (plan mini, the default) until the
#      add-on's state is `available`, with the service image already in the registry and on
#      the node (one warm-up create and destroy first); median of $CREATES (default 3), for
#      PostgreSQL and for Redis.
#  (b) `pgbench -S` (select-only; $CLIENTS clients, default 8, 2 threads, $SECS s per round,
#      default 10, scale $SCALE, default 10) against an add-on of plan `standard` (2 GiB,
#      2 cores: the machine's) and against a PostgreSQL 15 cluster the bench starts on the
#      host in a temp dir with the add-on's settings (initdb defaults: shared_buffers 128MB,
#      max_connections 100; scram-sha-256 over TCP), interleaved rounds ($ROUNDS, default 3),
#      medians. pgbench runs on the host for both: over the bridge and the job's veth into
#      the add-on's job (user namespace, walls, cgroup limits), over loopback to the host's.
#
# Runs a throw-away standalone paas (own data dir, ports, prefix, uid range) and removes it
# and the host cluster at the end. Binaries: a release build, or $BIN (e.g. target/debug).
# Service images: deploy/build-stack postgresql into $STACKS (default target/bench-stacks;
# nothing is rebuilt when they are up to date).
# Last line: `addons: create postgresql <s> s, redis <s> s, pgbench paas <tps> tps, host <tps> tps,
# ratio <paas/host>`
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/run addons needs root (it runs containers)" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is missing: apt-get install postgresql-contrib (deploy/install-deps)" >&2; exit 1; }
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL 15 is missing on the host: apt-get install postgresql-15" >&2; exit 1; }

CREATES=${CREATES:-3}
CLIENTS=${CLIENTS:-8}
SECS=${SECS:-10}
SCALE=${SCALE:-10}
ROUNDS=${ROUNDS:-3}

if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p paas-controller -p paas-node-agent
    BIN=${CARGO_TARGET_DIR:-target}/release
fi
STACKS=${STACKS:-target/bench-stacks}
deploy/build-stack postgresql "$STACKS/postgresql" >/dev/null
deploy/build-stack redis "$STACKS/redis" >/dev/null
work=$(mktemp -d /tmp/paas-bench-addons.XXXXXX)
chmod 755 "$work"
prefix=ba$(printf '%04x' $(( $$ % 65535 )))
api_port=$(( 19000 + $$ % 1000 ))
router_port=$(( api_port + 1000 ))
host_port=$(( 25432 + $$ % 1000 ))
mkdir -p "$work/stacks"
deploy/build-stack tiny "$work/stacks/tiny" >/dev/null
ln -s "$(realpath "$STACKS/bookworm")" "$work/stacks/bookworm"
ln -s "$(realpath "$STACKS/postgresql")" "$work/stacks/postgresql"
ln -s "$(realpath "$STACKS/redis")" "$work/stacks/redis"
export PAAS_AGENT_USERNS_RANGE="$(( 3221225472 + ($$ % 1000) * 1048576 )):1048576"

"$BIN/paas-controller" --standalone --router-in-process --data-dir "$work/data" --stacks-dir "$work/stacks" \
    --listen 127.0.0.1:$api_port --router-listen 127.0.0.1:$router_port \
    --prefix "$prefix" --subnet 10.202.9.0/24 --port-range 31100-31199 \
    >"$work/controller.log" 2>&1 &
pid=$!
cleanup() {
    [ ! -d "$work/pg" ] || su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m immediate stop" >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    "$BIN/paas-agent" cleanup --state-dir "$work/data/agent" --prefix "$prefix" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    [ -s "$work/data/admin-token" ] && curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$work/data/admin-token")" \
        "http://127.0.0.1:$api_port/v1/apps" && break
    sleep 0.1
done
token=$(cat "$work/data/admin-token")
api() { # METHOD PATH [BODY]
    curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        ${3:+-d "$3"} "http://127.0.0.1:$api_port$2"
}
sleep 3 # the agent's first heartbeat
api POST /v1/apps '{"name":"bench"}' >/dev/null

now_ms() { date +%s%3N; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# create PLAN [SERVICE] → "MS NAME": from the create request to `available`
create() {
    local start name state
    start=$(now_ms)
    name=$(api POST /v1/apps/bench/addons "{\"service\":\"${2:-postgresql}\",\"plan\":\"$1\"}" | field '["name"]')
    for _ in $(seq 1 3000); do
        state=$(api GET "/v1/apps/bench/addons/$name" | field '["state"]')
        if [ "$state" = available ]; then
            echo "$(( $(now_ms) - start )) $name"
            return
        fi
        sleep 0.05
    done
    echo "the add-on $name was not available within 150 s" >&2
    tail -30 "$work/controller.log" >&2
    exit 1
}
destroy() {
    api DELETE "/v1/apps/bench/addons/$1?confirm=bench" >/dev/null
    # Its job gone (the next create then starts from the same state).
    for _ in $(seq 1 300); do
        curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/apps/bench/config" |
            grep -q "${2:-DATABASE_URL}" || break
        sleep 0.1
    done
    sleep 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

read -r ms name < <(create mini)
echo "warm-up create (image pulled and unpacked): $ms ms"
destroy "$name"
times=()
for _ in $(seq 1 "$CREATES"); do
    read -r ms name < <(create mini)
    times+=("$ms")
    destroy "$name"
done
create_ms=$(printf '%s\n' "${times[@]}" | median)
echo "create to available (postgresql mini): ${times[*]} ms; median $create_ms ms"

read -r ms name < <(create mini redis)
echo "warm-up create of redis (image pulled and unpacked): $ms ms"
destroy "$name" REDIS_URL
times=()
for _ in $(seq 1 "$CREATES"); do
    read -r ms name < <(create mini redis)
    times+=("$ms")
    destroy "$name" REDIS_URL
done
redis_ms=$(printf '%s\n' "${times[@]}" | median)
echo "create to available (redis mini): ${times[*]} ms; median $redis_ms ms"

read -r ms name < <(create standard)
url=$(api GET /v1/apps/bench/config | field '["DATABASE_URL"]')
echo "add-on $name (standard) available in $ms ms"

# The host's cluster: initdb defaults as the add-on's (start script: listen, port, scram).
mkdir -p "$work/pg" "$work/pgrun"
chown postgres:postgres "$work/pg" "$work/pgrun"
pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
(umask 077; echo "$pw" >"$work/pgpw"); chown postgres "$work/pgpw"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg -U bench --pwfile=$work/pgpw --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8" >/dev/null
cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $host_port
password_encryption = 'scram-sha-256'
unix_socket_directories = '$work/pgrun'
logging_collector = off
CONF
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -l $work/pgrun/pg.log -w start" >/dev/null
host_url="postgres://bench:$pw@127.0.0.1:$host_port/postgres"

echo "settings: paas $(psql "$url" -Atc 'SHOW shared_buffers') / host $(psql "$host_url" -Atc 'SHOW shared_buffers') shared_buffers"
pgbench -q -i -s "$SCALE" "$url" >/dev/null 2>&1
pgbench -q -i -s "$SCALE" "$host_url" >/dev/null 2>&1
tps() { pgbench -n -S -c "$CLIENTS" -j 2 -T "$SECS" "$1" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
paas_tps=(); host_tps=()
for r in $(seq 1 "$ROUNDS"); do
    paas_tps+=("$(tps "$url")")
    host_tps+=("$(tps "$host_url")")
    echo "round $r: paas ${paas_tps[-1]} tps, host ${host_tps[-1]} tps"
done
p=$(printf '%s\n' "${paas_tps[@]}" | median)
h=$(printf '%s\n' "${host_tps[@]}" | median)
create_s=$(awk -v m="$create_ms" 'BEGIN { printf "%.1f", m / 1000 }')
redis_s=$(awk -v m="$redis_ms" 'BEGIN { printf "%.1f", m / 1000 }')
ratio=$(awk -v p="$p" -v h="$h" 'BEGIN { printf "%.2f", p / h }')
echo "addons: create postgresql ${create_s} s, redis ${redis_s} s, pgbench paas ${p} tps, host ${h} tps, ratio ${ratio}"
