# Sourced by the bench scripts: a throw-away standalone paas of their own.
#
#   paas_start [controller flags…]
#       Starts `$bin/paas-controller --standalone --router-in-process` with the data dir
#       `$work/data`, the API on 127.0.0.1:$api_port and the router on 127.0.0.1:$router_port,
#       plus the flags given (--prefix, --subnet, --port-range, --stacks-dir, …), logging to
#       `$work/controller.log`. Waits up to 60 s for its API and sets `$token` (admin).
#       On failure prints the log's tail and returns 1.
#   paas_stop
#       Stops it (SIGTERM, then waits) and, when `$prefix` is set, removes what its local
#       agent made (`paas-agent cleanup`). Safe to call twice or before paas_start.
#
# Needs: $bin (the binaries' folder), $work, $api_port, $router_port; $prefix for the agent.

paas_start() {
    "$bin/paas-controller" --standalone --router-in-process --data-dir "$work/data" \
        --listen "127.0.0.1:$api_port" --router-listen "127.0.0.1:$router_port" "$@" \
        >"$work/controller.log" 2>&1 &
    paas_pid=$!
    local _
    for _ in $(seq 1 600); do
        if [ -s "$work/data/admin-token" ] && curl -sf -o /dev/null \
            -H "Authorization: Bearer $(cat "$work/data/admin-token")" \
            "http://127.0.0.1:$api_port/v1/apps"; then
            token=$(cat "$work/data/admin-token")
            return 0
        fi
        kill -0 "$paas_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "the bench's controller did not answer on 127.0.0.1:$api_port within 60 s:" >&2
    tail -30 "$work/controller.log" >&2
    return 1
}

paas_stop() {
    [ -n "${paas_pid:-}" ] || return 0
    kill "$paas_pid" 2>/dev/null || true
    wait "$paas_pid" 2>/dev/null || true
    paas_pid=
    if [ -n "${prefix:-}" ]; then
        "$bin/paas-agent" cleanup --state-dir "$work/data/agent" --prefix "$prefix" >/dev/null 2>&1 || true
    fi
}
