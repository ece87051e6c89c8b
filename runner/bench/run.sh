#!/usr/bin/env bash
# Runner benchmarks (measured, never asserted):
#   1. noop drain: N jobs (default 100000) with the noop handler; jobs/s and
#      CPU seconds of the runner and of its database backends.
#   2. http in flight: M jobs (default 10000) at concurrency M against
#      slow_http_server answering after 1 s; wall time and peak RSS.
# Usage: runner/bench/run.sh [DSN]   (default: PG* variables; the database
# needs CREATE EXTENSION jobq and a role allowed to create queues).
# Queues bench_noop / bench_http are created if missing. Local only: the
# receiver binds 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/runner/build}
DSN=${1:-}
NOOP_JOBS=${NOOP_JOBS:-100000}
HTTP_JOBS=${HTTP_JOBS:-10000}
PORT=${PORT:-18080}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

psql_q() { psql -X -q -A -t -d "$DSN" -v ON_ERROR_STOP=1 -c "$1"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

psql_q "SELECT jobq.create_queue('bench_noop', if_not_exists => true)" >/dev/null
psql_q "SELECT jobq.create_queue('bench_http', lease => '1 minute', if_not_exists => true)" >/dev/null

enqueue() {  # queue count
    psql_q "SELECT count(*) FROM (SELECT jobq.enqueue_many('$1', array_agg(jsonb_build_object('n', g))) FROM generate_series(1, $2) g) x" >/dev/null
}
wait_drained() {  # queue
    while [[ $(psql_q "SELECT count(*) FROM jobq.job WHERE queue = '$1'") != 0 ]]; do sleep 0.05; done
}
backend_ticks() {
    local total=0 pid
    for pid in $(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'jobq-runner'"); do
        [[ -r /proc/$pid/stat ]] && total=$((total + $(ticks "$pid")))
    done
    echo "$total"
}

# 1. noop drain
cat >"$WORK/noop.toml" <<TOML
[database]
dsn = "$DSN"
[queues.bench_noop]
handler = "noop"
concurrency = 1000
TOML
enqueue bench_noop "$NOOP_JOBS"
start=$(date +%s.%N)
"$BUILD/jobq-runner" --config "$WORK/noop.toml" 2>"$WORK/noop.log" &
runner=$!
sleep 0.2
pg_ticks=$(backend_ticks)
wait_drained bench_noop
end=$(date +%s.%N)
pg_ticks=$(($(backend_ticks) - pg_ticks))
runner_ticks=$(ticks "$runner")
kill -TERM "$runner"
wait "$runner" || true
awk -v n="$NOOP_JOBS" -v s="$start" -v e="$end" -v rt="$runner_ticks" -v pt="$pg_ticks" -v hz="$hz" 'BEGIN {
    printf "noop drain: %d jobs in %.2f s = %.0f jobs/s; CPU runner %.2f s, its postgres backends %.2f s (after the first 0.2 s)\n",
        n, e - s, n / (e - s), rt / hz, pt / hz }'

# 2. http in flight
"$BUILD/jobq-runner-bench-server" "$PORT" 1000 >"$WORK/server.out" 2>&1 &
server=$!
sleep 0.3
cat >"$WORK/http.toml" <<TOML
[database]
dsn = "$DSN"
[queues.bench_http]
handler = "http"
url = "http://127.0.0.1:$PORT/hook"
secret = "bench"
concurrency = $HTTP_JOBS
timeout = "30s"
TOML
enqueue bench_http "$HTTP_JOBS"
start=$(date +%s.%N)
"$BUILD/jobq-runner" --config "$WORK/http.toml" 2>"$WORK/http.log" &
runner=$!
wait_drained bench_http
end=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$runner/status")
kill -TERM "$runner"
wait "$runner" || true
kill -TERM "$server"
wait "$server" || true
awk -v n="$HTTP_JOBS" -v s="$start" -v e="$end" -v rss="$rss" 'BEGIN {
    printf "http in flight: %d jobs against a 1 s receiver in %.2f s wall (runner start to last completion), peak RSS %.0f MB\n",
        n, e - s, rss / 1024 }'
grep -h received "$WORK/server.out" || true
