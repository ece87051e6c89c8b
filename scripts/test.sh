#!/usr/bin/env bash
# Runs every jobq test suite and ends with one line "N passed, N failed".
#
#   bash scripts/test.sh             the whole suite on PostgreSQL 15, 17 and 18
#                                    (what CI runs), then their summed line
#   bash scripts/test.sh --pg 15     the whole suite on one major version
#
# For one major version N:
#   1. installs the Debian packages the project needs (scripts/install-deps.sh)
#   2. builds and installs the extension and jobq-runner
#   3. unit tests of extension/src/core (GoogleTest)
#   4. pg_regress (test/sql) and isolation specs (test/specs) against a
#      private temporary cluster with jobq preloaded
#   5. TAP tests (test/t, runner/tests/t), each starting its own clusters
#   6. runner unit tests (GoogleTest)
#   7. the Debian packages (test/packaging): built, installed and run in a
#      throwaway overlay of this system
# The server is the local one (pg_config on PATH) when it is major N;
# otherwise the suite runs inside a Debian root that ships N (made once and
# cached by scripts/pgroot.sh: 17 from trixie, 18 from sid; needs root), on a
# copy of this source tree, as that root's postgres user.
#
# Exits non-zero if anything failed. Long chaos and benchmark modes are not
# run here: see `make chaos` and `make bench`.
#
# For development: ONLY=REGEX runs only the pg_regress tests, isolation specs
# and TAP files whose path matches (the unit suites always run); PREFIX sets
# where `make install` puts jobq-runner (default /usr/local; host only).
set -uo pipefail

ALL_MAJORS=(15 17 18)
MAJORS=()
while (($#)); do
    case $1 in
        --pg) MAJORS+=("${2:?--pg needs a major version}"); shift 2 ;;
        --pg=*) MAJORS+=("${1#--pg=}"); shift ;;
        *) echo "usage: $0 [--pg 15|17|18]..." >&2; exit 2 ;;
    esac
done
((${#MAJORS[@]})) || MAJORS=("${ALL_MAJORS[@]}")

# Several majors: each one's whole run in turn, its closing line relabelled,
# then the sum.
if ((${#MAJORS[@]} > 1)); then
    cd "$(dirname "$0")/.." || exit 1
    total_passed=0 total_failed=0 summary=()
    # The roots that are not made yet are made in the background while the
    # first majors run (debootstrap waits on the network and the disk more
    # than on the CPU); `pgroot.sh build` in each major's run waits for its
    # own. A failed build shows in that major's run.
    if [[ $(id -u) -eq 0 ]]; then
        local_major=$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
        for major in "${MAJORS[@]}"; do
            [[ $major == "${local_major:-15}" ]] && continue
            [[ -f $(bash scripts/pgroot.sh path "$major" 2>/dev/null)/.jobq-root-done ]] && continue
            command -v debootstrap >/dev/null || JOBQ_PG_MAJOR=${local_major:-15} bash scripts/install-deps.sh
            echo "== making the PostgreSQL $major root in the background"
            bash scripts/pgroot.sh build "$major" >/dev/null 2>&1 &
        done
    fi
    for major in "${MAJORS[@]}"; do
        echo "==== PostgreSQL $major ===="
        start=$SECONDS
        log=$(mktemp /tmp/jobq-test-pg$major.XXXXXX.log)
        bash scripts/test.sh --pg "$major" 2>&1 | tee "$log" |
            sed -u "s/^\([0-9]* passed, [0-9]* failed\)$/== PostgreSQL $major: \1/"
        rc=${PIPESTATUS[0]}
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
        rm -f "$log"
        p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
        f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
        [[ -n $line ]] || { p=0; f=1; }
        [[ $rc -ne 0 && $f -eq 0 ]] && f=1  # it failed without counting a failure
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        summary+=("PostgreSQL $major: $p passed, $f failed ($((SECONDS - start)) s)")
    done
    wait
    echo "==== all versions"
    printf '== %s\n' "${summary[@]}"
    echo "== total time: $SECONDS s"
    echo "$total_passed passed, $total_failed failed"
    [[ $total_failed -eq 0 ]]
    exit $?
fi
MAJOR=${MAJORS[0]}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=cluster.sh
source scripts/cluster.sh

PASSED=0
FAILED=0
FAILURES=()

note_result() {  # suite passed failed
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    [[ $3 -gt 0 ]] && FAILURES+=("$1: $3 failed")
    echo "== $1: $2 passed, $3 failed"
}

finish() {
    echo "== total time: $SECONDS s"
    if ((${#FAILURES[@]})); then
        printf 'failures:\n'
        printf '  %s\n' "${FAILURES[@]}"
    fi
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit $?
}

# gtest_counts LOG -> "passed failed" from a GoogleTest summary.
gtest_counts() {
    local log=$1 p f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    echo "${p:-0} ${f:-0}"
}

# The local server's major (a fresh Debian bookworm machine gets 15).
LOCAL_MAJOR=$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
LOCAL_MAJOR=${LOCAL_MAJOR:-15}
JOBQ_PG_MAJOR=$LOCAL_MAJOR bash scripts/install-deps.sh || { echo "install-deps failed"; FAILED=1; finish; }

# Another major than the local server: the same command inside its root.
if [[ $MAJOR != "$LOCAL_MAJOR" ]]; then
    echo "== PostgreSQL $MAJOR in a Debian root (local server: $LOCAL_MAJOR)"
    [[ $(id -u) -eq 0 ]] || { echo "test.sh: PostgreSQL $MAJOR runs in a chroot: run as root"; FAILED=1; finish; }
    t0=$SECONDS
    bash scripts/pgroot.sh build "$MAJOR" || { note_result "root for PostgreSQL $MAJOR" 0 1; finish; }
    echo "== root ready ($((SECONDS - t0)) s): $(bash scripts/pgroot.sh path "$MAJOR")"
    # A copy of the tree, so this major's objects never mix with the host's.
    rootdir=$(bash scripts/pgroot.sh path "$MAJOR")
    src=$(bash scripts/pgroot.sh copy "$MAJOR" "$ROOT")
    bash scripts/pgroot.sh run "$MAJOR" env ${ONLY:+ONLY="$ONLY"} bash "$src/scripts/test.sh" --pg "$MAJOR"
    rc=$?
    rm -rf "${rootdir:?}$src"
    exit $rc
fi

echo "== build"
if ! { make -j2 >build.log 2>&1 && make install ${PREFIX:+PREFIX=$PREFIX} >>build.log 2>&1; }; then
    tail -40 build.log
    note_result build 0 1
    finish
fi

WORK=$(mktemp -d /tmp/jobq-test.XXXXXX)
chmod 755 "$WORK"
[[ $(id -u) -eq 0 ]] && chown postgres: "$WORK"
cleanup() { cluster_stop "$WORK/cluster" immediate; }
trap cleanup EXIT

# --- core unit tests --------------------------------------------------------
echo "== core unit tests"
mkdir -p test/unit/build
if g++ -std=c++17 -O1 -Wall -Wextra -Iextension/src test/unit/*_test.cpp extension/src/core/*.cpp \
    -lgtest -lgtest_main -lfmt -pthread -o test/unit/build/core-tests >"$WORK/unit-build.log" 2>&1; then
    test/unit/build/core-tests >"$WORK/unit.log" 2>&1
    read -r p f < <(gtest_counts "$WORK/unit.log")
    [[ $p -eq 0 && $f -eq 0 ]] && f=1
    grep -E '^\[  FAILED  \]' "$WORK/unit.log" | head -20
    note_result core-unit "$p" "$f"
else
    cat "$WORK/unit-build.log" | tail -30
    note_result core-unit 0 1
fi

# --- pg_regress and isolation against one private cluster --------------------
PORT=$(free_port)
CLUSTER="$WORK/cluster"
cluster_init "$CLUSTER" "$PORT" || { note_result cluster 0 1; finish; }
cluster_start "$CLUSTER" || { note_result cluster 0 1; finish; }
PGXS_DIR=$(dirname "$(dirname "$(dirname "$(pg_config --pgxs)")")")  # .../lib/pgxs

# regress_counts LOG -> "passed failed" from pg_regress output: up to 15
# "test x ... ok" / "... FAILED", from 16 on TAP-style "ok 1 - x" / "not ok 1 - x".
regress_counts() {
    local p f
    p=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$1")
    f=$(grep -cE '\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ ' "$1")
    echo "$p $f"
}
# regress_lines LOG: the per-test lines of either format.
regress_lines() { grep -E '\.\.\. |^(not )?ok [0-9]+ ' "$1"; }

# only_matching: keep the paths on stdin that match $ONLY (all when unset).
only_matching() { grep -E -- "${ONLY:-.}" || true; }

REGRESS_TESTS=$(ls test/sql/*.sql 2>/dev/null | only_matching | xargs -n1 basename 2>/dev/null | sed 's/\.sql$//')
if [[ -n $REGRESS_TESTS ]]; then
    echo "== pg_regress"
    as_pg "$PGXS_DIR/src/test/regress/pg_regress" --host="$CLUSTER" --port="$PORT" \
        --inputdir=test --outputdir="$WORK/regress" --dbname=jobq_regress --load-extension=jobq \
        $REGRESS_TESTS >"$WORK/regress.log" 2>&1
    rc=$?
    regress_lines "$WORK/regress.log"
    read -r p f < <(regress_counts "$WORK/regress.log")
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; tail -5 "$WORK/regress.log"; fi
    if [[ $f -gt 0 && -f "$WORK/regress/regression.diffs" ]]; then head -150 "$WORK/regress/regression.diffs"; fi
    note_result pg_regress "$p" "$f"
fi

SPECS=$(ls test/specs/*.spec 2>/dev/null | only_matching | xargs -n1 basename 2>/dev/null | sed 's/\.spec$//')
if [[ -n $SPECS ]]; then
    echo "== isolation"
    as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" --host="$CLUSTER" --port="$PORT" \
        --inputdir=test --outputdir="$WORK/isolation" --dbname=jobq_isolation \
        --load-extension=jobq $SPECS >"$WORK/isolation.log" 2>&1
    rc=$?
    regress_lines "$WORK/isolation.log"
    read -r p f < <(regress_counts "$WORK/isolation.log")
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; tail -5 "$WORK/isolation.log"; fi
    if [[ $f -gt 0 && -f "$WORK/isolation/regression.diffs" ]]; then head -150 "$WORK/isolation/regression.diffs"; fi
    note_result isolation "$p" "$f"
fi

if grep -E "terminated by signal|terminating any other active server processes" "$CLUSTER/server.log"; then
    note_result server-log 0 1
fi
cluster_stop "$CLUSTER"

# --- TAP ----------------------------------------------------------------------
TAP_FILES=$(ls test/t/*.pl runner/tests/t/*.pl 2>/dev/null | only_matching)
if [[ -n $TAP_FILES ]]; then
    echo "== TAP"
    RUNNER_BIN="$ROOT/runner/build/jobq-runner"
    for t in $TAP_FILES; do
        name=$t
        tdir="$WORK/tap/$(echo "$t" | tr / _)"
        mkdir -p "$tdir"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$tdir"
        t_start=$SECONDS
        (cd "$tdir" && as_pg env TESTDIR="$tdir" JOBQ_RUNNER="$RUNNER_BIN" JOBQ_SOURCE="$ROOT" \
            PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
            prove -v -I "$PGXS_DIR/src/test/perl" -I "$ROOT/test/perl" "$ROOT/$t") >"$tdir/prove.log" 2>&1
        rc=$?
        p=$(grep -cE '^ok ' "$tdir/prove.log")
        f=$(grep -cE '^not ok ' "$tdir/prove.log")
        if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
        if [[ $f -gt 0 ]]; then
            grep -E '^not ok|^#' "$tdir/prove.log" | head -40
            for log in "$tdir"/tmp_check/log/*.log; do
                [[ -f $log ]] && { echo "--- $log"; tail -30 "$log"; }
            done
        fi
        note_result "TAP $name ($((SECONDS - t_start)) s)" "$p" "$f"
    done
fi

# --- runner unit tests --------------------------------------------------------
if [[ -x runner/build/jobq-runner-tests ]]; then
    echo "== runner unit tests"
    runner/build/jobq-runner-tests >"$WORK/runner-unit.log" 2>&1
    read -r p f < <(gtest_counts "$WORK/runner-unit.log")
    [[ $p -eq 0 && $f -eq 0 ]] && f=1
    grep -E '^\[  FAILED  \]' "$WORK/runner-unit.log" | head -20
    note_result runner-unit "$p" "$f"
fi

# --- Debian packages (test/packaging, as root: installs in a throwaway root) ---
for t in $(ls test/packaging/*.sh 2>/dev/null | only_matching); do
    echo "== $t"
    t_start=$SECONDS
    log="$WORK/$(basename "$t").log"
    bash "$t" >"$log" 2>&1
    rc=$?
    grep -E '^(not )?ok |^# ' "$log"
    p=$(grep -cE '^ok ' "$log")
    f=$(grep -cE '^not ok ' "$log")
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; tail -20 "$log"; fi
    note_result "packaging $t ($((SECONDS - t_start)) s)" "$p" "$f"
done

finish
