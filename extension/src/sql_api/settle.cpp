// Settle calls of the worker protocol: complete, fail, fail_many, heartbeat,
// snooze, set_progress, release.
//
// Every statement is fenced by the claim's lease token: a call from a runner
// whose lease was rescued, re-claimed, cancelled or settled elsewhere
// matches no row and changes nothing. Each call reports the jobs it
// applied, so the caller learns which were stale.
//
// "lease_token = token" alone implies state = 'running' (CHECK constraint
// job_row_valid), and the batch statements deliberately leave the
// state test out: with it, the planner matches the small partial index on
// running jobs, estimates one row from stale statistics, and joins the
// batch with a nested loop that is quadratic in its size. The redundant
// "j.id = ANY($1)" lets the primary key bound the rows read to the batch,
// whatever the size of the backlog.
#include "core/validate.h"
#include "pg/guard.h"
#include "pg/settings.h"
#include "pg/spi.h"
#include "sql_api/args.h"
#include "sql_api/settle_isolated.h"
#include "sql_api/statements.h"
#include "store/complete_direct.h"
#include "worker/wakeup.h"

extern "C" {
#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace {

namespace stmt = jobq::sql::stmt;

// Checks that the optional parallel array argument `n` has `expected`
// elements (NULL is allowed: "none given"); its elements into *values and
// *nulls when asked for (left alone for NULL).
void CheckParallelArray(FunctionCallInfo fcinfo, int n, const char *what, int expected,
                        Oid elemtype, Datum **values_out = nullptr, bool **nulls_out = nullptr) {
    if (PG_ARGISNULL(n)) return;
    Datum *values;
    bool *nulls;
    int count = jobq::pg::DatumArrayElements(PG_GETARG_ARRAYTYPE_P(n), elemtype, &values, &nulls);
    jobq::pg::CallCpp([&] { jobq::CheckSameLength(what, expected, count); });
    if (values_out != nullptr) *values_out = values;
    if (nulls_out != nullptr) *nulls_out = nulls;
}

// Reads ids and tokens (arguments 0 and 1) and checks they pair up.
int ReadIdsAndTokens(FunctionCallInfo fcinfo, int64 **out_ids = nullptr,
                     int64 **out_tokens = nullptr) {
    jobq::sql::RequireArg(fcinfo, 0, "ids");
    jobq::sql::RequireArg(fcinfo, 1, "tokens");
    int64 *ids;
    int64 *tokens;
    int n = jobq::pg::BigintArrayElements(PG_GETARG_ARRAYTYPE_P(0), "ids", &ids);
    int m = jobq::pg::BigintArrayElements(PG_GETARG_ARRAYTYPE_P(1), "tokens", &tokens);
    jobq::pg::CallCpp([&] { jobq::CheckSameLength("tokens", n, m); });
    if (out_ids != nullptr) *out_ids = ids;
    if (out_tokens != nullptr) *out_tokens = tokens;
    return n;
}

// Argument n, unless NULL, within the bounds of the interval setting `what`.
void CheckInterval(FunctionCallInfo fcinfo, int n, const char *what) {
    if (PG_ARGISNULL(n)) return;
    int64 us = jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(n));
    jobq::pg::CallCpp([&] { jobq::CheckIntervalSetting(what, us); });
}

// Wakes the queues of the rows in SPI_tuptable (queue, run_at columns).
void NoteWakeups(int queue_col, int run_at_col) {
    for (uint64 row = 0; row < SPI_processed; ++row) {
        bool isnull;
        char *queue = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, queue_col);
        TimestampTz run_at = DatumGetTimestampTz(jobq::pg::ResultValue(row, run_at_col, &isnull));
        jobq_note_wakeup(queue, run_at);
    }
}

// Shared body of fail and fail_many: runs fail_jobs on array arguments.
// Emits (id, state) rows through `emit`.
template <typename Emit>
void RunFail(Datum ids, Datum tokens, Datum errors, Datum retry_in, char retry_null, Datum discard,
             char discard_null, Emit emit) {
    Datum values[5] = {ids, tokens, errors, retry_in, discard};
    char nulls[6] = {' ', ' ', ' ', retry_null, discard_null, '\0'};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::fail_jobs, values, nulls, false);
    for (uint64 row = 0; row < SPI_processed; ++row) {
        bool isnull;
        Datum out[2] = {jobq::pg::ResultValue(row, 1, &isnull),
                        jobq::pg::ResultValue(row, 2, &isnull)};
        emit(out);
    }
    NoteWakeups(3, 4);
    SPI_finish();
}

Datum SingletonArray(Datum value, Oid type) {
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
    return PointerGetDatum(construct_array(&value, 1, type, typlen, typbyval, typalign));
}

// ints[first .. first + count) as a bigint[].
Datum BigintSlice(const int64 *ints, int first, int count) {
    Datum *datums = static_cast<Datum *>(palloc(sizeof(Datum) * (count + 1)));
    for (int k = 0; k < count; ++k) datums[k] = Int64GetDatum(ints[first + k]);
    return jobq::sql::SliceArray(datums, nullptr, 0, count, INT8OID);
}

// One call of complete: its arguments, read once.
struct CompleteCall {
    FunctionCallInfo fcinfo;
    int64 *ids;
    int64 *tokens;
    Datum *results;  // null: no results given
    bool *result_nulls;
    int n;
};

// Completes entries [first, first + count) of a complete call and emits
// their ids (for SettleIsolated).
void CompleteEntries(void *context, int first, int count) {
    CompleteCall *call = static_cast<CompleteCall *>(context);
    FunctionCallInfo fcinfo = call->fcinfo;
    Datum *results = call->results != nullptr ? call->results + first : nullptr;
    bool *result_nulls = call->results != nullptr ? call->result_nulls + first : nullptr;
    if (jobq::store::CompleteDirect(fcinfo, call->ids + first, call->tokens + first, count, results,
                                  result_nulls) >= 0)
        return;
    // jobq.job or jobq.archive with rules of its user's: the SQL applies them.
    bool whole = first == 0 && count == call->n;
    Datum values[3];
    if (whole) {
        values[0] = PG_GETARG_DATUM(0);
        values[1] = PG_GETARG_DATUM(1);
        values[2] = PG_ARGISNULL(2) ? 0 : PG_GETARG_DATUM(2);
    } else {
        values[0] = BigintSlice(call->ids, first, count);
        values[1] = BigintSlice(call->tokens, first, count);
        values[2] = results != nullptr ? jobq::sql::SliceArray(call->results, call->result_nulls,
                                                               first, count, JSONBOID)
                                       : 0;
    }
    char nulls[4] = {' ', ' ', results == nullptr ? 'n' : ' ', '\0'};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::complete_jobs, values, nulls, false);
    for (uint64 row = 0; row < SPI_processed; ++row) {
        bool isnull;
        Datum id = jobq::pg::ResultValue(row, 1, &isnull);
        jobq::pg::PutResultRow(fcinfo, &id, &isnull);
    }
    SPI_finish();
}

// One call of fail_many: its arguments, read once (null arrays: not given).
struct FailManyCall {
    FunctionCallInfo fcinfo;
    int64 *ids;
    int64 *tokens;
    Datum *errors;
    bool *error_nulls;
    Datum *retry_in;
    bool *retry_nulls;
    Datum *discard;
    bool *discard_nulls;
    int n;
};

// Fails entries [first, first + count) of a fail_many call and emits their
// (id, state) rows (for SettleIsolated).
void FailManyEntries(void *context, int first, int count) {
    FailManyCall *call = static_cast<FailManyCall *>(context);
    FunctionCallInfo fcinfo = call->fcinfo;
    auto emit = [&](Datum *out) {
        bool nulls[2] = {false, false};
        jobq::pg::PutResultRow(fcinfo, out, nulls);
    };
    if (first == 0 && count == call->n) {
        RunFail(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2),
                PG_ARGISNULL(3) ? 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3) ? 'n' : ' ',
                PG_ARGISNULL(4) ? 0 : PG_GETARG_DATUM(4), PG_ARGISNULL(4) ? 'n' : ' ', emit);
        return;
    }
    using jobq::sql::SliceArray;
    RunFail(
        BigintSlice(call->ids, first, count), BigintSlice(call->tokens, first, count),
        SliceArray(call->errors, call->error_nulls, first, count, TEXTOID),
        call->retry_in ? SliceArray(call->retry_in, call->retry_nulls, first, count, INTERVALOID)
                       : 0,
        call->retry_in ? ' ' : 'n',
        call->discard ? SliceArray(call->discard, call->discard_nulls, first, count, BOOLOID) : 0,
        call->discard ? ' ' : 'n', emit);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(jobq_complete);
PG_FUNCTION_INFO_V1(jobq_fail);
PG_FUNCTION_INFO_V1(jobq_fail_many);
PG_FUNCTION_INFO_V1(jobq_heartbeat);
PG_FUNCTION_INFO_V1(jobq_snooze);
PG_FUNCTION_INFO_V1(jobq_set_progress);
PG_FUNCTION_INFO_V1(jobq_release);

// complete(ids bigint[], tokens bigint[], results jsonb[]) returns setof bigint
Datum jobq_complete(PG_FUNCTION_ARGS) {
    CompleteCall call{fcinfo, nullptr, nullptr, nullptr, nullptr, 0};
    call.n = ReadIdsAndTokens(fcinfo, &call.ids, &call.tokens);
    CheckParallelArray(fcinfo, 2, "results", call.n, JSONBOID, &call.results, &call.result_nulls);
    jobq::pg::BeginMaterializedResult(fcinfo);
    jobq::sql::SettleIsolated(call.ids, call.n, "completed", CompleteEntries, &call);
    return static_cast<Datum>(0);
}

// fail(id, token, error, retry_in, discard) returns text (new state or NULL)
Datum jobq_fail(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "id");
    jobq::sql::RequireArg(fcinfo, 1, "token");
    CheckInterval(fcinfo, 3, "retry_in");
    bool discard = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
    Datum error = PG_ARGISNULL(2) ? CStringGetTextDatum("unknown error") : PG_GETARG_DATUM(2);
    text *state = nullptr;
    RunFail(SingletonArray(PG_GETARG_DATUM(0), INT8OID),
            SingletonArray(PG_GETARG_DATUM(1), INT8OID), SingletonArray(error, TEXTOID),
            PG_ARGISNULL(3) ? 0 : SingletonArray(PG_GETARG_DATUM(3), INTERVALOID),
            PG_ARGISNULL(3) ? 'n' : ' ', SingletonArray(BoolGetDatum(discard), BOOLOID), ' ',
            [&](Datum *out) {
                // Copy out of SPI memory before SPI_finish frees it.
                state = static_cast<text *>(SPI_palloc(VARSIZE_ANY(DatumGetPointer(out[1]))));
                memcpy(state, DatumGetPointer(out[1]), VARSIZE_ANY(DatumGetPointer(out[1])));
            });
    if (state == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(state);
}

// fail_many(ids, tokens, errors, retry_in interval[], discard boolean[])
//   returns table (id bigint, state text)
Datum jobq_fail_many(PG_FUNCTION_ARGS) {
    FailManyCall call{};
    call.fcinfo = fcinfo;
    call.n = ReadIdsAndTokens(fcinfo, &call.ids, &call.tokens);
    jobq::sql::RequireArg(fcinfo, 2, "errors");
    CheckParallelArray(fcinfo, 2, "errors", call.n, TEXTOID, &call.errors, &call.error_nulls);
    CheckParallelArray(fcinfo, 3, "retry_in", call.n, INTERVALOID, &call.retry_in,
                       &call.retry_nulls);
    CheckParallelArray(fcinfo, 4, "discard", call.n, BOOLOID, &call.discard, &call.discard_nulls);
    for (int i = 0; call.retry_in != nullptr && i < call.n; ++i) {
        if (call.retry_nulls[i]) continue;
        int64 us = jobq::sql::IntervalMicros(DatumGetIntervalP(call.retry_in[i]));
        jobq::pg::CallCpp([&] { jobq::CheckIntervalSetting("retry_in", us); });
    }
    jobq::pg::BeginMaterializedResult(fcinfo);
    jobq::sql::SettleIsolated(call.ids, call.n, "failed", FailManyEntries, &call);
    return static_cast<Datum>(0);
}

// heartbeat(ids, tokens, lease) returns table (id bigint, lease_expires_at timestamptz)
Datum jobq_heartbeat(PG_FUNCTION_ARGS) {
    ReadIdsAndTokens(fcinfo);
    CheckInterval(fcinfo, 2, "lease");
    jobq::pg::BeginMaterializedResult(fcinfo);
    Datum values[3] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
                       PG_ARGISNULL(2) ? 0 : PG_GETARG_DATUM(2)};
    char nulls[4] = {' ', ' ', PG_ARGISNULL(2) ? 'n' : ' ', '\0'};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::heartbeat_jobs, values, nulls, false);
    for (uint64 row = 0; row < SPI_processed; ++row) {
        Datum out[2];
        bool out_nulls[2];
        out[0] = jobq::pg::ResultValue(row, 1, &out_nulls[0]);
        out[1] = jobq::pg::ResultValue(row, 2, &out_nulls[1]);
        jobq::pg::PutResultRow(fcinfo, out, out_nulls);
    }
    SPI_finish();
    return static_cast<Datum>(0);
}

// snooze(id, token, delay) returns boolean
Datum jobq_snooze(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "id");
    jobq::sql::RequireArg(fcinfo, 1, "token");
    jobq::sql::RequireArg(fcinfo, 2, "delay");
    CheckInterval(fcinfo, 2, "delay");
    Datum values[3] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::snooze_job, values, nullptr, false);
    bool applied = SPI_processed == 1;
    NoteWakeups(1, 2);
    SPI_finish();
    PG_RETURN_BOOL(applied);
}

// set_progress(id, token, progress) returns boolean
Datum jobq_set_progress(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "id");
    jobq::sql::RequireArg(fcinfo, 1, "token");
    jobq::sql::RequireArg(fcinfo, 2, "progress");
    Size bytes = toast_raw_datum_size(PG_GETARG_DATUM(2)) - VARHDRSZ;
    jobq::pg::CallCpp([&] {
        jobq::CheckPayloadSize(bytes, static_cast<std::size_t>(jobq::pg::max_payload_size));
    });
    Datum values[3] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::set_progress_job, values, nullptr, false);
    bool applied = SPI_processed == 1;
    SPI_finish();
    PG_RETURN_BOOL(applied);
}

// release(ids, tokens) returns setof bigint
Datum jobq_release(PG_FUNCTION_ARGS) {
    ReadIdsAndTokens(fcinfo);
    jobq::pg::BeginMaterializedResult(fcinfo);
    Datum values[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
    SPI_connect();
    jobq::pg::ExecPlan(&stmt::release_jobs, values, nullptr, false);
    for (uint64 row = 0; row < SPI_processed; ++row) {
        bool isnull;
        Datum id = jobq::pg::ResultValue(row, 1, &isnull);
        jobq::pg::PutResultRow(fcinfo, &id, &isnull);
    }
    NoteWakeups(2, 3);
    SPI_finish();
    return static_cast<Datum>(0);
}

}  // extern "C"
