#!/bin/bash
# Runs the OCI runtime-tools validation suite (opencontainers/runtime-tools, validation/)
# against paas-runtime and reports how many of its test programs and TAP assertions pass.
#
#   runtime/runtime-tools.sh [SOURCE_DIR]
#   RT_RUNTIME=crun runtime/runtime-tools.sh [SOURCE_DIR]   (or runc: the same suite
#   against Debian's crun or runc, to tell the suite's or the host's failures from ours)
#
# SOURCE_DIR: a runtime-tools checkout (default $RUNTIME_TOOLS_SRC, else a shallow clone
# of the upstream repository, which needs network access to GitHub). The suite is Go:
# Debian 12's golang-go (1.19) builds runtime-tools up to commit 260e151 (March 2025,
# `go 1.19` in go.mod); later commits need Go >= 1.21 (the `slices` package). Needs root.
# Last line: `runtime-tools: <programs passed>/<programs> programs, <ok>/<assertions> assertions`
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "runtime-tools.sh needs root (it runs containers)" >&2; exit 1; }
src=${1:-${RUNTIME_TOOLS_SRC:-}}
work=$(mktemp -d /tmp/paas-runtime-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! command -v go >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
if [ -z "$src" ]; then
    git clone -q https://github.com/opencontainers/runtime-tools "$work/src-git"
    git -C "$work/src-git" checkout -q 260e151b8552afa2678ef6d41820ea0f31cd8be1
    src=$work/src-git
fi
mkdir -p "$work/rt"
if [ -d "$src/.git" ] || git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$src" archive HEAD | tar -x -C "$work/rt"
else
    cp -a "$src/." "$work/rt/"
fi

runtime=${RT_RUNTIME:-paas}
# The suite calls $RUNTIME with runc's arguments; this wrapper adds our own state dir (and
# for paas its cgroup parent) so nothing collides with other users of the machine.
case "$runtime" in
    paas)
        cargo build --release -q -p paas-runtime
        cat >"$work/paas-runtime" <<WRAP
#!/bin/sh
exec "$PWD/target/release/paas-runtime" --root "$work/state" --cgroup-parent "rtt-$$" "\$@"
WRAP
        ;;
    crun|runc)
        bin=$(command -v "$runtime") || { echo "$runtime is not installed (deploy/install-deps)" >&2; exit 1; }
        cat >"$work/paas-runtime" <<WRAP
#!/bin/sh
exec "$bin" --root "$work/state" "\$@"
WRAP
        # crun 1.8 refuses a hybrid cgroup host whose cgroup2 mount offers a controller:
        # as bench/runtime.sh, run in a private mount namespace where an empty tmpfs hides
        # that mount (the v1 hierarchies stay; the host's mounts are not touched).
        unified=/sys/fs/cgroup/unified
        if [ "$runtime" = crun ] && [ -z "${PAAS_RTT_NS:-}" ] && grep -q . "$unified/cgroup.controllers" 2>/dev/null; then
            rm -rf "$work"
            exec unshare --mount --propagation private env PAAS_RTT_NS=1 "$0" "$@"
        fi
        if [ -n "${PAAS_RTT_NS:-}" ]; then
            umount "$unified"
            mount -t tmpfs -o size=64m paas-rtt "$unified"
        fi
        ;;
    *) echo "RT_RUNTIME must be paas, crun or runc" >&2; exit 2 ;;
esac
chmod +x "$work/paas-runtime"

cd "$work/rt"
export GOFLAGS=-mod=vendor GOPROXY=off GOCACHE=$work/gocache
go build -tags "netgo osusergo" -ldflags "-extldflags -static" -o runtimetest ./cmd/runtimetest
tests=$(find ./validation/ -name '*.go' | grep -v util | sort)
for f in $tests; do
    go build -o "${f%.go}.t" "$f"
done

programs=0 passed=0 ok=0 total=0
for f in $tests; do
    t=${f%.go}.t
    name=$(basename "$t" .t)
    out=$(RUNTIME=$work/paas-runtime timeout 120 "$t" 2>&1) && rc=0 || rc=$?
    n_ok=$(grep -cE '^ok ' <<<"$out" || true)
    n_bad=$(grep -cE '^not ok ' <<<"$out" || true)
    programs=$((programs + 1))
    ok=$((ok + n_ok))
    total=$((total + n_ok + n_bad))
    # Some programs (hooks, poststart, prestart, …) plan no assertion and print a YAML
    # diagnostic with an "error" only when they fail: "1..0" and no error is a pass.
    n_err=$(grep -cE '"error"|^ *error:' <<<"$out" || true)
    # The `*_fail` programs that want an error from `create` (process_capabilities_fail,
    # process_rlimits_fail) print no TAP at all when they get it: they only print the
    # runtime's message and exit 0 (util.Fatal, their failure, always exits non-zero).
    no_tap=0
    grep -qE '^(ok|not ok|1\.\.)' <<<"$out" || no_tap=1
    if [ "$rc" -eq 0 ] && [ "$n_bad" -eq 0 ] && { [ "$n_ok" -gt 0 ] || [ "$no_tap" -eq 1 ] || { [ "$n_err" -eq 0 ] && grep -q '^1\.\.0' <<<"$out"; }; }; then
        passed=$((passed + 1))
        echo "PASS $name ($n_ok ok)"
    else
        echo "FAIL $name (exit $rc, $n_ok ok, $n_bad not ok)"
        grep -E '^not ok ' <<<"$out" | head -5 | sed 's/^/     /' || true
        [ "$n_ok$n_bad" = "00" ] && tail -3 <<<"$out" | sed 's/^/     /'
    fi
done
"$work/paas-runtime" list >/dev/null 2>&1 || true
for c in $(ls "$work/state" 2>/dev/null); do "$work/paas-runtime" delete --force "$c" >/dev/null 2>&1 || true; done
for d in /sys/fs/cgroup/*/"rtt-$$" /sys/fs/cgroup/"rtt-$$"; do
    [ -d "$d" ] || continue
    # Depth first: cgroupsPath puts containers below the parent, several levels deep.
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
echo "runtime-tools ($runtime): $passed/$programs programs, $ok/$total assertions"
