// producer: libpq load generator for benchmarks W4 and W4s. Records, per
// job, the wall-clock time (CLOCK_REALTIME, ns) the enqueue's commit was
// acknowledged (W4) or the job's run_at (W4s), for joining with the
// handler's start stamps.
//
//   producer latency CONNINFO QUEUE RATE SECONDS OUTFILE [NOTIFYFILE]
//       one jobq.enqueue per transaction (autocommit) at RATE/s for SECONDS;
//       writes "id commit_ns" per job. With NOTIFYFILE, a second connection
//       LISTENs on jobq_wakeup between sends and writes the arrival time of
//       every notification for QUEUE ("notify_ns").
//   producer sched CONNINFO QUEUE COUNT SPREAD_S LEAD_S OUTFILE
//       COUNT jobs in one transaction, job i due at
//       start + LEAD_S + i * SPREAD_S / COUNT; writes "id run_at_ns".
#include <libpq-fe.h>
#include <sys/select.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

long long NowNs() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void SleepUntil(long long ns) {
    timespec ts{static_cast<time_t>(ns / 1000000000LL), static_cast<long>(ns % 1000000000LL)};
    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, nullptr);
}

// Waits until `ns`, recording notifications for `queue` that arrive on
// `listener` (if any) meanwhile.
void WaitRecording(long long ns, PGconn *listener, const char *queue, FILE *out) {
    if (!listener) return SleepUntil(ns);
    int sock = PQsocket(listener);
    for (;;) {
        long long left = ns - NowNs();
        if (left <= 0) return;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(sock, &fds);
        timeval tv{static_cast<time_t>(left / 1000000000LL), static_cast<suseconds_t>((left % 1000000000LL) / 1000)};
        if (select(sock + 1, &fds, nullptr, nullptr, &tv) <= 0) continue;
        long long at = NowNs();
        PQconsumeInput(listener);
        while (PGnotify *n = PQnotifies(listener)) {
            if (std::strcmp(n->extra, queue) == 0) std::fprintf(out, "%lld\n", at);
            PQfreemem(n);
        }
    }
}

[[noreturn]] void Die(PGconn *c, const char *what) {
    std::fprintf(stderr, "producer: %s: %s\n", what, c ? PQerrorMessage(c) : "");
    std::exit(1);
}

PGresult *Exec(PGconn *c, const char *sql, int n, const char *const *vals) {
    PGresult *r = PQexecParams(c, sql, n, nullptr, vals, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) Die(c, sql);
    return r;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: see the header of bench/tools/producer.cpp\n");
        return 2;
    }
    std::string mode = argv[1];
    if (mode == "latency" && (argc == 7 || argc == 8)) {
        PGconn *c = PQconnectdb(argv[2]);
        if (PQstatus(c) != CONNECTION_OK) Die(c, "connect");
        const char *queue = argv[3];
        double rate = std::atof(argv[4]);
        double seconds = std::atof(argv[5]);
        FILE *out = std::fopen(argv[6], "w");
        if (!out) return 1;
        PGconn *listener = nullptr;
        FILE *notes = nullptr;
        if (argc == 8) {
            listener = PQconnectdb(argv[2]);
            if (PQstatus(listener) != CONNECTION_OK) Die(listener, "connect");
            PQclear(Exec(listener, "LISTEN jobq_wakeup", 0, nullptr));
            notes = std::fopen(argv[7], "w");
            if (!notes) return 1;
        }
        PGresult *p = PQprepare(c, "enq", "SELECT jobq.enqueue($1, $2::jsonb)", 2, nullptr);
        if (PQresultStatus(p) != PGRES_COMMAND_OK) Die(c, "prepare");
        PQclear(p);
        long long start = NowNs();
        long long step = static_cast<long long>(1e9 / rate);
        long n = static_cast<long>(rate * seconds);
        for (long i = 0; i < n; ++i) {
            WaitRecording(start + i * step, listener, queue, notes);
            std::string payload = "{\"user_id\": " + std::to_string(i) +
                                  ", \"action\": \"send_welcome_email\", \"template\": \"welcome-v2\", \"locale\": \"en-US\"}";
            const char *vals[2] = {queue, payload.c_str()};
            PGresult *r = PQexecPrepared(c, "enq", 2, vals, nullptr, nullptr, 0);
            long long committed = NowNs();
            if (PQresultStatus(r) != PGRES_TUPLES_OK) Die(c, "enqueue");
            std::fprintf(out, "%s %lld\n", PQgetvalue(r, 0, 0), committed);
            PQclear(r);
        }
        WaitRecording(NowNs() + 200000000LL, listener, queue, notes);  // the last ones
        std::fclose(out);
        if (notes) std::fclose(notes);
        if (listener) PQfinish(listener);
        PQfinish(c);
        return 0;
    }
    if (mode == "sched" && argc == 8) {
        PGconn *c = PQconnectdb(argv[2]);
        if (PQstatus(c) != CONNECTION_OK) Die(c, "connect");
        const char *queue = argv[3];
        long count = std::atol(argv[4]);
        double spread = std::atof(argv[5]);
        double lead = std::atof(argv[6]);
        FILE *out = std::fopen(argv[7], "w");
        if (!out) return 1;
        PQclear(Exec(c, "BEGIN", 0, nullptr));
        long long base = NowNs() + static_cast<long long>(lead * 1e9);
        for (long i = 0; i < count; ++i) {
            long long due = base + static_cast<long long>(spread * 1e9 * i / count);
            char at[64];
            std::snprintf(at, sizeof at, "%.6f", due / 1e9);
            std::string payload = "{\"user_id\": " + std::to_string(i) +
                                  ", \"action\": \"send_welcome_email\", \"template\": \"welcome-v2\", \"locale\": \"en-US\"}";
            const char *vals[3] = {queue, payload.c_str(), at};
            PGresult *r = Exec(c, "SELECT jobq.enqueue($1, $2::jsonb, run_at => to_timestamp($3::float8))", 3, vals);
            std::fprintf(out, "%s %lld\n", PQgetvalue(r, 0, 0), due);
            PQclear(r);
        }
        PQclear(Exec(c, "COMMIT", 0, nullptr));
        std::fclose(out);
        PQfinish(c);
        return 0;
    }
    std::fprintf(stderr, "producer: bad arguments\n");
    return 2;
}
