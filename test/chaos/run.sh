#!/usr/bin/env bash
# Runs the chaos TAP tests (test/t/chaos_*.pl) on their own.
#
#   bash test/chaos/run.sh [--short|--long] [test-name ...]
#
#   --short  the sizes used inside `make test` (default; a few minutes)
#   --long   CHAOS_MODE=long: 10,000-job drains, 200 runner kills, 40 server
#            faults, bigger fuzz and xmin runs, a 4-minute soak, 2 minutes
#            of a stuck listener, 16 restarts under load (tens of minutes);
#            the figures for docs/reliability.md come from this mode
#
# Test names select files, e.g. `run.sh --long runner_kill pg_crash`.
# Each test's figures are printed as TAP diagnostics ("# chaos_...:" lines)
# and collected in $CHAOS_OUT (default /tmp/jobq-chaos.<mode>.<time>/figures.txt)
# together with every checker report (check.json) and server/runner log.
# CHAOS_SEED=n reproduces a fuzz run. Expects the extension and runner built
# and installed (make && make install). As root, tests run as `postgres`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=short
NAMES=()
for arg in "$@"; do
    case $arg in
        --short) MODE=short ;;
        --long) MODE=long ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) NAMES+=("$arg") ;;
    esac
done

PGXS_DIR=$(dirname "$(dirname "$(pg_config --pgxs)")")   # .../lib/pgxs/src
PG_BIN=$(pg_config --bindir)
OUT=${CHAOS_OUT:-/tmp/jobq-chaos.$MODE.$(date +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
[[ $(id -u) -eq 0 ]] && chown postgres: "$OUT"
RUNNER_BIN=${JOBQ_RUNNER:-$ROOT/runner/build/jobq-runner}
[[ -x $RUNNER_BIN ]] || { echo "run.sh: no runner at $RUNNER_BIN (make first)" >&2; exit 2; }

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

FILES=()
if ((${#NAMES[@]})); then
    for n in "${NAMES[@]}"; do FILES+=("$ROOT/test/t/chaos_${n#chaos_}"); done
    FILES=("${FILES[@]/%.pl/}"); FILES=("${FILES[@]/%/.pl}")
else
    FILES=("$ROOT"/test/t/chaos_*.pl)
fi

echo "chaos ($MODE): ${#FILES[@]} tests, output in $OUT"
FAILED=0
: >"$OUT/figures.txt"
for t in "${FILES[@]}"; do
    name=$(basename "$t" .pl)
    dir="$OUT/$name"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    start=$(date +%s)
    (cd "$dir" && as_pg env PATH="$PG_BIN:$PATH" TESTDIR="$dir" JOBQ_RUNNER="$RUNNER_BIN" JOBQ_SOURCE="$ROOT" \
        CHAOS_MODE="$MODE" ${CHAOS_SEED:+CHAOS_SEED=$CHAOS_SEED} PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
        prove -v -I "$PGXS_DIR/test/perl" -I "$ROOT/test/perl" "$t") >"$dir/prove.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    grep -E "^# ${name}:|^# finding" "$dir/prove.log" | tee -a "$OUT/figures.txt"
    if [[ $rc -eq 0 ]]; then
        echo "ok   $name (${secs}s)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $name (${secs}s): see $dir/prove.log"
        grep -E '^not ok|^#   ' "$dir/prove.log" | head -30
    fi
done
echo "chaos ($MODE): $((${#FILES[@]} - FAILED)) passed, $FAILED failed; figures in $OUT/figures.txt"
[[ $FAILED -eq 0 ]]
