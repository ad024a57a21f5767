#!/bin/bash
# bench/run router: the paas router against nginx, in front of the same fast backend, with
# the same load generator (controller/examples/router_bench.rs: a fixed number of keep-alive
# HTTP/1.1 connections for a fixed time). Measures direct to the backend, through nginx
# (upstream keepalive, X-Forwarded-* and X-Request-Id like the paas router) and through the
# paas router (release build). Everything runs on 127.0.0.1; no root needed (nginx must be
# installed: deploy/install-deps).
#   CONNS (50) connections, SECS (5) seconds per measurement after a 1 s warm-up, ROUNDS
#   (3) rounds of nginx then paas (interleaved, so a noisy machine hits both); the last
#   line has the medians. Direct to the backend is measured before and after (stderr).
# Then the same with wrk as a second load generator (WRK_THREADS (2) threads, WRK_CONNS
# (64) connections, as in issue 16), when wrk is installed (deploy/install-deps).
# Last lines: `router: paas <req/s> nginx <req/s> ratio <paas/nginx> p99 paas <ms> nginx <ms>`
#             `router (wrk): paas <req/s> nginx <req/s> ratio <paas/nginx> p99 paas <ms> nginx <ms>`
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${CONNS:-50}
secs=${SECS:-5}
rounds=${ROUNDS:-3}

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    [ "$(id -u)" -eq 0 ] || { echo "nginx is missing: run deploy/install-deps as root" >&2; exit 1; }
    echo "installing nginx"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q -p paas-router --example router_bench
bin=target/release/examples/router_bench
work=$(mktemp -d /tmp/paas-bench-router.XXXXXX)
base=$(( 19000 + ($$ % 300) * 3 ))
backend_port=$base nginx_port=$(( base + 1 )) router_port=$(( base + 2 ))
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" backend 127.0.0.1:$backend_port & pids+=($!)
"$bin" router 127.0.0.1:$router_port 127.0.0.1:$backend_port & pids+=($!)
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream backend {
        server 127.0.0.1:$backend_port;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        server_name bench.localhost;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id;
        }
    }
}
NGINX
"$nginx_bin" -c "$work/nginx.conf" -p "$work/nginx" & pids+=($!)

for port in $backend_port $nginx_port $router_port; do
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$port/" && break
        sleep 0.1
    done
    curl -sf -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$port/" \
        || { echo "nothing answers on port $port" >&2; cat "$work/nginx-error.log" >&2 || true; exit 1; }
done

# measure NAME PORT → "req/s p50 p99 errors" (after a 1 s warm-up)
measure() {
    "$bin" load 127.0.0.1:$2 bench.localhost "$conns" 1 >/dev/null
    local r
    r=$("$bin" load 127.0.0.1:$2 bench.localhost "$conns" "$secs")
    read -r rps p50 p99 errors <<<"$r"
    printf '%-7s %9s req/s  p50 %7s ms  p99 %7s ms  errors %s\n' "$1" "$rps" "$p50" "$p99" "$errors" >&2
    echo "$r"
}
# The median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "$conns keep-alive connections, $rounds rounds of $secs s each (nginx and paas interleaved), $(nproc) CPUs" >&2
measure direct $backend_port >/dev/null
nginx_rps=() nginx_p99=() paas_rps=() paas_p99=() errors=0
for _ in $(seq 1 "$rounds"); do
    read -r rps _ p99 err <<<"$(measure nginx $nginx_port)"
    nginx_rps+=("$rps") nginx_p99+=("$p99") errors=$(( errors + err ))
    read -r rps _ p99 err <<<"$(measure paas $router_port)"
    paas_rps+=("$rps") paas_p99+=("$p99") errors=$(( errors + err ))
done
measure direct $backend_port >/dev/null
[ "$errors" = 0 ] || echo "warning: $errors failed requests during the measurements" >&2
n_rps=$(median "${nginx_rps[@]}") n_p99=$(median "${nginx_p99[@]}")
p_rps=$(median "${paas_rps[@]}") p_p99=$(median "${paas_p99[@]}")
ratio=$(awk -v a="$p_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "router: paas $p_rps nginx $n_rps ratio $ratio p99 paas $p_p99 nginx $n_p99"

# wrk: "req/s p99(ms)" for PORT (after a 1 s warm-up).
wrk_measure() {
    wrk -t"${WRK_THREADS:-2}" -c"${WRK_CONNS:-64}" -d1s -H 'Host: bench.localhost' \
        "http://127.0.0.1:$2/" >/dev/null
    local out rps p99
    out=$(wrk -t"${WRK_THREADS:-2}" -c"${WRK_CONNS:-64}" -d"${secs}s" --latency \
        -H 'Host: bench.localhost' "http://127.0.0.1:$2/")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    # wrk prints 99% as e.g. 1.23ms, 850.00us or 1.02s: in ms.
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v }' <<<"$out")
    printf '%-7s %9s req/s  p99 %7s ms  (wrk)\n' "$1" "$rps" "$p99" >&2
    echo "$rps $p99"
}
if command -v wrk >/dev/null 2>&1; then
    nginx_rps=() nginx_p99=() paas_rps=() paas_p99=()
    for _ in $(seq 1 "$rounds"); do
        read -r rps p99 <<<"$(wrk_measure nginx $nginx_port)"
        nginx_rps+=("$rps") nginx_p99+=("$p99")
        read -r rps p99 <<<"$(wrk_measure paas $router_port)"
        paas_rps+=("$rps") paas_p99+=("$p99")
    done
    n_rps=$(median "${nginx_rps[@]}") n_p99=$(median "${nginx_p99[@]}")
    p_rps=$(median "${paas_rps[@]}") p_p99=$(median "${paas_p99[@]}")
    ratio=$(awk -v a="$p_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    echo "router (wrk): paas $p_rps nginx $n_rps ratio $ratio p99 paas $p_p99 nginx $n_p99"
else
    echo "wrk is not installed (deploy/install-deps): no second load generator" >&2
fi
