// SQL-callable functions of the worker part: cron helpers for the schedule
// functions, and jobq.worker_status().
//
// Cron parsing is pure C++ (core/cron.h) run through jobq::pg::CallCpp, so
// a parse error becomes an ERROR with SQLSTATE 22023 after the C++ scope has
// closed; everything else here is C-style Postgres code.
#include "core/cron.h"
#include "pg/guard.h"
#include "worker/gucs.h"
#include "worker/shmem.h"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
}

namespace {

struct CronResult {
    bool found;
    jobq::cron::CivilTime time;
};

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(jobq_check_cron);
PG_FUNCTION_INFO_V1(jobq_cron_next_local);
PG_FUNCTION_INFO_V1(jobq_worker_status);

// jobq._check_cron(cron text) RETURNS void
Datum jobq_check_cron(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("cron expression must not be null")));
    const char *expr = text_to_cstring(PG_GETARG_TEXT_PP(0));
    jobq::pg::CallCpp([&] { (void)jobq::cron::Parse(expr); });
    PG_RETURN_VOID();
}

// jobq._cron_next_local(cron text, after timestamp) RETURNS timestamp: the
// first wall-clock time strictly after `after` matching the expression, or
// NULL if none within ten years.
Datum jobq_cron_next_local(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_NULL();
    const char *expr = text_to_cstring(PG_GETARG_TEXT_PP(0));
    Timestamp after = PG_GETARG_TIMESTAMP(1);
    if (TIMESTAMP_NOT_FINITE(after)) PG_RETURN_NULL();
    struct pg_tm tm;
    fsec_t fsec;
    if (timestamp2tm(after, nullptr, &tm, &fsec, nullptr, nullptr) != 0)
        ereport(ERROR,
                (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
    jobq::cron::CivilTime civil = {tm.tm_year, tm.tm_mon, tm.tm_mday,
                                   tm.tm_hour, tm.tm_min, tm.tm_sec};
    CronResult r = jobq::pg::CallCpp([&] {
        auto next = jobq::cron::Next(jobq::cron::Parse(expr), civil);
        return next ? CronResult{true, *next} : CronResult{false, {}};
    });
    if (!r.found) PG_RETURN_NULL();
    memset(&tm, 0, sizeof tm);
    tm.tm_year = r.time.year;
    tm.tm_mon = r.time.month;
    tm.tm_mday = r.time.day;
    tm.tm_hour = r.time.hour;
    tm.tm_min = r.time.minute;
    tm.tm_sec = r.time.second;
    Timestamp result;
    if (tm2timestamp(&tm, 0, nullptr, &result) != 0) PG_RETURN_NULL();
    PG_RETURN_TIMESTAMP(result);
}

// jobq.worker_status(): one row about this database's worker.
Datum jobq_worker_status(PG_FUNCTION_ARGS) {
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        ereport(
            ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
             errmsg("function returning record called in context that cannot accept type record")));
    tupdesc = BlessTupleDesc(tupdesc);
    constexpr int kCols = 15;
    Datum values[kCols];
    bool nulls[kCols];
    for (int i = 0; i < kCols; ++i) {
        values[i] = 0;
        nulls[i] = true;
    }
    using namespace jobq::worker;
    const char *status;
    if (shared == nullptr) {
        status = "not running: jobq is not in shared_preload_libraries";
        values[0] = BoolGetDatum(false);
        nulls[0] = false;
    } else {
        DbSlot copy;
        bool have = false;
        pid_t launcher_pid;
        int handlers = 0;
        LWLockAcquire(shared->lock, LW_SHARED);
        launcher_pid = shared->launcher_pid;
        DbSlot *slot = FindSlot(MyDatabaseId);
        if (slot != nullptr) {
            memcpy(&copy, slot, sizeof copy);
            have = true;
        }
        LWLockRelease(shared->lock);
        bool running = have && copy.state == kSlotRunning && copy.pid != 0;
        if (have)
            for (auto &h : copy.handlers) handlers += h.pid != 0;
        if (running)
            status = "running";
        else if (launcher_pid == 0)
            status = "not running: the jobq launcher is not running";
        else if (have && copy.state == kSlotStarting)
            status = "starting";
        else if (have && copy.state == kSlotExited)
            status = "not running: restarting";
        else if (*database_names != '\0' && !have)
            status = "not running: database not listed in jobq.database_names";
        else
            status = "not running: waiting for the launcher";
        values[0] = BoolGetDatum(running);
        nulls[0] = false;
        if (running) {
            values[2] = Int32GetDatum(copy.pid);
            nulls[2] = false;
            values[4] = TimestampTzGetDatum(copy.started_at);
            nulls[4] = false;
            if (copy.last_tick != 0) {
                values[5] = TimestampTzGetDatum(copy.last_tick);
                nulls[5] = false;
            }
            values[6] = Int32GetDatum(handlers);
            nulls[6] = false;
            uint64 counters[] = {copy.wakeups_sent,      copy.jobs_rescued,
                                 copy.jobs_pruned,       copy.periodic_enqueued,
                                 copy.handler_completed, copy.handler_failed,
                                 copy.maintenance_errors};
            for (int i = 0; i < 7; ++i) {
                values[7 + i] = Int64GetDatum(static_cast<int64>(counters[i]));
                nulls[7 + i] = false;
            }
            values[14] = Int64GetDatum(copy.rescue_interval_ms);
            nulls[14] = false;
        }
        if (launcher_pid != 0) {
            values[3] = Int32GetDatum(launcher_pid);
            nulls[3] = false;
        }
    }
    values[1] = CStringGetTextDatum(status);
    nulls[1] = false;
    HeapTuple tuple = heap_form_tuple(tupdesc, values, nulls);
    PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

}  // extern "C"
