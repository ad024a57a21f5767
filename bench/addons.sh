#!/bin/bash
# bench/run addons: a PostgreSQL add-on against the same PostgreSQL 15 on the host.
#
#  (a) create-to-available: `POST /v1/apps/APP/addons` (plan mini, the default) until the
#      add-on's state is `available`, with the service image already in the registry and on
#      the node (one warm-up create and destroy first); median of $CREATES (default 3), for
#      PostgreSQL and for Redis.
#  (b) `pgbench -S` (select-only; $CLIENTS clients, default 8, 2 threads, $SECS s per round,
#      default 10, scale $SCALE, default 10) from an app job against an add-on of plan
#      `standard` (2 GiB, 2 cores: the machine's) and against a PostgreSQL 15 cluster the
#      bench starts on the host in a temp dir with the add-on's settings (initdb defaults:
#      shared_buffers 128MB, max_connections 100; scram-sha-256 over TCP), interleaved
#      rounds ($ROUNDS, default 3), medians. "From an app job": the host's pgbench joins
#      the cgroups of a web job of the add-on's app and runs in its network namespace
#      (`nsenter -n`), so it competes for the CPU as the app would and its queries take the
#      app's path: to the add-on by the app's DATABASE_URL (the node's
#      address and the add-on's host port: DNAT, the walls, the bridge and the add-on job's
#      veth), to the host's cluster by the bridge's address. The headline ratio is
#      add-on / host from the app job. Also printed, for where the time goes: both from the
#      host (to the add-on by its host port, to the host's cluster over loopback) and
#      inside the add-on job's own network namespace over its loopback (the database's
#      cost in a job, with no network in between), and from the app job to the add-on
#      job's own address (bridged: no DNAT, no hairpin through the host).
#
# Runs a throw-away standalone paas (own data dir, ports, prefix, uid range) and removes it
# and the host cluster at the end. Binaries: a release build, or $BIN (e.g. target/debug).
# Service images: deploy/build-stack postgresql into $STACKS (default target/bench-stacks;
# nothing is rebuilt when they are up to date).
# Last line: `addons: create postgresql <s> s, redis <s> s, pgbench paas <tps> tps, host <tps> tps,
# ratio <paas/host>` (pgbench from the app job)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/paas.sh
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

cleanup() {
    [ ! -d "$work/pg" ] || su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m immediate stop" >/dev/null 2>&1 || true
    paas_stop
    rm -rf "$work"
}
trap cleanup EXIT

bin=$BIN
paas_start --stacks-dir "$work/stacks" --prefix "$prefix" --subnet 10.202.9.0/24 --port-range 31100-31199
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

# An app job of the add-on's app: pgbench runs in its network namespace.
src=$work/src
mkdir -p "$src"
git -C "$src" init -q -b main
printf '%s\n' "web: sh -c 'mkdir -p /tmp/$prefix-client && exec python3 -m http.server \$PORT --directory /tmp/$prefix-client'" >"$src/Procfile"
git -C "$src" -c user.name=b -c user.email=b@paas.invalid add -A
git -C "$src" -c user.name=b -c user.email=b@paas.invalid commit -qm client
git -C "$src" -c credential.helper= push -q "http://u:$token@127.0.0.1:$api_port/git/bench.git" main >"$work/push.log" 2>&1 \
    || { echo "push of the client app failed:" >&2; cat "$work/push.log" >&2; tail -30 "$work/controller.log" >&2; exit 1; }
app_pid=
for _ in $(seq 1 600); do
    app_pid=$(pgrep -f "http.server [0-9]+ --directory /tmp/$prefix-client" | head -1 || true)
    [ -n "$app_pid" ] && break
    sleep 0.1
done
[ -n "$app_pid" ] || { echo "the client app's web job did not start within 60 s" >&2; tail -30 "$work/controller.log" >&2; exit 1; }
in_app() { nsenter -t "$app_pid" -n "$@"; }
# The app job's cgroup.procs files (every v1 hierarchy and the cgroup2 one): pgbench joins
# them, so it competes for the CPU as the app's own process would (one job against the
# add-on's job, both under the agent's cgroup parent), within the app's size.
app_cgroups=()
while IFS=: read -r _ ctrl path; do
    if [ -z "$ctrl" ]; then
        for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
            [ -f "$root$path/cgroup.procs" ] && { app_cgroups+=("$root$path/cgroup.procs"); break; }
        done
    else
        ctrl=${ctrl#name=}
        [ -f "/sys/fs/cgroup/$ctrl$path/cgroup.procs" ] && app_cgroups+=("/sys/fs/cgroup/$ctrl$path/cgroup.procs")
    fi
done <"/proc/$app_pid/cgroup"
as_app() { # CMD...: run in the app job's network namespace and cgroups
    (for f in "${app_cgroups[@]}"; do echo "$BASHPID" >"$f" 2>/dev/null || true; done
     exec nsenter -t "$app_pid" -n "$@")
}

# The add-on's own job (its postgres) for the in-job loopback line.
addon_pid=$(pgrep -f "postgres .*-D /data" | while read -r p; do
    [ "$(readlink /proc/$p/ns/net)" != "$(readlink /proc/self/ns/net)" ] && { echo "$p"; break; }; done || true)

# The host's cluster: initdb defaults as the add-on's (start script: listen, port, scram),
# listening on loopback and on the bridge's address (the app job's way to the host).
gateway=$(ip -4 -o addr show dev "${prefix}0" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
[ -n "$gateway" ] || gateway=$(nsenter -t "$app_pid" -n ip route | awk '/^default/ { print $3; exit }')
[ -n "$gateway" ] || { echo "no address of the bridge ${prefix}0 to reach the host's cluster from the app job" >&2; exit 1; }
mkdir -p "$work/pg" "$work/pgrun"
chown postgres:postgres "$work/pg" "$work/pgrun"
pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
(umask 077; echo "$pw" >"$work/pgpw"); chown postgres "$work/pgpw"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg -U bench --pwfile=$work/pgpw --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8" >/dev/null
cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1,$gateway'
port = $host_port
password_encryption = 'scram-sha-256'
unix_socket_directories = '$work/pgrun'
logging_collector = off
CONF
echo "host all all $gateway/24 scram-sha-256" >>"$work/pg/pg_hba.conf"
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -l $work/pgrun/pg.log -w start" >/dev/null
host_url="postgres://bench:$pw@127.0.0.1:$host_port/postgres"
host_from_app="postgres://bench:$pw@$gateway:$host_port/postgres"
# The add-on as its own job sees it: its loopback, the port postgres listens on.
addon_port=$(nsenter -t "${addon_pid:-$app_pid}" -n ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n]; exit }')
addon_ip=$(nsenter -t "${addon_pid:-$app_pid}" -n ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
# The add-on's job address as the app job could reach it on this node (bridged: no DNAT,
# no routing through the host), for where the time goes.
direct_url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p._replace(netloc="%s:%s@%s:%s" % (p.username, p.password, sys.argv[2], sys.argv[3])).geturl())' "$url" "${addon_ip:-127.0.0.1}" 5432)
local_url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p._replace(netloc="%s:%s@127.0.0.1:%s" % (p.username, p.password, sys.argv[2])).geturl())' "$url" "${addon_port:-5432}")

echo "settings: paas $(psql "$url" -Atc 'SHOW shared_buffers') / host $(psql "$host_url" -Atc 'SHOW shared_buffers') shared_buffers"
in_app psql "$url" -Atc 'select 1' >/dev/null || { echo "the app job cannot reach the add-on at its DATABASE_URL" >&2; exit 1; }
in_app psql "$host_from_app" -Atc 'select 1' >/dev/null || { echo "the app job cannot reach the host's cluster at $gateway:$host_port" >&2; exit 1; }
pgbench -q -i -s "$SCALE" "$url" >/dev/null 2>&1
pgbench -q -i -s "$SCALE" "$host_url" >/dev/null 2>&1
tps() { # [nsenter args...] URL
    local url=${*: -1}
    "${@:1:$#-1}" pgbench -n -S -c "$CLIENTS" -j 2 -T "$SECS" "$url" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
paas_tps=(); host_tps=(); paas_h=(); host_h=(); local_tps=(); direct_tps=()
for r in $(seq 1 "$ROUNDS"); do
    paas_tps+=("$(tps as_app "$url")")
    host_tps+=("$(tps as_app "$host_from_app")")
    paas_h+=("$(tps "$url")")
    host_h+=("$(tps "$host_url")")
    if [ -n "$addon_pid" ]; then
        local_tps+=("$(tps nsenter -t "$addon_pid" -n "$local_url")")
        direct_tps+=("$(tps as_app "$direct_url")")
    fi
    echo "round $r: from the app job: paas ${paas_tps[-1]} tps, host ${host_tps[-1]} tps; from the host: paas ${paas_h[-1]}, host ${host_h[-1]}; inside the add-on's job: ${local_tps[-1]:-n/a}; app job to the add-on's job address: ${direct_tps[-1]:-n/a}"
done
p=$(printf '%s\n' "${paas_tps[@]}" | median)
h=$(printf '%s\n' "${host_tps[@]}" | median)
ph=$(printf '%s\n' "${paas_h[@]}" | median)
hh=$(printf '%s\n' "${host_h[@]}" | median)
echo "from the host: paas $ph tps, host $hh tps, ratio $(awk -v p="$ph" -v h="$hh" 'BEGIN { printf "%.2f", p / h }')"
if [ ${#local_tps[@]} -gt 0 ]; then
    echo "inside the add-on's job over its loopback: $(printf '%s\n' "${local_tps[@]}" | median) tps"
    echo "from the app job to the add-on's job address (bridged, no DNAT): $(printf '%s\n' "${direct_tps[@]}" | median) tps"
fi
if [ -n "$addon_pid" ]; then
    # The add-on job's CPU settings as the kernel holds them (cgroup v1 cpu or v2), and how
    # often CFS bandwidth control throttled it during the rounds.
    cg=$(awk -F: '$2 == "cpu" { print "/sys/fs/cgroup/cpu" $3 } $1 == "0" && $2 == "" { v2 = "/sys/fs/cgroup" $3 } END { if (v2 != "") print v2 }' "/proc/$addon_pid/cgroup" | head -1)
    if [ -f "$cg/cpu.cfs_quota_us" ]; then
        echo "add-on job's cpu cgroup: cfs_quota_us $(cat "$cg/cpu.cfs_quota_us"), shares $(cat "$cg/cpu.shares"), $(grep nr_throttled "$cg/cpu.stat")"
    elif [ -f "$cg/cpu.max" ]; then
        echo "add-on job's cpu cgroup: cpu.max $(cat "$cg/cpu.max"), weight $(cat "$cg/cpu.weight"), $(grep nr_throttled "$cg/cpu.stat")"
    fi
fi
# Where the rest goes ($VARIANTS, e.g. "base rootcg nobrnf notrack"; empty: skipped): more
# interleaved rounds ($VROUNDS, default 8) from the app job to the add-on and to the host's
# cluster, each variant set on the live jobs before its measurement and undone after:
#   base     as deployed
#   rootcg   the add-on's postgres processes in the root cpu cgroup (no group of its own)
#   parentcg ... in the agent's <prefix> cpu cgroup (one level up, beside the app's job)
#   flatcg   ... in a new cpu cgroup at depth 1 with the job's cpu.shares
#   nobrnf   net.bridge.bridge-nf-call-iptables=0 (bridged frames skip the ip hooks)
#   notrack  no conntrack for packets between two jobs of the subnet (an nft raw rule)
#   nobrnf+rootcg  both
# The sysctl is put back to what it was, the table and the cgroup removed, at exit too.
if [ -n "${VARIANTS:-}" ] && [ -n "$addon_pid" ]; then
    vnet=$(ip -4 -o addr show dev "${prefix}0" | awk '{ print $4; exit }')
    cpu_line=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print; exit }' "/proc/$addon_pid/cgroup")
    cpu_root=/sys/fs/cgroup/$(echo "$cpu_line" | cut -d: -f2)
    cpu_job=$cpu_root$(echo "$cpu_line" | cut -d: -f3)
    brnf_was=$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo)
    move_pg() { # DIR: the postmaster and its children
        local t
        for t in $(ls "/proc/$addon_pid/task") $(pgrep -P "$addon_pid"); do
            echo "$t" >"$1/tasks" 2>/dev/null || true
        done
    }
    undo_variant() {
        [ -z "$brnf_was" ] || sysctl -qw net.bridge.bridge-nf-call-iptables="$brnf_was"
        nft delete table ip "${prefix}x" 2>/dev/null || true
        move_pg "$cpu_job"
        rmdir "$cpu_root/${prefix}-flat" 2>/dev/null || true
    }
    trap 'undo_variant; cleanup' EXIT
    set_variant() {
        undo_variant
        case $1 in
        base) ;;
        rootcg) move_pg "$cpu_root" ;;
        parentcg) move_pg "$(dirname "$cpu_job")" ;;
        flatcg)
            mkdir -p "$cpu_root/${prefix}-flat"
            cat "$cpu_job/cpu.shares" >"$cpu_root/${prefix}-flat/cpu.shares"
            move_pg "$cpu_root/${prefix}-flat" ;;
        nobrnf) sysctl -qw net.bridge.bridge-nf-call-iptables=0 ;;
        nobrnf+rootcg) sysctl -qw net.bridge.bridge-nf-call-iptables=0; move_pg "$cpu_root" ;;
        notrack)
            nft -f - <<NFT
table ip ${prefix}x {
    chain raw {
        type filter hook prerouting priority raw;
        ip saddr $vnet ip daddr $vnet ip daddr != $gateway notrack;
    }
}
NFT
            ;;
        *) echo "unknown variant $1 (base rootcg parentcg flatcg nobrnf notrack nobrnf+rootcg)" >&2; exit 1 ;;
        esac
    }
    declare -A v_paas v_host
    for r in $(seq 1 "${VROUNDS:-8}"); do
        for v in $VARIANTS; do
            set_variant "$v"
            a=$(tps as_app "$url"); b=$(tps as_app "$host_from_app")
            v_paas[$v]+="$a "; v_host[$v]+="$b "
            echo "variant round $r $v: from the app job: paas $a tps, host $b tps"
        done
    done
    undo_variant
    for v in $VARIANTS; do
        vp=$(printf '%s\n' ${v_paas[$v]} | median); vh=$(printf '%s\n' ${v_host[$v]} | median)
        echo "variant $v: paas $vp tps, host $vh tps (medians), ratio $(awk -v p="$vp" -v h="$vh" 'BEGIN { printf "%.2f", p / h }')"
    done
fi
create_s=$(awk -v m="$create_ms" 'BEGIN { printf "%.1f", m / 1000 }')
redis_s=$(awk -v m="$redis_ms" 'BEGIN { printf "%.1f", m / 1000 }')
ratio=$(awk -v p="$p" -v h="$h" 'BEGIN { printf "%.2f", p / h }')
echo "addons: create postgresql ${create_s} s, redis ${redis_s} s, pgbench paas ${p} tps, host ${h} tps, ratio ${ratio}"
