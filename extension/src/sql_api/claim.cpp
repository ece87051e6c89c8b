// claim: lease due jobs to a worker.
//
// One queue at a time (the runner's usual call, and each queue with a
// concurrency limit) takes the direct path of store/claim_direct.cpp. Several
// queues without a limit, which must be merged in claim order, or a
// jobq.job with rules of its user's take SQL:
//
// One statement per group of queues: a MATERIALIZED CTE picks candidates
// with FOR UPDATE SKIP LOCKED in claim order (priority, run_at, id) so the
// LIMIT is applied once and two claimers never share a job; the UPDATE
// counts the attempt and sets the lease, finding the rows by primary key
// ("= ANY (ARRAY(...))", not a join, which the planner hashes over the
// whole table).
//
// The claim statements are planned once per backend (a generic plan):
// planning them afresh took half of a one-job claim. A generic plan is
// built from the statistics of the moment, and on an empty or tiny table
// it reads the whole table for both the candidates and the update, a plan
// it would keep while the backlog grows to millions. jobq.claim therefore
// runs with enable_seqscan = off (its SET clause), which leaves the index
// plans as the only cheap ones at any size. All jobs of one call share a fresh
// lease token; a settle names (id, token), so the pair is unique per claim.
//
// Queues with a concurrency limit are claimed one at a time under a row
// lock on the queue, which serialises only claimers of that queue, so the
// count of running jobs cannot be raced past the limit. Claim is meant to
// run in its own READ COMMITTED transaction (as runners call it): an older
// snapshot would neither see newly due jobs nor count fresh claims.
//
// The statements are in statements.cpp.
#include "core/validate.h"
#include "pg/guard.h"
#include "pg/spi.h"
#include "sql_api/args.h"
#include "sql_api/statements.h"
#include "store/claim_direct.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
}

namespace {

namespace stmt = jobq::sql::stmt;

constexpr int kClaimColumns = 12;

// Claims from `queues` and appends the rows; returns rows claimed. One
// queue takes the direct path (claim_direct.cpp), leased for `lease` or,
// without one, the queue's `queue_lease`; several queues, or a jobq.job
// with rules of its user's, the SQL statement.
int ClaimFrom(FunctionCallInfo fcinfo, const char **queues, int n_queues, Datum worker,
              char worker_null, int limit, Datum lease, char lease_null, Datum queue_lease) {
    if (n_queues == 1) {
        int claimed = jobq::store::ClaimDirect(fcinfo, CStringGetTextDatum(queues[0]), worker,
                                               lease_null == 'n' ? queue_lease : lease, limit);
        if (claimed >= 0) return claimed;
    }
    Datum first = n_queues == 1 ? CStringGetTextDatum(queues[0])
                                : PointerGetDatum(jobq::pg::MakeTextArray(queues, n_queues));
    Datum values[4] = {first, worker, Int32GetDatum(limit), lease};
    char nulls[5] = {' ', worker_null, ' ', lease_null, '\0'};
    // jobq.claim's own result type says which SQL is installed: ten columns
    // under 0.1.0's (no progress or saved_state), twelve since 0.2.0.
    int columns = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo)->setDesc->natts;
    bool sql_0_1_0 = columns < kClaimColumns;
    if (sql_0_1_0)
        jobq::pg::ExecPlan(
            n_queues == 1 ? &stmt::claim_one_queue_sql_0_1_0 : &stmt::claim_jobs_sql_0_1_0, values,
            nulls, false);
    else
        jobq::pg::ExecPlan(n_queues == 1 ? &stmt::claim_one_queue : &stmt::claim_jobs, values,
                           nulls, false);
    uint64 claimed = SPI_processed;
    for (uint64 row = 0; row < claimed; ++row) {
        Datum out[kClaimColumns] = {0};
        bool out_nulls[kClaimColumns] = {false};
        for (int col = 0; col < (sql_0_1_0 ? columns : kClaimColumns); ++col)
            out[col] = jobq::pg::ResultValue(row, col + 1, &out_nulls[col]);
        jobq::pg::PutResultRow(fcinfo, out, out_nulls);
    }
    return static_cast<int>(claimed);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(jobq_claim);

// claim(queues text[], worker text, max_jobs int, lease interval) returns table
Datum jobq_claim(PG_FUNCTION_ARGS) {
    jobq::sql::RequireArg(fcinfo, 0, "queues");
    jobq::sql::RequireArg(fcinfo, 1, "worker");
    jobq::sql::RequireArg(fcinfo, 2, "max_jobs");
    // The worker name is stored on every claimed job and matched by the
    // rescuer; keep it a name, not a payload.
    const char *worker_name = jobq::sql::TextArg(fcinfo, 1);
    jobq::pg::CallCpp([&] { jobq::CheckWorkerName(worker_name); });
    ArrayType *queue_array = PG_GETARG_ARRAYTYPE_P(0);
    int32 max_jobs = PG_GETARG_INT32(2);
    bool has_lease = !PG_ARGISNULL(3);
    int64 lease_us = has_lease ? jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(3)) : 0;
    jobq::pg::CallCpp([&] {
        jobq::CheckClaimBatch(max_jobs);
        if (has_lease) jobq::CheckIntervalSetting("lease", lease_us);
    });

    Datum *names;
    bool *name_nulls;
    int requested = jobq::pg::DatumArrayElements(queue_array, TEXTOID, &names, &name_nulls);
    if (requested == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("queues must name at least one queue")));
    for (int i = 0; i < requested; ++i) {
        if (name_nulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("queues must not contain null elements")));
        const char *name = TextDatumGetCString(names[i]);
        jobq::pg::CallCpp([&] { jobq::CheckQueueName(name); });
    }

    jobq::pg::BeginMaterializedResult(fcinfo);
    Datum worker = PG_GETARG_DATUM(1);
    char worker_null = ' ';
    Datum lease = has_lease ? PG_GETARG_DATUM(3) : 0;
    char lease_null = has_lease ? ' ' : 'n';

    SPI_connect();
    Datum info_args[1] = {PointerGetDatum(queue_array)};
    jobq::pg::ExecPlan(&stmt::queues_info, info_args, nullptr, true);
    uint64 known = SPI_processed;
    const char **unlimited = static_cast<const char **>(palloc(sizeof(char *) * (known + 1)));
    const char **limited = static_cast<const char **>(palloc(sizeof(char *) * (known + 1)));
    Datum unlimited_lease = 0;  // of the first: the direct path claims one queue alone
    int n_unlimited = 0, n_limited = 0;
    for (uint64 row = 0; row < known; ++row) {
        bool isnull;
        char *name = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1);
        bool paused = DatumGetBool(jobq::pg::ResultValue(row, 2, &isnull));
        jobq::pg::ResultValue(row, 3, &isnull);
        if (paused) continue;
        if (isnull) {
            // Copied: the SPI result goes when the next statement runs.
            if (n_unlimited == 0)
                unlimited_lease =
                    datumCopy(jobq::pg::ResultValue(row, 4, &isnull), false, sizeof(Interval));
            unlimited[n_unlimited++] = name;
        } else
            limited[n_limited++] = name;
    }
    // Every requested name must exist (a typo would otherwise idle silently).
    for (int i = 0; i < requested; ++i) {
        const char *name = TextDatumGetCString(names[i]);
        bool exists = false;
        for (uint64 row = 0; row < known && !exists; ++row)
            exists =
                strcmp(SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1), name) == 0;
        if (!exists)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("queue \"%s\" does not exist", name)));
    }

    int remaining = max_jobs;
    if (n_unlimited > 0)
        remaining -= ClaimFrom(fcinfo, unlimited, n_unlimited, worker, worker_null, remaining,
                               lease, lease_null, unlimited_lease);
    for (int i = 0; i < n_limited && remaining > 0; ++i) {
        Datum lock_args[1] = {CStringGetTextDatum(limited[i])};
        jobq::pg::ExecPlan(&stmt::lock_limited_queue, lock_args, nullptr, false);
        if (SPI_processed != 1) continue;  // paused or dropped meanwhile
        bool isnull;
        Datum concurrency = jobq::pg::ResultValue(0, 1, &isnull);
        if (isnull) continue;  // limit removed meanwhile; claimed next call
        int64 limit_total = DatumGetInt32(concurrency);
        Datum queue_lease =
            datumCopy(jobq::pg::ResultValue(0, 2, &isnull), false, sizeof(Interval));
        jobq::pg::ExecPlan(&stmt::count_running, lock_args, nullptr, false);
        int64 free_slots = limit_total - DatumGetInt64(jobq::pg::ResultValue(0, 1, &isnull));
        if (free_slots <= 0) continue;
        int limit = free_slots < remaining ? static_cast<int>(free_slots) : remaining;
        remaining -= ClaimFrom(fcinfo, &limited[i], 1, worker, worker_null, limit, lease,
                               lease_null, queue_lease);
    }
    SPI_finish();
    return static_cast<Datum>(0);
}

}  // extern "C"
