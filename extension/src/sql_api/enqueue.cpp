// enqueue: insert a job into the hot table inside the caller's
// transaction, and note the queue for a wake-up at commit. Also the pieces
// enqueue_many shares (enqueue.h).
//
// Unique keys: the partial unique index on (queue, unique_key) holds
// exactly the unfinished jobs, so INSERT ... ON CONFLICT makes
// deduplication race-free between producers. Modes:
//   keep      an unfinished job with the key wins; its id is returned
//   replace   a waiting job with the key takes the new payload, priority,
//             run_at and max_attempts
//   debounce  a waiting job with the key takes the new payload and has its
//             run_at pushed to now() + debounce
// A running job cannot be changed under its runner: replace and debounce
// detach the key from it and insert a new job.
//
// unique_window (keep only): a job with the key that completed less than
// the window ago also wins. The new job is inserted first and withdrawn if
// such a completion is found: a job completes by moving from jobq.job to
// jobq.archive in one transaction, and the insert waits for that
// transaction when it conflicts with the job, so the archive lookup after
// it cannot miss a completion that the insert did not see.
#include <string>

#include "core/validate.h"
#include "pg/guard.h"
#include "pg/owner_rights.h"
#include "pg/settings.h"
#include "pg/spi.h"
#include "sql_api/args.h"
#include "sql_api/statements.h"
#include "sql_api/enqueue.h"
#include "store/job_insert.h"
#include "worker/wakeup.h"

extern "C" {
#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

namespace {

using jobq::pg::PlanSlot;

namespace stmt = jobq::sql::stmt;

// Attempts before giving up on a key that keeps changing under us (each
// round loses only to a concurrent commit, so more than a few is unheard of).
constexpr int kUniqueRounds = 10;

// The insert loop of one job: `insert` is one of the INSERT plans above
// (values/nulls as in statements.h). With a key, a lost race against a
// concurrent commit is retried: keep then finds the job that holds the
// key, replace and debounce take the key off a running job.
bool InsertOne(PlanSlot *insert, jobq::UniqueMode mode, bool has_key, const char *queue,
               Datum *values, const char *nulls, jobq::sql::InsertedJob *out) {
    for (int round = 0; round < kUniqueRounds; ++round) {
        jobq::pg::ExecPlan(insert, values, nulls, false);
        bool found = SPI_processed == 1;
        out->inserted = found;
        if (!found && has_key && mode == jobq::UniqueMode::kKeep) {
            Datum key_values[2] = {values[0], values[5]};
            jobq::pg::ExecPlan(&stmt::find_by_key, key_values, nullptr, false);
            found = SPI_processed == 1;
        } else if (!found && has_key) {
            Datum key_values[2] = {values[0], values[5]};
            jobq::pg::ExecPlan(&stmt::detach_key, key_values, nullptr, false);
        }
        if (found) {
            bool isnull;
            out->id = DatumGetInt64(jobq::pg::ResultValue(0, 1, &isnull));
            out->run_at = DatumGetTimestampTz(jobq::pg::ResultValue(0, 2, &isnull));
            return true;
        }
        // No row (and no job with the key): the queue may be missing.
        jobq::sql::RequireQueue(values[0], queue);
        // Without a key nothing conflicts: a trigger or rule ate the row.
        if (!has_key) return false;
    }
    return false;
}

}  // namespace

namespace jobq::sql {

void RaiseUnknownQueue(const char *queue) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("queue \"%s\" does not exist", queue),
                    errhint("Create it with jobq.create_queue().")));
}

void CheckPayload(Datum payload) {
    Size bytes = toast_raw_datum_size(payload) - VARHDRSZ;
    jobq::pg::CallCpp([&] {
        jobq::CheckPayloadSize(bytes, static_cast<std::size_t>(jobq::pg::max_payload_size));
    });
}

void ReadCommonArgs(FunctionCallInfo fcinfo, int run_at_arg, EnqueueArgs *args) {
    jobq::sql::RequireArg(fcinfo, 0, "queue");
    args->queue = jobq::sql::TextArg(fcinfo, 0);
    const char *queue = args->queue;
    int32 priority = PG_ARGISNULL(run_at_arg + 1) ? 0 : PG_GETARG_INT32(run_at_arg + 1);
    bool has_max = !PG_ARGISNULL(run_at_arg + 2);
    int32 max_attempts = has_max ? PG_GETARG_INT32(run_at_arg + 2) : 1;
    jobq::pg::CallCpp([&] {
        jobq::CheckQueueName(queue);
        jobq::CheckPriority(priority);
        if (has_max) jobq::CheckMaxAttempts(max_attempts);
    });
    args->run_at = PG_ARGISNULL(run_at_arg) ? 0 : PG_GETARG_DATUM(run_at_arg);
    args->run_at_null = PG_ARGISNULL(run_at_arg) ? 'n' : ' ';
    args->priority = static_cast<int16>(priority);
    args->max_attempts = Int32GetDatum(max_attempts);
    args->max_attempts_null = has_max ? ' ' : 'n';
}

TimestampTz RunAt(const EnqueueArgs &args) {
    return args.run_at_null == 'n' ? GetCurrentTransactionStartTimestamp()
                                   : DatumGetTimestampTz(args.run_at);
}

void RequireQueue(Datum queue_text, const char *queue) {
    Datum values[1] = {queue_text};
    // Not read-only: a fresh snapshot, like the INSERT's. The INSERT may have
    // waited for drop_queue's lock and found the queue gone; the caller's
    // older snapshot would still show it.
    jobq::pg::ExecPlan(&stmt::queue_exists, values, nullptr, false);
    if (SPI_processed == 0) RaiseUnknownQueue(queue);
}

bool InsertDirect(const EnqueueArgs &args, Datum queue_text, const Datum *payloads, int n,
                  int64 *ids) {
    jobq::store::NewJobs jobs{args.queue,
                              queue_text,
                              RunAt(args),
                              args.priority,
                              args.max_attempts_null != 'n',
                              DatumGetInt32(args.max_attempts)};
    jobq::store::InsertResult result = jobq::store::InsertJobs(jobs, payloads, n, ids);
    if (result == jobq::store::InsertResult::kNoQueue) RaiseUnknownQueue(args.queue);
    return result == jobq::store::InsertResult::kInserted;
}

bool InsertKeep(const char *queue, Datum *values, const char *nulls, InsertedJob *out) {
    return InsertOne(&stmt::insert_keep, jobq::UniqueMode::kKeep, true, queue, values, nulls, out);
}

}  // namespace jobq::sql

extern "C" {

PG_FUNCTION_INFO_V1(jobq_enqueue);

// enqueue(queue, payload, run_at, priority, max_attempts, unique_key,
//         unique_mode, debounce, unique_window) returns bigint
Datum jobq_enqueue(PG_FUNCTION_ARGS) {
    jobq::sql::EnqueueArgs args;
    jobq::sql::ReadCommonArgs(fcinfo, 2, &args);
    jobq::sql::RequireArg(fcinfo, 1, "payload");
    Datum payload = PG_GETARG_DATUM(1);
    jobq::sql::CheckPayload(payload);

    bool has_key = !PG_ARGISNULL(5);
    if (has_key) {
        // Before the index does: its own error names neither the argument nor the limit.
        Size key_bytes = toast_raw_datum_size(PG_GETARG_DATUM(5)) - VARHDRSZ;
        jobq::pg::CallCpp([&] { jobq::CheckUniqueKeyLength("unique_key", key_bytes); });
    }
    char *mode_text = PG_ARGISNULL(6) ? pstrdup("keep") : jobq::sql::TextArg(fcinfo, 6);
    bool has_debounce = !PG_ARGISNULL(7);
    int64 debounce_us = has_debounce ? jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(7)) : 0;
    // PG_NARGS: a database whose jobq functions were created by an older
    // build of the same version passes fewer arguments.
    bool has_window = PG_NARGS() > 8 && !PG_ARGISNULL(8);
    int64 window_us = has_window ? jobq::sql::IntervalMicros(PG_GETARG_INTERVAL_P(8)) : 0;
    bool has_run_at = args.run_at_null != 'n';
    // Every rule on the unique options, raised one way: as jobq::Error,
    // turned into an ERROR by the guard.
    jobq::UniqueMode mode = jobq::pg::CallCpp([&] {
        using jobq::Error;
        using jobq::sqlstate::kInvalidParameterValue;
        jobq::UniqueMode m = jobq::ParseUniqueMode(mode_text);
        if (m == jobq::UniqueMode::kDebounce && !has_debounce)
            throw Error(kInvalidParameterValue,
                        "unique_mode \"debounce\" requires a debounce interval");
        if (has_debounce && m != jobq::UniqueMode::kDebounce)
            throw Error(kInvalidParameterValue, "debounce requires unique_mode \"debounce\"");
        if (has_debounce) jobq::CheckIntervalSetting("debounce", debounce_us);
        if (has_window) {
            jobq::CheckIntervalSetting("unique_window", window_us);
            if (m != jobq::UniqueMode::kKeep)
                throw Error(kInvalidParameterValue, "unique_window requires unique_mode \"keep\"");
        }
        if (has_window && !has_key)
            throw Error(kInvalidParameterValue, "unique_window requires a unique_key");
        if (m != jobq::UniqueMode::kKeep && !has_key)
            throw Error(kInvalidParameterValue,
                        std::string("unique_mode \"") + mode_text + "\" requires a unique_key");
        if (m == jobq::UniqueMode::kDebounce && has_run_at)
            throw Error(kInvalidParameterValue, "run_at and debounce cannot be given together",
                        "A debounced job runs at now() + debounce.");
        return m;
    });
    if (mode == jobq::UniqueMode::kDebounce) {
        args.run_at = TimestampTzGetDatum(jobq::sql::NowPlus(PG_GETARG_INTERVAL_P(7)));
        args.run_at_null = ' ';
    }

    Datum queue_text = CStringGetTextDatum(args.queue);
    if (!has_key) {
        int64 id;
        if (jobq::sql::InsertDirect(args, queue_text, &payload, 1, &id)) {
            jobq_note_wakeup(args.queue, jobq::sql::RunAt(args));
            PG_RETURN_INT64(id);
        }
    }

    PlanSlot *insert = !has_key                              ? &stmt::insert_plain
                       : mode == jobq::UniqueMode::kReplace  ? &stmt::insert_replace
                       : mode == jobq::UniqueMode::kDebounce ? &stmt::insert_debounce
                                                             : &stmt::insert_keep;
    Datum values[6] = {queue_text,  payload,           Int16GetDatum(args.priority),
                       args.run_at, args.max_attempts, has_key ? PG_GETARG_DATUM(5) : 0};
    char nulls[7] = {' ', ' ', ' ', args.run_at_null, args.max_attempts_null, has_key ? ' ' : 'n',
                     '\0'};

    // The SQL paths run with the owner's rights (see pg/owner_rights.h).
    jobq::sql::InsertedJob job{};
    jobq::pg::SavedRights caller;
    jobq::pg::BeginOwnerRights(fcinfo, &caller);
    SPI_connect();
    bool found = InsertOne(insert, mode, has_key, args.queue, values, nulls, &job);
    int64 id = job.id;
    bool withdrawn = false;
    if (found && job.inserted && has_window) {
        Datum window_values[3] = {values[0], values[5], PG_GETARG_DATUM(8)};
        jobq::pg::ExecPlan(&stmt::completed_in_window, window_values, nullptr, false);
        if (SPI_processed == 1) {
            bool isnull;
            int64 completed_id = DatumGetInt64(jobq::pg::ResultValue(0, 1, &isnull));
            Datum withdraw_values[1] = {Int64GetDatum(id)};
            jobq::pg::ExecPlan(&stmt::withdraw_job, withdraw_values, nullptr, false);
            id = completed_id;
            withdrawn = true;
        }
    }
    SPI_finish();
    jobq::pg::EndOwnerRights(&caller);
    if (!found && !has_key)
        ereport(ERROR, (errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
                        errmsg("enqueue into queue \"%s\" inserted no job", args.queue),
                        errdetail("A trigger or rule on jobq.job suppressed the row.")));
    if (!found)
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not enqueue into queue \"%s\" with unique key: too many "
                               "concurrent changes to the key",
                               args.queue),
                        errhint("Retry the transaction.")));
    if (!withdrawn) jobq_note_wakeup(args.queue, job.run_at);
    PG_RETURN_INT64(id);
}

}  // extern "C"
