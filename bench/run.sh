#!/usr/bin/env bash
# make bench: the workloads of BENCHMARKS.md (W1-W7), each beside the
# raw-Postgres ceiling measured in the same run on the same private cluster.
#
#   bash bench/run.sh [--quick] [--install] [--pg N]
#   ONLY="W6 W4" bash bench/run.sh   # only these workloads (a partial run)
#   QUICK=1 bash bench/run.sh         # same as --quick
#
# Assumes `make install` was done (--install runs it first, as root).
# Starts its own cluster (shared_buffers=1GB, max_connections=200, fsync=on,
# synchronous_commit=on, shared_preload_libraries='jobq,pg_stat_statements'),
# compiles the helpers in bench/tools with g++, prints a table (workload, jobq
# figure, ceiling, ratio, target) and writes bench/results/<date>-<commit>.json.
# A workload whose component is missing reports "n/a (reason)"; every wait is
# bounded; network only on 127.0.0.1. Environment knobs: BENCH_KEEP=1 keeps
# the work directory (cluster, logs); BENCH_W3_CONCURRENCY (default 2000);
# BENCH_W5X_RATE (offered jobs/s, default 1000). The runner measured is this
# checkout's runner/build/jobq-runner when built (else jobq-runner on PATH).
#
# --pg N benchmarks PostgreSQL N: the local server when it is N, otherwise a
# copy of this tree inside the Debian root of scripts/pgroot.sh (as root;
# implies --install there), the results file copied back to bench/results.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
QUICK=$([[ ${QUICK:-0} == 1 ]] && echo 1 || echo 0)  # QUICK=1 in the environment = --quick
INSTALL=0
PG_MAJOR=
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --install) INSTALL=1 ;;
        --pg) PG_MAJOR=${2:?--pg needs a major version}; shift ;;
        --pg=*) PG_MAJOR=${1#--pg=} ;;
        *) echo "usage: bench/run.sh [--quick] [--install] [--pg N]" >&2; exit 2 ;;
    esac
    shift
done

# Another major than the local server: this script again, inside its root.
if [[ -n $PG_MAJOR && $PG_MAJOR != "$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')" ]]; then
    bash "$REPO/scripts/pgroot.sh" build "$PG_MAJOR" || exit 1
    rootdir=$(bash "$REPO/scripts/pgroot.sh" path "$PG_MAJOR")
    src=$(bash "$REPO/scripts/pgroot.sh" copy "$PG_MAJOR" "$REPO") || exit 1
    bash "$REPO/scripts/pgroot.sh" run "$PG_MAJOR" env ${ONLY:+ONLY="$ONLY"} QUICK="$QUICK" \
        ${BENCH_KEEP:+BENCH_KEEP="$BENCH_KEEP"} ${BENCH_W3_CONCURRENCY:+BENCH_W3_CONCURRENCY="$BENCH_W3_CONCURRENCY"} \
        ${BENCH_W5_GAP:+BENCH_W5_GAP="$BENCH_W5_GAP"} ${BENCH_W5X_RATE:+BENCH_W5X_RATE="$BENCH_W5X_RATE"} \
        JOBQ_COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        JOBQ_DIRTY="$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true)" \
        bash "$src/bench/run.sh" --install --pg "$PG_MAJOR"
    rc=$?
    mkdir -p "$BENCH/results"
    for f in "$rootdir$src"/bench/results/*.json; do
        [[ -f $f && ! -f $BENCH/results/${f##*/} ]] || continue
        cp "$f" "$BENCH/results/" && echo "bench: results in bench/results/${f##*/}" >&2
    done
    rm -rf "${rootdir:?}$src"
    exit $rc
fi

# shellcheck source=../scripts/cluster.sh
source "$REPO/scripts/cluster.sh"

if ((QUICK)); then
    W1_JOBS=4000 W2_JOBS=20000 W3_JOBS=10000 W3_REPEAT=2 W3S_JOBS=2000
    W4_RATE=100 W4_SECS=5 W4S_JOBS=200 W4S_SPREAD=3
    W5X_CLEAN=8 W5X_PIN=20 W6_JOBS=10000 W7_SECS=2
else
    W1_JOBS=20000 W2_JOBS=100000 W3_JOBS=100000 W3_REPEAT=10 W3S_JOBS=20000
    W4_RATE=100 W4_SECS=20 W4S_JOBS=1000 W4S_SPREAD=10
    W5X_CLEAN=60 W5X_PIN=120 W6_JOBS=10000 W7_SECS=10
fi
REPS=$((QUICK ? 1 : 3))  # W1, W2, W7: jobq and ceiling alternate REPS times; medians
W3_CEIL_EVERY=2          # W3: a ceiling run after every 2nd drain (5 in a full run, 1 in QUICK); medians
# Twice the runner's claim_batch (1000): the work connection claims the next
# batch while the last one's handlers run, as docs/runner.md advises for
# short jobs. At 1000 each claim waits for the last batch's handlers to end.
W3_CONC=${BENCH_W3_CONCURRENCY:-2000}
# Seconds of quiet before each of W3's drains after the first. 0: the next
# 100k jobs are enqueued as soon as the last drain ends, before jobq's
# vacuum has caught up with it (the harder case for W5's indexes).
W5_GAP=${BENCH_W5_GAP:-0}
[[ $W5_GAP =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "BENCH_W5_GAP: seconds, e.g. 2 (got '$W5_GAP')" >&2; exit 2; }
W5X_RATE=${BENCH_W5X_RATE:-1000}
# ONLY: workload ids separated by spaces or commas (case-insensitive). W3 brings
# W5 and the W3 profile with it (W5 is measured on W3's drains).
WORKLOADS="W1 W2 W3 W3s W4 W4h W4s W5 W5x W6 W7"
ONLY=$(tr ',a-z' ' A-Z' <<<"${ONLY:-}" | xargs)
for id in $ONLY; do
    [[ " ${WORKLOADS^^} " == *" $id "* ]] || { echo "bench: ONLY: unknown workload $id (known: $WORKLOADS)" >&2; exit 2; }
done
selected() {  # selected ID...: true when ONLY is empty or names one of them
    local id
    [[ -z $ONLY ]] && return 0
    for id; do [[ " $ONLY " == *" ${id^^} "* ]] && return 0; done
    return 1
}
PAYLOAD_HEAD='{"user_id": '
PAYLOAD_TAIL=', "action": "send_welcome_email", "template": "welcome-v2", "locale": "en-US", "campaign": "q4"}'

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ns() { date +%s%N; }

# ---------------------------------------------------------------- results
declare -A JOBQ CEIL RATIO TARGET NOTE
ORDER=()
result() {  # id jobq ceiling ratio target [note]
    ORDER+=("$1")
    JOBQ[$1]=$2 CEIL[$1]=$3 RATIO[$1]=$4 TARGET[$1]=$5 NOTE[$1]=${6:-}
}
EXTRA=()    # "key": json-value pairs for the JSON file
extra() { EXTRA+=("\"$1\": $2"); }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/ }; printf '"%s"' "$s"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "" ) printf "%.2f", a / b; else printf "n/a" }'; }
fmt_int() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

# ---------------------------------------------------------------- processes
WORK=""
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.5
    for pid in "${PIDS[@]}"; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    if [[ -n $WORK && -d $WORK/pg ]]; then
        cluster_stop "$WORK/pg" immediate
    fi
    rm -rf "/tmp/jobq-bench-bin.$$"
    if [[ -n $WORK && ${BENCH_KEEP:-0} != 1 ]]; then
        rm -rf "$WORK"
    elif [[ -n $WORK ]]; then
        log "work directory kept: $WORK"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# stop_pid PID [seconds]: SIGTERM, then SIGKILL after the bound.
stop_pid() {
    local pid=$1 bound=${2:-10} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < bound * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    log "pid $pid did not stop in ${bound}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# ---------------------------------------------------------------- checks
if ((INSTALL)); then
    # A fresh machine has no server headers, libfmt, ...: the same packages the tests use.
    bash "$REPO/scripts/install-deps.sh" || { echo "bench: installing the Debian packages failed" >&2; exit 1; }
    log "make install"
    # Not make bench's variables: PGXS has its own INSTALL.
    MAKEFLAGS= MAKELEVEL= make -C "$REPO" install >/dev/null || { echo "bench: make install failed" >&2; exit 1; }
fi
for tool in pgbench psql g++ pg_config; do
    command -v "$tool" >/dev/null || [[ -x $PG_BIN/$tool ]] || { echo "bench: $tool not found" >&2; exit 1; }
done
export PATH="$PG_BIN:$PATH"
PKGLIB=$(pg_config --pkglibdir)
SHAREDIR=$(pg_config --sharedir)
if [[ ! -f $PKGLIB/jobq.so || ! -f $SHAREDIR/extension/jobq.control ]]; then
    echo "bench: the jobq extension is not installed (make bench SETUP=1 installs the packages and the build)" >&2
    exit 1
fi
RUNNER=""
for candidate in "$REPO/runner/build/jobq-runner" "$(command -v jobq-runner 2>/dev/null)"; do
    [[ -n $candidate && -x $candidate ]] && { RUNNER=$candidate; break; }
done
if [[ -n $RUNNER ]]; then
    log "runner: $RUNNER"
    # A private copy: other builds in the tree must not swap it mid-run.
    mkdir -p /tmp/jobq-bench-bin.$$ && cp "$RUNNER" /tmp/jobq-bench-bin.$$/jobq-runner &&
        /tmp/jobq-bench-bin.$$/jobq-runner --help >/dev/null 2>&1 && RUNNER=/tmp/jobq-bench-bin.$$/jobq-runner
fi
HAVE_PGSS=0
[[ -f $SHAREDIR/extension/pg_stat_statements.control ]] && HAVE_PGSS=1
# JOBQ_COMMIT/JOBQ_DIRTY: set by --pg for a copy of the tree without .git.
COMMIT=${JOBQ_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=${JOBQ_DIRTY:-$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true)}

WORK=$(mktemp -d /tmp/jobq-bench.XXXXXX)
chmod 755 "$WORK"
PGD=$WORK/pg
TOOLS=$WORK/tools
mkdir -p "$TOOLS"

log "compiling helpers (bench/tools)"
PG_INC=$(pg_config --includedir)
g++ -O2 -std=c++17 -o "$TOOLS/slow_httpd" "$BENCH/tools/slow_httpd.cpp" 2>"$WORK/gxx.log" || log "slow_httpd did not compile: W6 n/a"
# Static, so "handler start" is the command's first instruction rather than
# the end of its dynamic linking (the handler's own cost, not the queue's).
g++ -O2 -std=c++17 -static -o "$TOOLS/stamp" "$BENCH/tools/stamp.cpp" 2>>"$WORK/gxx.log" ||
    g++ -O2 -std=c++17 -o "$TOOLS/stamp" "$BENCH/tools/stamp.cpp" 2>>"$WORK/gxx.log" || log "stamp did not compile: W4 n/a"
g++ -O2 -std=c++17 -o "$TOOLS/spawn_floor" "$BENCH/tools/spawn_floor.cpp" 2>>"$WORK/gxx.log" || log "spawn_floor did not compile: no W4 floor"
g++ -O2 -std=c++17 -I"$PG_INC" -o "$TOOLS/producer" "$BENCH/tools/producer.cpp" -lpq 2>>"$WORK/gxx.log" ||
    log "producer did not compile (libpq-dev?): W4 n/a"

# ---------------------------------------------------------------- cluster
PORT=$(free_port) || exit 1
PRELOAD="jobq"
((HAVE_PGSS)) && PRELOAD="jobq,pg_stat_statements"
log "cluster in $PGD on port $PORT (preload: $PRELOAD)"
cluster_init "$PGD" "$PORT" \
    "shared_buffers = 1GB" "max_connections = 200" "fsync = on" "synchronous_commit = on" \
    "shared_preload_libraries = '$PRELOAD'" "pg_stat_statements.track = top" \
    "log_min_messages = warning" "log_autovacuum_min_duration = -1" || exit 1
cluster_start "$PGD" || exit 1

DB=bench
psqlq() {  # psqlq SQL... : one value per line, unaligned; bounded
    timeout "${PSQL_TIMEOUT:-300}" psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGD" -p "$PORT" -U postgres -d "$DB" "$@"
}
q() { psqlq -c "$1"; }
pgb() {  # pgbench args... (bounded)
    timeout "${PGB_TIMEOUT:-600}" pgbench -h "$PGD" -p "$PORT" -U postgres "$@" "$DB"
}
tps_of() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$1"; }
done_of() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1"; }
median() { printf '%s\n' "$@" | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# alternate TAG "pgbench args for jobq" "pgbench args for the ceiling"
# Runs both REPS times on truncated tables; sets ALT_J and ALT_C to the median tps
# and ALT_ALL to every figure.
# With JOBS (rows per run) as $4, ALT_WAL is "jobq B / ceiling B" WAL per row (first run).
alternate() {
    local tag=$1 jargs=$2 cargs=$3 jobs=${4:-} r tj=() tc=() l0 l1 wj wc c0 c1 k0 k1 cj cc ck wpid
    ALT_WAL=""
    wpid=$(worker_pid)
    for ((r = 1; r <= REPS; r++)); do
        reset_tables
        l0=$(q "SELECT pg_current_wal_lsn()") c0=$(pg_ticks) k0=$(proc_ticks "${wpid:-0}")
        # shellcheck disable=SC2086
        pgb $jargs >"$WORK/$tag.jobq.$r.out" 2>&1
        l1=$(q "SELECT pg_current_wal_lsn()") c1=$(pg_ticks) k1=$(proc_ticks "${wpid:-0}")
        tj+=("$(tps_of "$WORK/$tag.jobq.$r.out")")
        if [[ -n $jobs && $r == 1 ]]; then
            wj=$(q "SELECT round(pg_wal_lsn_diff('$l1', '$l0') / $jobs)")
            cj=$(us_per $((c1 - c0)) "$jobs") ck=$(us_per $((k1 - k0)) "$jobs")
        fi
        if [[ -n $cargs ]]; then
            reset_tables
            l0=$(q "SELECT pg_current_wal_lsn()") c0=$(pg_ticks)
            # shellcheck disable=SC2086
            pgb $cargs >"$WORK/$tag.raw.$r.out" 2>&1
            l1=$(q "SELECT pg_current_wal_lsn()") c1=$(pg_ticks)
            tc+=("$(tps_of "$WORK/$tag.raw.$r.out")")
            if [[ -n $jobs && $r == 1 ]]; then
                wc=$(q "SELECT round(pg_wal_lsn_diff('$l1', '$l0') / $jobs)")
                cc=$(us_per $((c1 - c0)) "$jobs")
            fi
        fi
    done
    [[ -n $jobs ]] && ALT_WAL="server CPU ${cj} us/job (jobq worker ${ck}) vs ceiling ${cc} us/row; WAL ${wj} B/job vs ${wc} B/row (first run)"
    ALT_J=$(median "${tj[@]}") ALT_C=$(median "${tc[@]}")
    ALT_ALL="jobq ${tj[*]} / ceiling ${tc[*]}"
    ALT_ERR=$(tail -1 "$WORK/$tag.jobq.1.out")
    extra "${tag}_tps_runs" "$(json_str "$ALT_ALL")"
}

DB=postgres q "CREATE DATABASE bench" || exit 1
psqlq >/dev/null <<SQL || exit 1
CREATE EXTENSION jobq;
$( ((HAVE_PGSS)) && echo "CREATE EXTENSION pg_stat_statements;")
CREATE ROLE bench_runner LOGIN IN ROLE jobq_worker;
-- In-database handlers never run as a superuser: W3s's queue is owned by this role.
CREATE ROLE bench_owner NOLOGIN IN ROLE jobq_admin;
CREATE FUNCTION public.noop(payload jsonb) RETURNS void LANGUAGE sql AS '';
GRANT EXECUTE ON FUNCTION public.noop(jsonb) TO PUBLIC;
-- The ceiling: a plain table with jobq.job's row shape and its claim index.
CREATE SCHEMA raw;
-- Same columns as jobq.job by construction, so the shapes cannot drift.
CREATE TABLE raw.job (LIKE jobq.job INCLUDING DEFAULTS);
CREATE SEQUENCE raw.job_id_seq OWNED BY raw.job.id;
ALTER TABLE raw.job ALTER id SET DEFAULT nextval('raw.job_id_seq'), ADD PRIMARY KEY (id);
CREATE INDEX raw_job_claim_idx ON raw.job (queue, priority, run_at, id) WHERE state <> 'running';
SELECT count(jobq.create_queue(q)) FROM unnest(ARRAY['w1','w2','w3','w4','w4h','w4s','w5x','w6','w7']) AS q;
SQL

payload_sql() {  # SQL expression of the ~100-byte payload for integer expression $1
    printf "('%s' || (%s)::text || '%s')::jsonb" "$PAYLOAD_HEAD" "$1" "$PAYLOAD_TAIL"
}
reset_tables() {
    q "SET lock_timeout = '60s'; TRUNCATE jobq.job, jobq.archive, raw.job; CHECKPOINT" >/dev/null
}
set_conf() {  # set_conf NAME VALUE: ALTER SYSTEM + reload
    q "ALTER SYSTEM SET $1 = '$2'" && q "SELECT pg_reload_conf()" >/dev/null && sleep 0.3
}

# CPU ticks of the postmaster, its live children and its reaped children.
CLK_TCK=$(getconf CLK_TCK)
proc_ticks() {  # pid [with_reaped]
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s x "${2:-0}"
    local own=$((${12} + ${13}))
    if [[ ${!#} == 1 ]]; then own=$((own + ${14} + ${15})); fi
    echo "$own"
}
pg_ticks() {
    local pm total child
    pm=$(head -1 "$PGD/data/postmaster.pid")
    total=$(proc_ticks "$pm" 1)
    for child in $(ps -o pid= --ppid "$pm"); do
        total=$((total + $(proc_ticks "$child")))
    done
    echo "$total"
}
us_per() { awk -v t="$1" -v k="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", t / k * 1e6 / n; else printf "n/a" }'; }
worker_pid() { ps -o pid=,args= --ppid "$(head -1 "$PGD/data/postmaster.pid")" | awk '/jobq worker for database bench/ { print $1; exit }'; }
rss_hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "n/a"; }

# Runner: writes a config, starts it, returns its pid in RUNNER_PID.
RUNNER_PID=""
start_runner() {  # name queue-toml-snippet
    local name=$1 cfg=$WORK/runner-$1.toml
    cat >"$cfg" <<TOML
[database]
dsn = "host=$PGD port=$PORT dbname=$DB user=bench_runner"
[runner]
worker = "bench-$name"
poll_interval = "${RUNNER_POLL:-5s}"
grace_period = "2s"
$([[ -n ${RUNNER_LISTEN:-} ]] && printf '[http]\nlisten = "127.0.0.1:%s"\n' "$RUNNER_LISTEN")
$2
TOML
    "$RUNNER" --config "$cfg" >"$WORK/runner-$name.log" 2>&1 &
    RUNNER_PID=$!
    PIDS+=("$RUNNER_PID")
    sleep 0.2
    if ! kill -0 "$RUNNER_PID" 2>/dev/null; then
        log "runner $name exited at start: $(tail -3 "$WORK/runner-$name.log")"
        RUNNER_PID=""
        return 1
    fi
}
# start_httpd NAME DELAY_MS [STAMP_FILE]: slow_httpd in the background (its
# port in $WORK/NAME.port, its stderr in $WORK/NAME.log); sets HTTPD_PID, and
# HPORT, empty if it did not start within 5 s.
start_httpd() {
    "$TOOLS/slow_httpd" 0 "$2" "$WORK/$1.port" ${3:+"$3"} 2>"$WORK/$1.log" &
    HTTPD_PID=$!
    PIDS+=("$HTTPD_PID")
    for _ in $(seq 1 50); do [[ -s $WORK/$1.port ]] && break; sleep 0.1; done
    HPORT=$(cat "$WORK/$1.port" 2>/dev/null)
}
# http_queue QUEUE CONCURRENCY: the runner's table for an http queue posting
# to the slow_httpd on $HPORT.
http_queue() {
    printf '[queues.%s]\nhandler = "http"\nurl = "http://127.0.0.1:%s/hook"\nsecret = "bench-secret"\nconcurrency = %s' \
        "$1" "$HPORT" "$2"
}
# wait_until SECONDS SQL: polls (4/s) until SQL returns t; 1 on timeout.
wait_until() {
    local bound=$1 sql=$2 deadline
    deadline=$(($(date +%s) + bound))
    while (($(date +%s) < deadline)); do
        [[ $(q "$sql" 2>/dev/null) == t ]] && return 0
        sleep 0.25
    done
    return 1
}
runner_metrics() {  # port -> prints /metrics (bounded)
    timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' && printf "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n" >&3 && cat <&3' 2>/dev/null
}
# p99 bucket of the claim round-trip histogram between two /metrics dumps
claim_p99() {  # before-file after-file
    awk '
        FNR == NR && /^jobq_runner_claim_round_trip_seconds_bucket/ { split($0, a, "\""); b[a[2]] = $2; next }
        /^jobq_runner_claim_round_trip_seconds_bucket/ { split($0, a, "\""); le[++n] = a[2]; c[n] = $2 - b[a[2]] }
        END { total = c[n]; if (total <= 0) { print "n/a"; exit }
              for (i = 1; i <= n; i++) if (c[i] >= 0.99 * total) { print "<= " le[i] " s"; exit } }' "$1" "$2"
}
percentiles() {  # file of numbers (ms) -> "p50 p95 p99 max n"
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a n/a n/a n/a 0"; exit }
        i50 = int(NR * 0.50 + 0.999); i95 = int(NR * 0.95 + 0.999); i99 = int(NR * 0.99 + 0.999)
        printf "%.2f %.2f %.2f %.2f %d\n", v[i50], v[i95], v[i99], v[NR], NR }'
}

# ================================================================ W1
# (W7 and W5x reuse these scripts, so they are written whatever ONLY says.)
cat >"$WORK/w1_jobq.sql" <<SQL
\set uid random(1, 1000000)
SELECT jobq.enqueue('w1', $(payload_sql ":uid"));
SQL
cat >"$WORK/w1_raw.sql" <<SQL
\set uid random(1, 1000000)
INSERT INTO raw.job (queue, state, payload, max_attempts) VALUES ('w1', 'available', $(payload_sql ":uid"), 25);
SQL
if selected W1; then
    log "W1 enqueue-single: $W1_JOBS jobs, pgbench -c 8 -j 2 -M prepared"
    reset_tables
    W1_T=$((W1_JOBS / 8))
    alternate w1 "-n -c 8 -j 2 -M prepared -t $W1_T -f $WORK/w1_jobq.sql" "-n -c 8 -j 2 -M prepared -t $W1_T -f $WORK/w1_raw.sql" "$W1_JOBS"
    W1_J=$ALT_J W1_C=$ALT_C
    if [[ -n $W1_J && -n $W1_C ]]; then
        result W1 "$(fmt_int "$W1_J") jobs/s" "$(fmt_int "$W1_C") rows/s" "$(ratio "$W1_J" "$W1_C")" ">= 0.9" "$ALT_WAL; tps per run: $ALT_ALL"
    else
        result W1 "n/a (pgbench failed: $ALT_ERR)" "${W1_C:-n/a}" n/a ">= 0.9"
    fi
fi

# ================================================================ W2
if selected W2; then
    log "W2 enqueue-batch: $W2_JOBS jobs, 1000 per transaction, pgbench -c 2 -j 2"
    reset_tables
    {
        printf "SELECT count(*) FROM jobq.enqueue_many('w2', ARRAY["
        for ((i = 1; i <= 1000; i++)); do
            ((i > 1)) && printf ","
            printf "'%s%d%s'::jsonb" "$PAYLOAD_HEAD" "$i" "$PAYLOAD_TAIL"
        done
        printf "]);\n"
    } >"$WORK/w2_jobq.sql"
    {
        printf "INSERT INTO raw.job (queue, state, payload, max_attempts) VALUES "
        for ((i = 1; i <= 1000; i++)); do
            ((i > 1)) && printf ","
            printf "('w2','available','%s%d%s'::jsonb,25)" "$PAYLOAD_HEAD" "$i" "$PAYLOAD_TAIL"
        done
        printf ";\n"
    } >"$WORK/w2_raw.sql"
    W2_T=$((W2_JOBS / 1000 / 2))
    alternate w2 "-n -c 2 -j 2 -t $W2_T -f $WORK/w2_jobq.sql" "-n -c 2 -j 2 -t $W2_T -f $WORK/w2_raw.sql" "$W2_JOBS"
    W2_J=$ALT_J W2_C=$ALT_C
    if [[ -n $W2_J && -n $W2_C ]]; then
        W2_J=$(awk -v t="$W2_J" 'BEGIN { print t * 1000 }') W2_C=$(awk -v t="$W2_C" 'BEGIN { print t * 1000 }')
        result W2 "$(fmt_int "$W2_J") jobs/s" "$(fmt_int "$W2_C") rows/s" "$(ratio "$W2_J" "$W2_C")" ">= 1.0" "$ALT_WAL; transactions of 1000 per second, per run: $ALT_ALL"
    else
        result W2 "n/a (pgbench failed: $ALT_ERR)" "${W2_C:-n/a}" n/a ">= 1.0"
    fi
fi

# ================================================================ W7
if selected W7; then
    log "W7 commit contention: 32 producers, wake-ups on / off / plain INSERT, ${W7_SECS}s each"
    HAVE_WAKEUP_GUC=$(q "SELECT count(*) FROM pg_settings WHERE name = 'jobq.wakeups'")
    sed 's/w1/w7/' "$WORK/w1_jobq.sql" >"$WORK/w7_jobq.sql"
    sed 's/w1/w7/' "$WORK/w1_raw.sql" >"$WORK/w7_raw.sql"
    # on, off, ceiling in turn, REPS times
    W7_A=() W7_B=() W7_R=()
    for ((r = 1; r <= REPS; r++)); do
        reset_tables
        pgb -n -c 32 -j 2 -M prepared -T "$W7_SECS" -f "$WORK/w7_jobq.sql" >"$WORK/w7_on.$r.out" 2>&1
        W7_A+=("$(tps_of "$WORK/w7_on.$r.out")")
        if [[ $HAVE_WAKEUP_GUC == 1 ]]; then
            reset_tables
            set_conf jobq.wakeups off
            pgb -n -c 32 -j 2 -M prepared -T "$W7_SECS" -f "$WORK/w7_jobq.sql" >"$WORK/w7_off.$r.out" 2>&1
            W7_B+=("$(tps_of "$WORK/w7_off.$r.out")")
            set_conf jobq.wakeups on
        fi
        reset_tables
        pgb -n -c 32 -j 2 -M prepared -T "$W7_SECS" -f "$WORK/w7_raw.sql" >"$WORK/w7_raw.$r.out" 2>&1
        W7_R+=("$(tps_of "$WORK/w7_raw.$r.out")")
    done
    W7_ON=$(median "${W7_A[@]}") W7_OFF=$(median "${W7_B[@]}") W7_C=$(median "${W7_R[@]}")
    W7_ALL="on ${W7_A[*]} / off ${W7_B[*]} / INSERT ${W7_R[*]}"
    ALT_ERR=$(tail -1 "$WORK/w7_on.1.out")
    extra w7_tps_runs "$(json_str "$W7_ALL")"
    if [[ -n $W7_ON && -n $W7_C ]]; then
        result W7 "$(fmt_int "$W7_ON") commits/s (wake-ups on)" "$(fmt_int "$W7_C") INSERT/s" "$(ratio "$W7_ON" "$W7_C")" ">= 0.9" \
            "per run: $W7_ALL; wake-ups off (jobq.wakeups = off): $([[ -n $W7_OFF ]] && echo "$(fmt_int "$W7_OFF") commits/s, on/off $(ratio "$W7_ON" "$W7_OFF")" || echo "n/a (no jobq.wakeups setting)")"
    else
        result W7 "n/a (pgbench failed: $ALT_ERR)" "${W7_C:-n/a}" n/a ">= 0.9"
    fi
    reset_tables
fi

# ================================================================ W3 / W5
preload_jobq() {  # queue n
    local left=$2 b
    while ((left > 0)); do
        b=$((left > 10000 ? 10000 : left))
        q "SELECT count(*) FROM jobq.enqueue_many('$1', (SELECT array_agg($(payload_sql g)) FROM generate_series(1, $b) g))" >/dev/null || return 1
        left=$((left - b))
    done
}
w5_snapshot() {  # label
    q "SELECT pg_stat_force_next_flush()" >/dev/null 2>&1
    sleep 1.5
    q "SELECT round(pg_relation_size('jobq.job') / 1048576.0, 1) || ' MB heap + ' ||
              round(pg_indexes_size('jobq.job') / 1048576.0, 1) || ' MB idx, ' ||
              coalesce((SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobq.job'::regclass), 0) || ' dead, archive ' ||
              round(pg_total_relation_size('jobq.archive') / 1048576.0, 1) || ' MB'"
}
w5_bytes() { q "SELECT pg_relation_size('jobq.job') + pg_indexes_size('jobq.job')"; }

W3_RUNS=()
W3_CUSTOM=""
W3_PG_CPU="" W3_RUNNER_CPU="" W3_RUNNER_HWM="" W3_CALLS="" W3_WAL="" W3_TOP=""
W5_AFTER1="" W5_AFTERN="" W5_B1="" W5_BN=""
W5_IDX=()  # index MB after each drain
if ! selected W3 W5; then
    :
elif [[ -z $RUNNER ]]; then
    result W3 "n/a (jobq-runner not built: make runner)" "" n/a ">= 1.5"
    result W5 "n/a (needs W3)" "" n/a "flat"
else
    # Ceiling: claim 100 by UPDATE ... SKIP LOCKED with a lease, then DELETE them; 8 clients.
    cat >"$WORK/w3_raw.sql" <<'SQL'
\set tok random(1, 1000000000)
WITH c AS (SELECT id FROM raw.job WHERE queue = 'w3' AND state <> 'running' AND run_at <= now() ORDER BY priority, run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED), u AS (UPDATE raw.job j SET state = 'running', attempt = j.attempt + 1, lease_token = :tok, lease_expires_at = now() + interval '5 minutes', worker = 'bench', attempted_at = now() FROM c WHERE j.id = c.id RETURNING j.id, j.payload) SELECT coalesce(array_agg(id), '{}') AS ids, sum(length(payload::text)) AS bytes FROM u
\gset
DELETE FROM raw.job WHERE id = ANY(:ids::bigint[]) AND lease_token = :tok;
SQL
    cat >"$WORK/w3_raw_amo.sql" <<'SQL'
DELETE FROM raw.job WHERE id IN (SELECT id FROM raw.job WHERE queue = 'w3' AND state <> 'running' AND run_at <= now() ORDER BY priority, run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, payload;
SQL
    raw_preload() {
        q "TRUNCATE raw.job; INSERT INTO raw.job (queue, state, payload, max_attempts)
           SELECT 'w3', 'available', $(payload_sql g), 25 FROM generate_series(1, $W3_JOBS) g" >/dev/null
        q "VACUUM ANALYZE raw.job" >/dev/null
        q "CHECKPOINT" >/dev/null
    }
    # One ceiling run on a fresh table. The runs interleave with the drains
    # (one after every W3_CEIL_EVERY-th), so both sides see the same host:
    # measured back to back, one 10-second burst of another tenant moved
    # the ceiling's median between 58k and 74k jobs/s. CPU and WAL per job
    # are from the first run.
    W3_CRUNS=()
    w3_ceiling_run() {
        local lsn0 lsn1 cpu0 cpu1 left tps n
        ((HAVE_PGSS)) && set_conf pg_stat_statements.track top
        raw_preload
        lsn0=$(q "SELECT pg_current_wal_lsn()")
        cpu0=$(pg_ticks)
        pgb -n -c 8 -j 2 -M prepared -t $((W3_JOBS / 800)) -f "$WORK/w3_raw.sql" >"$WORK/w3_raw.out" 2>&1
        cpu1=$(pg_ticks)
        lsn1=$(q "SELECT pg_current_wal_lsn()")
        left=$(q "SELECT count(*) FROM raw.job")
        tps=$(tps_of "$WORK/w3_raw.out") n=$(done_of "$WORK/w3_raw.out")
        W3_CRUNS+=("$(awk -v t="$tps" -v n="$n" -v d=$((W3_JOBS - left)) 'BEGIN { if (n > 0) printf "%.0f", t * d / n }')")
        log "  ceiling run ${#W3_CRUNS[@]}: ${W3_CRUNS[-1]} jobs/s"
        if ((${#W3_CRUNS[@]} == 1)); then
            W3_CCPU_US=$(awk -v t=$((cpu1 - cpu0)) -v k="$CLK_TCK" -v n=$((W3_JOBS - left)) 'BEGIN { if (n > 0) printf "%.0f", t / k * 1e6 / n }')
            W3_CWAL=$(q "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / greatest($W3_JOBS - $left, 1))")
        fi
        q "TRUNCATE raw.job" >/dev/null
        ((HAVE_PGSS)) && set_conf pg_stat_statements.track all
    }
    log "W3 drain: $W3_JOBS jobs x $W3_REPEAT runs, jobq-runner noop, concurrency $W3_CONC, claim_batch 1000;"
    log "  ceiling (claim 100 by UPDATE + DELETE 100, 8 clients) after every ${W3_CEIL_EVERY}th drain"
    [[ $W5_GAP != 0 ]] && log "  BENCH_W5_GAP: $W5_GAP s of quiet before each drain after the first"
    reset_tables
    ((HAVE_PGSS)) && set_conf pg_stat_statements.track all
    for ((run = 1; run <= W3_REPEAT; run++)); do
        ((run > 1)) && sleep "$W5_GAP"
        preload_jobq w3 "$W3_JOBS" || { log "W3 preload failed"; break; }
        if ((run == 1)); then q "VACUUM ANALYZE jobq.job" >/dev/null; else q "ANALYZE jobq.job" >/dev/null; fi
        q "CHECKPOINT" >/dev/null
        ((HAVE_PGSS)) && q "SELECT pg_stat_statements_reset()" >/dev/null
        lsn0=$(q "SELECT pg_current_wal_lsn()")
        pg0=$(pg_ticks)
        start_runner w3 "[queues.w3]
handler = \"noop\"
concurrency = $W3_CONC" || break
        if ! wait_until 300 "SELECT NOT EXISTS (SELECT 1 FROM jobq.job WHERE queue = 'w3') /*bench-poll*/"; then
            log "W3 run $run did not drain in 300 s"
            stop_pid "$RUNNER_PID"
            break
        fi
        pg1=$(pg_ticks)
        rt=$(proc_ticks "$RUNNER_PID")
        ((run == 1)) && W3_RUNNER_HWM=$(rss_hwm_mb "$RUNNER_PID")
        lsn1=$(q "SELECT pg_current_wal_lsn()")
        stop_pid "$RUNNER_PID"
        rate=$(q "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(attempted_at)))
                  FROM jobq.archive WHERE queue = 'w3' AND finished_at > now() - interval '10 minutes'
                    AND id > (SELECT coalesce(max(id), 0) FROM jobq.archive WHERE queue = 'w3') - $W3_JOBS")
        W3_RUNS+=("$rate")
        W5_IDX+=("$(q "SELECT round(pg_indexes_size('jobq.job') / 1048576.0, 1)")")
        log "  run $run: $rate jobs/s; jobq.job indexes ${W5_IDX[-1]} MB"
        if ((run == 1)); then
            W3_PG_CPU=$(awk -v t=$((pg1 - pg0)) -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')
            W3_RUNNER_CPU=$(awk -v t="$rt" -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')
            W3_WAL=$(q "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / $W3_JOBS)")
            if ((HAVE_PGSS)); then
                W3_CALLS=$(q "SELECT round(sum(calls)::numeric / $W3_JOBS, 4) FROM pg_stat_statements
                              WHERE toplevel AND userid = 'bench_runner'::regrole")
                W3_TOP=$(q "SELECT format('%s | calls %s | %s ms total | %s ms mean | rows %s | WAL %s B/job | blks hit %s',
                                   regexp_replace(left(query, 90), '\s+', ' ', 'g'), calls, round(total_exec_time::numeric),
                                   round(mean_exec_time::numeric, 2), rows, round(wal_bytes / $W3_JOBS), shared_blks_hit)
                            FROM pg_stat_statements
                            WHERE (userid = 'bench_runner'::regrole OR NOT toplevel) AND query NOT LIKE '%bench-poll%'
                            ORDER BY total_exec_time DESC LIMIT 8")
            fi
            W5_AFTER1=$(w5_snapshot)
            W5_B1=$(w5_bytes)
        fi
        ((run % W3_CEIL_EVERY == 0)) && w3_ceiling_run
    done
    ((${#W3_CRUNS[@]} == 0)) && w3_ceiling_run
    if ((${#W3_RUNS[@]} > 0)); then
        W5_AFTERN=$(w5_snapshot)
        W5_BN=$(w5_bytes)
        # Diagnostic, not a jobq figure: the same drain with plan_cache_mode =
        # force_custom_plan for the runner's role, i.e. what the saved SPI
        # plans of claim/complete cost when planned for their actual arrays.
        q "ALTER ROLE bench_runner SET plan_cache_mode = force_custom_plan" >/dev/null
        preload_jobq w3 "$W3_JOBS"
        q "ANALYZE jobq.job" >/dev/null
        if start_runner w3custom "[queues.w3]
handler = \"noop\"
concurrency = $W3_CONC"; then
            if wait_until 300 "SELECT NOT EXISTS (SELECT 1 FROM jobq.job WHERE queue = 'w3') /*bench-poll*/"; then
                W3_CUSTOM=$(q "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(attempted_at)))
                               FROM jobq.archive WHERE queue = 'w3'
                                 AND id > (SELECT coalesce(max(id), 0) FROM jobq.archive WHERE queue = 'w3') - $W3_JOBS")
                log "  diagnostic run with force_custom_plan: $W3_CUSTOM jobs/s"
            fi
            stop_pid "$RUNNER_PID"
        fi
        q "ALTER ROLE bench_runner RESET plan_cache_mode" >/dev/null
    fi
    ((HAVE_PGSS)) && set_conf pg_stat_statements.track top

    W3_C=$(median "${W3_CRUNS[@]}")
    raw_preload
    pgb -n -c 8 -j 2 -M prepared -t $((W3_JOBS / 800)) -f "$WORK/w3_raw_amo.sql" >"$WORK/w3_raw_amo.out" 2>&1
    left=$(q "SELECT count(*) FROM raw.job")
    tps=$(tps_of "$WORK/w3_raw_amo.out") n=$(done_of "$WORK/w3_raw_amo.out")
    W3_AMO=$(awk -v t="$tps" -v n="$n" -v d=$((W3_JOBS - left)) 'BEGIN { if (n > 0) printf "%.0f", t * d / n }')
    q "TRUNCATE raw.job" >/dev/null

    if ((${#W3_RUNS[@]} > 0)); then
        # The median of the drains (the first runs on a freshly vacuumed
        # table, the rest on the churned one) against the median ceiling.
        W3_J=$(median "${W3_RUNS[@]}")
        tot=$(awk -v a="$W3_PG_CPU" -v b="$W3_RUNNER_CPU" 'BEGIN { print a + b }')
        result W3 "$W3_J jobs/s" "${W3_C:-n/a} jobs/s" "$(ratio "$W3_J" "${W3_C:-0}")" ">= 1.5" \
            "CPU postgres ${W3_PG_CPU}s / runner ${W3_RUNNER_CPU}s ($(ratio "$W3_PG_CPU" "$tot") / $(ratio "$W3_RUNNER_CPU" "$tot")), runner peak RSS ${W3_RUNNER_HWM:-n/a} MB, postgres $(awk -v c="$W3_PG_CPU" -v n="$W3_JOBS" 'BEGIN { printf "%.0f", c * 1e6 / n }') us/job (ceiling ${W3_CCPU_US:-n/a} us/job); WAL ${W3_WAL} B/job (ceiling ${W3_CWAL}); pgss top-level calls/job ${W3_CALLS:-n/a}; drains ${W3_RUNS[*]}, ceiling runs ${W3_CRUNS[*]}; diagnostic with plan_cache_mode = force_custom_plan for the runner role ${W3_CUSTOM:-n/a} jobs/s; at-most-once DELETE ceiling ${W3_AMO:-n/a} jobs/s"
        extra w3_runs "[$(IFS=,; echo "${W3_RUNS[*]}")]"
        extra w3_ceiling_runs "[$(IFS=,; echo "${W3_CRUNS[*]}")]"
        extra w3_force_custom_plan "${W3_CUSTOM:-null}"
        extra w3_ceiling_at_most_once "${W3_AMO:-null}"
        extra w3_wal_bytes_per_job "${W3_WAL:-null}"
        extra w3_ceiling_wal_bytes_per_job "${W3_CWAL:-null}"
        extra w3_cpu_postgres_s "${W3_PG_CPU:-null}"
        extra w3_cpu_runner_s "${W3_RUNNER_CPU:-null}"
        [[ $W3_RUNNER_HWM =~ ^[0-9.]+$ ]] || W3_RUNNER_HWM=null
        extra w3_runner_peak_rss_mb "$W3_RUNNER_HWM"
        extra w3_ceiling_cpu_postgres_us_per_job "${W3_CCPU_US:-null}"
        extra w3_pgss_calls_per_job "${W3_CALLS:-null}"
        extra w3_top_statements "$(json_str "$W3_TOP")"
        flat="no"
        [[ -n $W5_B1 && -n $W5_BN ]] && ((W5_BN <= W5_B1)) && flat="yes"
        result W5 "after $W3_JOBS: $W5_AFTER1" "" "flat: $flat" "flat" \
            "after $((W3_JOBS * ${#W3_RUNS[@]})) jobs: $W5_AFTERN; indexes after each drain: ${W5_IDX[*]} MB; quiet before each drain: $W5_GAP s"
        extra w5_index_mb_per_drain "[$(IFS=,; echo "${W5_IDX[*]}")]"
        extra w5_gap_s "$W5_GAP"
    else
        result W3 "n/a (runner failed; see log)" "${W3_C:-n/a} jobs/s" n/a ">= 1.5"
        result W5 "n/a (needs W3)" "" n/a "flat"
    fi
fi

# ================================================================ W3 profile
# The real drain again (10 batches), with auto_explain on for the runner's
# role: plans, buffers and WAL of the statements jobq's C functions run
# through SPI, as the runner drives them (generic plans after 5 calls).
W3_PROFILE="n/a (runner not built)"
selected W3 || W3_PROFILE=""
if [[ -n $RUNNER ]] && selected W3; then
    log "W3 profile: auto_explain (ANALYZE, BUFFERS, WAL) of the runner's drain, 10000 jobs"
    reset_tables
    preload_jobq w3 10000
    q "VACUUM ANALYZE jobq.job" >/dev/null
    for setting in "session_preload_libraries = 'auto_explain'" "auto_explain.log_min_duration = 0" \
        "auto_explain.log_analyze = on" "auto_explain.log_buffers = on" "auto_explain.log_wal = on" \
        "auto_explain.log_nested_statements = on"; do
        q "ALTER ROLE bench_runner SET $setting" >/dev/null
    done
    LOG_START=$(wc -l <"$PGD/server.log")
    if start_runner w3profile "[queues.w3]
handler = \"noop\"
concurrency = $W3_CONC"; then
        wait_until 120 "SELECT NOT EXISTS (SELECT 1 FROM jobq.job WHERE queue = 'w3') /*bench-poll*/" || log "profile drain timed out"
        stop_pid "$RUNNER_PID"
    fi
    q "ALTER ROLE bench_runner RESET ALL" >/dev/null
    # One block per plan: "LOG:  duration: ... plan:" and its tab-indented lines.
    tail -n +$((LOG_START + 1)) "$PGD/server.log" | awk -v dir="$WORK" '
        function flush() {
            if (block == "") return
            kind = ""
            if (block ~ /WITH candidate AS MATERIALIZED/) kind = "claim"
            else if (block ~ /WITH done AS/) kind = "complete"
            else if (block ~ /CROSS JOIN LATERAL jobq.claim/) kind = "claim_call"
            else if (block ~ /jobq.complete\(/) kind = "complete_call"
            if (kind != "") { n[kind]++; ms[kind] += dur; if (n[kind] <= 8) last[kind] = block }
            block = ""
        }
        /LOG:  duration: .* plan:/ { flush(); match($0, /duration: [0-9.]+/); dur = substr($0, RSTART + 10, RLENGTH - 10); block = $0 "\n"; next }
        /^\t/ { if (block != "") block = block $0 "\n"; next }
        { flush() }
        END {
            flush()
            for (k in n) printf "%s: %d calls, mean %.2f ms\n", k, n[k], ms[k] / n[k] > (dir "/profile_summary.txt")
            print last["claim"] > (dir "/profile_claim.txt")
            print last["complete"] > (dir "/profile_complete.txt")
        }'
    W3_PROFILE="$(sort "$WORK/profile_summary.txt" 2>/dev/null)
--- claim (8th call, generic plan) ---
$(sed 's/^.*LOG:  //; s/^\t//' "$WORK/profile_claim.txt" 2>/dev/null)
--- complete (8th call, generic plan) ---
$(sed 's/^.*LOG:  //; s/^\t//' "$WORK/profile_complete.txt" 2>/dev/null)"
fi
[[ -n $W3_PROFILE ]] && extra w3_profile "$(json_str "$W3_PROFILE")"
reset_tables

# ================================================================ W3s
selected W3s && log "W3s drain by an in-database SQL handler ($W3S_JOBS jobs)"
HW=$(q "SELECT count(*) FROM pg_settings WHERE name = 'jobq.handler_workers'")
if ! selected W3s; then
    :
elif [[ $HW != 1 ]]; then
    result W3s "n/a (no jobq.handler_workers setting)" "${W3_C:-}" n/a report
elif ! q "SET ROLE bench_owner; SELECT jobq.create_queue('w3s', handler => 'public.noop(jsonb)'::regprocedure)" >/dev/null 2>"$WORK/w3s.err"; then
    result W3s "n/a (create_queue with handler failed: $(head -1 "$WORK/w3s.err"))" "${W3_C:-}" n/a report
else
    preload_jobq w3s "$W3S_JOBS"
    if ! wait_until 15 "SELECT EXISTS (SELECT 1 FROM jobq.archive WHERE queue = 'w3s')"; then
        W3S_ERR=$(q "SELECT left(errors::text, 200) FROM jobq.job WHERE queue = 'w3s' AND errors IS NOT NULL LIMIT 1")
        result W3s "n/a (no job completed in 15 s: in-database handler worker not available${W3S_ERR:+; job error: $W3S_ERR})" "${W3_C:-n/a} jobs/s" n/a report
    elif ! wait_until 300 "SELECT NOT EXISTS (SELECT 1 FROM jobq.job WHERE queue = 'w3s')"; then
        result W3s "n/a (did not drain in 300 s)" "${W3_C:-n/a} jobs/s" n/a report
    else
        W3S=$(q "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(attempted_at))) FROM jobq.archive WHERE queue = 'w3s'")
        result W3s "$W3S jobs/s" "${W3_C:-n/a} jobs/s" "$(ratio "$W3S" "${W3_C:-0}")" report
    fi
    q "SELECT jobq.pause('w3s')" >/dev/null 2>&1
    reset_tables
fi

# ================================================================ W5x
if ! selected W5x; then
    :
elif [[ -z $RUNNER ]]; then
    result W5x "n/a (jobq-runner not built)" "" n/a ">= 0.9"
else
    log "W5x: offered $W5X_RATE jobs/s; clean ${W5X_CLEAN}s, then ${W5X_PIN}s with a REPEATABLE READ transaction open"
    reset_tables
    MPORT=$(free_port)
    RUNNER_LISTEN=$MPORT start_runner w5x "[queues.w5x]
handler = \"noop\"
concurrency = $W3_CONC"
    if [[ -n $RUNNER_PID ]]; then
        sed 's/w1/w5x/' "$WORK/w1_jobq.sql" >"$WORK/w5x.sql"
        phase() {  # name seconds -> "throughput backlog claim_p99"
            local t0 t1 m0=$WORK/m0.$1 m1=$WORK/m1.$1
            runner_metrics "$MPORT" >"$m0"
            t0=$(q "SELECT clock_timestamp()")
            pgb -n -c 4 -j 2 -M prepared -R "$W5X_RATE" -T "$2" -f "$WORK/w5x.sql" >"$WORK/w5x_$1.out" 2>&1
            t1=$(q "SELECT clock_timestamp()")
            runner_metrics "$MPORT" >"$m1"
            local thr backlog
            thr=$(q "SELECT round(count(*) / extract(epoch FROM '$t1'::timestamptz - '$t0'::timestamptz))
                     FROM jobq.archive WHERE queue = 'w5x' AND finished_at BETWEEN '$t0' AND '$t1'")
            backlog=$(q "SELECT count(*) FROM jobq.job WHERE queue = 'w5x'")
            echo "$thr $backlog $(claim_p99 "$m0" "$m1" | tr ' ' '_')"
        }
        read -r X_CLEAN X_CLEAN_BL X_CLEAN_P99 <<<"$(phase clean "$W5X_CLEAN")"
        PSQL_TIMEOUT=$((W5X_PIN + 60)) psqlq -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT txid_current(); SELECT pg_sleep($((W5X_PIN + 2))); COMMIT;" \
            >/dev/null 2>&1 &
        PIN_PID=$!
        PIDS+=("$PIN_PID")
        sleep 1
        PINNED_XMIN=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()")
        read -r X_PIN X_PIN_BL X_PIN_P99 <<<"$(phase pinned "$W5X_PIN")"
        DEAD_PIN=$(q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobq.job'::regclass")
        stop_pid "$PIN_PID" 5
        stop_pid "$RUNNER_PID"
        result W5x "$X_PIN jobs/s pinned (backlog $X_PIN_BL, claim p99 ${X_PIN_P99//_/ })" \
            "$X_CLEAN jobs/s clean (backlog $X_CLEAN_BL, claim p99 ${X_CLEAN_P99//_/ })" "$(ratio "$X_PIN" "$X_CLEAN")" ">= 0.9" \
            "offered $W5X_RATE/s; xmin pinned: $([[ $PINNED_XMIN -ge 1 ]] && echo yes || echo no); dead tuples in jobq.job at end: $DEAD_PIN"
    else
        result W5x "n/a (runner failed to start)" "" n/a ">= 0.9"
    fi
    reset_tables
fi

# ================================================================ W4 / W4s
if ! selected W4 W4s; then
    :
elif [[ -z $RUNNER || ! -x $TOOLS/stamp || ! -x $TOOLS/producer ]]; then
    result W4 "n/a (runner or helpers missing)" "" "" "p50 <= 1, p99 <= 3 ms"
    result W4s "n/a (runner or helpers missing)" "" "" "p99 <= 5 ms"
else
    log "W4 latency: $W4_RATE jobs/s for ${W4_SECS}s; W4s: $W4S_JOBS jobs due over ${W4S_SPREAD}s"
    # The machine's floor: spawn -> stamp start with no queue in between.
    W4_FLOOR="n/a"
    if [[ -x $TOOLS/spawn_floor ]]; then
        "$TOOLS/spawn_floor" "$TOOLS/stamp" "$WORK/floor_stamps.txt" 200 >"$WORK/floor_ms.txt" 2>/dev/null
        read -r f50 f95 f99 fmax fn <<<"$(percentiles "$WORK/floor_ms.txt")"
        ((fn > 0)) && W4_FLOOR="p50 $f50 / p99 $f99 ms"
        extra w4_exec_floor_ms "{\"p50\": ${f50/n\/a/null}, \"p99\": ${f99/n\/a/null}, \"n\": $fn}"
    fi
    STAMPS=$WORK/stamps.txt
    : >"$STAMPS"
    chmod 666 "$STAMPS"
    start_runner w4 "[queues.w4]
handler = \"exec\"
command = [\"$TOOLS/stamp\", \"$STAMPS\"]
concurrency = 100
[queues.w4s]
handler = \"exec\"
command = [\"$TOOLS/stamp\", \"$STAMPS\"]
concurrency = 100"
    if [[ -n $RUNNER_PID ]]; then
        sleep 1
        CONNINFO="host=$PGD port=$PORT dbname=$DB user=postgres"
        timeout $((W4_SECS + 60)) "$TOOLS/producer" latency "$CONNINFO" w4 "$W4_RATE" "$W4_SECS" "$WORK/w4_commits.txt" "$WORK/w4_notify.txt"
        n4=$(wc -l <"$WORK/w4_commits.txt")
        wait_until 30 "SELECT count(*) >= $n4 FROM jobq.archive WHERE queue = 'w4'" || log "W4: not every job finished in 30 s"
        # commit -> handler start (exec stamp) and commit -> claim (attempted_at)
        awk 'NR == FNR { c[$1] = $2; next } ($1 in c) { printf "%.3f\n", ($2 - c[$1]) / 1e6 }' \
            "$WORK/w4_commits.txt" "$STAMPS" >"$WORK/w4_ms.txt"
        q "SELECT id, round(extract(epoch FROM attempted_at) * 1e6) FROM jobq.archive WHERE queue = 'w4'" | tr '|' ' ' >"$WORK/w4_claims.txt"
        awk 'NR == FNR { c[$1] = $2; next } ($1 in c) { printf "%.3f\n", ($2 * 1000 - c[$1]) / 1e6 }' \
            "$WORK/w4_commits.txt" "$WORK/w4_claims.txt" >"$WORK/w4_claim_ms.txt"
        # commit -> NOTIFY jobq_wakeup received by a listener: the first
        # notification no earlier than 1 ms before the commit was acknowledged
        awk 'NR == FNR { nt[++k] = $1; next } { while (j < k && nt[j + 1] < $2 - 1e6) j++; if (j < k) printf "%.3f\n", (nt[j + 1] - $2) / 1e6 }' \
            "$WORK/w4_notify.txt" "$WORK/w4_commits.txt" >"$WORK/w4_notify_ms.txt" 2>/dev/null
        read -r w50 w95 w99 wmax wn <<<"$(percentiles "$WORK/w4_notify_ms.txt")"
        read -r p50 p95 p99 pmax n <<<"$(percentiles "$WORK/w4_ms.txt")"
        read -r c50 c95 c99 cmax cn <<<"$(percentiles "$WORK/w4_claim_ms.txt")"
        if ((n > 0)); then
            result W4 "p50 $p50 / p95 $p95 / p99 $p99 / max $pmax ms" "" "" "p50 <= 1, p99 <= 3 ms" \
                "$n of $n4 jobs; commit ack -> exec handler start. Breakdown: commit ack -> NOTIFY received by a listener p50 $w50 / p95 $w95 / p99 $w99 / max $wmax ms ($wn notifications); commit ack -> claim transaction start (attempted_at) p50 $c50 / p95 $c95 / p99 $c99 / max $cmax ms; exec floor of this machine (posix_spawn -> stamp start, no queue, 200 starts) $W4_FLOOR"
        else
            result W4 "n/a (no handler start recorded)" "" "" "p50 <= 1, p99 <= 3 ms"
        fi

        : >"$STAMPS"
        timeout $((W4S_SPREAD + 60)) "$TOOLS/producer" sched "$CONNINFO" w4s "$W4S_JOBS" "$W4S_SPREAD" 2 "$WORK/w4s_due.txt"
        wait_until $((W4S_SPREAD + 30)) "SELECT count(*) >= $W4S_JOBS FROM jobq.archive WHERE queue = 'w4s'" ||
            log "W4s: not every job finished in time"
        awk 'NR == FNR { d[$1] = $2; next } ($1 in d) { printf "%.3f\n", ($2 - d[$1]) / 1e6 }' \
            "$WORK/w4s_due.txt" "$STAMPS" >"$WORK/w4s_ms.txt"
        read -r s50 s95 s99 smax sn <<<"$(percentiles "$WORK/w4s_ms.txt")"
        if ((sn > 0)); then
            result W4s "p50 $s50 / p99 $s99 / max $smax ms late" "" "" "p99 <= 5 ms" "$sn of $W4S_JOBS jobs; run_at -> exec handler start"
        else
            result W4s "n/a (no handler start recorded)" "" "" "p99 <= 5 ms"
        fi
        stop_pid "$RUNNER_PID"
        extra w4_ms "{\"p50\": $p50, \"p95\": $p95, \"p99\": $p99, \"max\": $pmax, \"n\": $n}"
        extra w4_notify_ms "{\"p50\": $w50, \"p95\": $w95, \"p99\": $w99, \"max\": $wmax, \"n\": $wn}"
        extra w4_claim_ms "{\"p50\": $c50, \"p95\": $c95, \"p99\": $c99, \"max\": $cmax, \"n\": $cn}"
        extra w4s_ms "{\"p50\": $s50, \"p95\": $s95, \"p99\": $s99, \"max\": $smax, \"n\": $sn}"
    else
        result W4 "n/a (runner failed to start with exec handlers)" "" "" "p50 <= 1, p99 <= 3 ms"
        result W4s "n/a (runner failed to start)" "" "" "p99 <= 5 ms"
    fi
    reset_tables
fi

# ================================================================ W4h
# W4's latency with the http handler: commit ack -> the request at a local
# HTTP server (a webhook handler's start), so no process spawn in between.
if ! selected W4h; then
    :
elif [[ -z $RUNNER || ! -x $TOOLS/slow_httpd || ! -x $TOOLS/producer ]]; then
    result W4h "n/a (runner, HTTP server or producer missing)" "" "" "p50 <= 1, p99 <= 3 ms"
else
    log "W4h latency, http handler: $W4_RATE jobs/s for ${W4_SECS}s"
    HSTAMPS=$WORK/w4h_stamps.txt
    : >"$HSTAMPS"
    start_httpd w4h_httpd 0 "$HSTAMPS"
    if [[ -z $HPORT ]]; then
        result W4h "n/a (HTTP server did not start)" "" "" "p50 <= 1, p99 <= 3 ms"
    elif start_runner w4h "$(http_queue w4h 100)"; then
        sleep 1
        CONNINFO="host=$PGD port=$PORT dbname=$DB user=postgres"
        timeout $((W4_SECS + 60)) "$TOOLS/producer" latency "$CONNINFO" w4h "$W4_RATE" "$W4_SECS" "$WORK/w4h_commits.txt" "$WORK/w4h_notify.txt"
        nh=$(wc -l <"$WORK/w4h_commits.txt")
        wait_until 30 "SELECT count(*) >= $nh FROM jobq.archive WHERE queue = 'w4h'" || log "W4h: not every job finished in 30 s"
        stop_pid "$RUNNER_PID"
        awk 'NR == FNR { c[$1] = $2; next } ($1 in c) { printf "%.3f\n", ($2 - c[$1]) / 1e6 }' \
            "$WORK/w4h_commits.txt" "$HSTAMPS" >"$WORK/w4h_ms.txt"
        read -r h50 h95 h99 hmax hn <<<"$(percentiles "$WORK/w4h_ms.txt")"
        if ((hn > 0)); then
            result W4h "p50 $h50 / p95 $h95 / p99 $h99 / max $hmax ms" "" "" "p50 <= 1, p99 <= 3 ms" \
                "$hn of $nh jobs; commit ack -> the webhook request at a local HTTP server (http handler, keep-alive connections)"
            extra w4h_ms "{\"p50\": $h50, \"p95\": $h95, \"p99\": $h99, \"max\": $hmax, \"n\": $hn}"
        else
            result W4h "n/a (no request recorded)" "" "" "p50 <= 1, p99 <= 3 ms"
        fi
    else
        result W4h "n/a (runner failed to start with the http handler)" "" "" "p50 <= 1, p99 <= 3 ms"
    fi
    stop_pid "$HTTPD_PID" 5
    reset_tables
fi

# ================================================================ W6
if ! selected W6; then
    :
elif [[ -z $RUNNER || ! -x $TOOLS/slow_httpd ]]; then
    result W6 "n/a (runner or HTTP server missing)" "" "" "<= 1.5 s, <= 200 MB"
else
    log "W6 in flight: $W6_JOBS http jobs answered after 1 s, concurrency $W6_JOBS"
    start_httpd httpd 1000
    if [[ -z $HPORT ]]; then
        result W6 "n/a (HTTP server did not start)" "" "" "<= 1.5 s, <= 200 MB"
    elif start_runner w6 "$(http_queue w6 "$W6_JOBS")
timeout = \"30s\""; then
        sleep 1
        t0=$(now_ns)
        preload_jobq w6 "$W6_JOBS"
        t_commit=$(now_ns)
        if wait_until 90 "SELECT count(*) >= $W6_JOBS FROM jobq.archive WHERE queue = 'w6'"; then
            wall=$(q "SELECT round((extract(epoch FROM max(finished_at)) * 1e9 - $t_commit) / 1e9, 2) FROM jobq.archive WHERE queue = 'w6'")
            hwm=$(rss_hwm_mb "$RUNNER_PID")
            rcpu=$(awk -v t="$(proc_ticks "$RUNNER_PID")" -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')
            stop_pid "$HTTPD_PID" 5
            read -r _ hreq _ hfirst _ hlast <<<"$(tail -1 "$WORK/httpd.log")"
            W6_BREAK=$(q "SELECT format('claim transaction started +%s s, first request +%s s, last request +%s s, first completion +%s s, last completion +%s s; %s requests',
                             round((extract(epoch FROM min(attempted_at)) * 1e9 - $t_commit) / 1e9, 2),
                             round(($hfirst - $t_commit) / 1e9, 2), round(($hlast - $t_commit) / 1e9, 2),
                             round((extract(epoch FROM min(finished_at)) * 1e9 - $t_commit) / 1e9, 2),
                             round((extract(epoch FROM max(finished_at)) * 1e9 - $t_commit) / 1e9, 2), $hreq)
                           FROM jobq.archive WHERE queue = 'w6'" 2>/dev/null)
            result W6 "$wall s, runner peak RSS $hwm MB" "" "" "<= 1.5 s, <= 200 MB" \
                "from the enqueue commit (the enqueue of $W6_JOBS took $(awk -v a="$t0" -v b="$t_commit" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s) to the last completion: ${W6_BREAK:-n/a}; runner CPU ${rcpu}s"
        else
            done6=$(q "SELECT count(*) FROM jobq.archive WHERE queue = 'w6'")
            result W6 "n/a (only $done6 of $W6_JOBS completed in 90 s)" "" "" "<= 1.5 s, <= 200 MB" \
                "runner peak RSS $(rss_hwm_mb "$RUNNER_PID") MB; $(grep -c . "$WORK/runner-w6.log") runner log lines"
        fi
        stop_pid "$RUNNER_PID"
    else
        result W6 "n/a (runner failed to start with the http handler)" "" "" "<= 1.5 s, <= 200 MB"
    fi
    stop_pid "$HTTPD_PID" 5
fi

# ================================================================ report
MACHINE="$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load avg at end $(cut -d' ' -f1-3 /proc/loadavg)"
PGVER=$(q "SHOW server_version")
MODE=$([[ $QUICK == 1 ]] && echo quick || echo full)
{
    echo
    [[ -n $ONLY ]] && echo "PARTIAL RUN: only $ONLY (ONLY=)"
    echo "jobq bench ($MODE) — commit $COMMIT$([[ $DIRTY != 0 ]] && echo " (+$DIRTY modified tracked files in the tree)"), $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "PostgreSQL $PGVER; $MACHINE"
    echo
    printf '| %-4s | %s | %s | %s | %s |\n' id "jobq" "ceiling (same run)" ratio target
    printf '|---|---|---|---|---|\n'
    for id in "${ORDER[@]}"; do
        printf '| %-4s | %s | %s | %s | %s |\n' "$id" "${JOBQ[$id]}" "${CEIL[$id]:-—}" "${RATIO[$id]:-—}" "${TARGET[$id]}"
    done
    echo
    for id in "${ORDER[@]}"; do
        [[ -n ${NOTE[$id]} ]] && echo "- $id: ${NOTE[$id]}"
    done
    if [[ -n $W3_TOP ]]; then
        echo
        echo "W3 top statements (pg_stat_statements, first run):"
        sed 's/^/  /' <<<"$W3_TOP"
    fi
    if [[ -n $W3_PROFILE ]]; then
        echo
        echo "W3 profile (auto_explain in the runner's session, concurrency $W3_CONC, claim_batch 1000; durations include ANALYZE timing):"
        cut -c1-200 <<<"$W3_PROFILE" | grep -v '^\s*$' | sed 's/^/  /'
    fi
} | tee "$WORK/report.txt"

mkdir -p "$BENCH/results"
# A partial run is named as one, so it is never mistaken for a full table.
OUT=$BENCH/results/$(date -u +%Y%m%d-%H%M)-$COMMIT$([[ $QUICK == 1 ]] && echo -quick)$([[ -n $ONLY ]] && echo "-partial-${ONLY// /-}").json
{
    echo "{"
    echo "  \"mode\": \"$MODE\","
    echo "  \"only\": $(json_str "${ONLY:-all}"),"
    echo "  \"commit\": \"$COMMIT\","
    echo "  \"dirty_tracked_files\": $DIRTY,"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"machine\": $(json_str "$MACHINE"),"
    echo "  \"postgres\": $(json_str "$PGVER"),"
    echo "  \"settings\": \"shared_buffers=1GB max_connections=200 fsync=on synchronous_commit=on shared_preload_libraries=$PRELOAD\","
    echo "  \"workloads\": {"
    first=1
    for id in "${ORDER[@]}"; do
        ((first)) || echo ","
        first=0
        printf '    "%s": {"jobq": %s, "ceiling": %s, "ratio": %s, "target": %s, "note": %s}' "$id" \
            "$(json_str "${JOBQ[$id]}")" "$(json_str "${CEIL[$id]}")" "$(json_str "${RATIO[$id]}")" \
            "$(json_str "${TARGET[$id]}")" "$(json_str "${NOTE[$id]}")"
    done
    echo
    echo "  },"
    echo "  \"details\": {"
    first=1
    for e in "${EXTRA[@]}"; do
        ((first)) || echo ","
        first=0
        printf '    %s' "$e"
    done
    echo
    echo "  }"
    echo "}"
} >"$OUT"
log "results: $OUT"
