#!/bin/sh
# Bounded fuzzing of the parsers that take hostile input, with proptest (see
# docs/security.md, "Fuzzing"): every property test below runs with PROPTEST_CASES cases
# (default 20000) and each test binary gets at most FUZZ_SECONDS seconds (default 300).
# A failing case prints its minimal input and is saved under proptest-regressions/ next to
# the test (replayed by every later `cargo test`): commit that file, and turn the input into
# a named regression test beside the property.
#
#   tests/fuzz.sh                      # everything, defaults
#   PROPTEST_CASES=2000 FUZZ_SECONDS=60 tests/fuzz.sh names procfile
#
# Targets: names (app names, config keys), procfile (Procfile, release.yml), appjson
# (app.json with comments, cron schedules), hostile
# (domains, certificate PEM, API JSON bodies), unpack (layer and input tar entries), git
# (receive-pack commands, hook ref lines, git request paths), registry (Content-Range,
# Range, token scopes, challenges), router (backend response framing: the fast path and a
# real router), session (the dashboard's session cookie).
# Exit status: 0 when every target passed or ran out of time without a failure, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
CASES=${PROPTEST_CASES:-20000}
SECONDS_EACH=${FUZZ_SECONDS:-300}
ALL="names procfile appjson hostile unpack git registry router session"
TARGETS=${*:-$ALL}

run() { # name, cargo test arguments...
    name=$1
    shift
    echo "== $name: $CASES cases, at most ${SECONDS_EACH}s"
    # Build first, so the time limit applies to the cases, not the compiler.
    cargo test --quiet "$@" --no-run >/dev/null 2>&1 || { echo "$name: build failed"; cargo test "$@" --no-run; return 1; }
    PROPTEST_CASES=$CASES timeout --kill-after=10 "$SECONDS_EACH" cargo test --quiet "$@"
    rc=$?
    if [ $rc -eq 124 ]; then
        echo "$name: time limit reached without a failure"
        return 0
    fi
    return $rc
}

failed=0
for t in $TARGETS; do
    case $t in
    names) run names -p paas-api --test names_prop || failed=1 ;;
    procfile) run procfile -p paas-controller --test hostile_procfile || failed=1 ;;
    appjson) run appjson -p paas-controller --test appjson_prop || failed=1 ;;
    hostile) run hostile -p paas-controller --lib hostile_prop || failed=1 ;;
    unpack) run unpack -p paas-node-agent --test unpack_prop || failed=1 ;;
    git) run git -p paas-controller --lib git::prop_tests || failed=1 ;;
    registry) run registry -p paas-registry --test prop || failed=1 ;;
    router)
        run router-raw -p paas-controller --lib router::raw::prop_tests || failed=1
        run router -p paas-controller --test router_prop || failed=1
        ;;
    session) run session -p paas-web-ui --test session_prop || failed=1 ;;
    *) echo "unknown target $t ($ALL)"; failed=1 ;;
    esac
done
[ $failed -eq 0 ] && echo "fuzz: no failures" || echo "fuzz: FAILURES above"
exit $failed
