// What enqueue (enqueue.cpp) and enqueue_many (enqueue_many.cpp) share.
// The keyless common path writes through store/job_insert.h; the rest runs
// SQL.
//
// C-style on purpose: these call Postgres functions that can ereport (see
// pg/guard.h). The SPI helpers expect SPI_connect() by the caller.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "datatype/timestamp.h"
}

namespace jobq::sql {

// Arguments of both forms after the queue and payload(s), validated.
struct EnqueueArgs {
    char *queue;
    Datum run_at;
    char run_at_null;
    int16 priority;
    Datum max_attempts;
    char max_attempts_null;
};

// Reads queue (argument 0) and run_at, priority, max_attempts (arguments
// run_at_arg .. run_at_arg + 2); raises on bad input.
void ReadCommonArgs(FunctionCallInfo fcinfo, int run_at_arg, EnqueueArgs *args);

// The jobs' run_at: the one given, or the transaction's now().
TimestampTz RunAt(const EnqueueArgs &args);

// Raises unless the jsonb payload fits jobq.max_payload_size.
void CheckPayload(Datum payload);

void RaiseUnknownQueue(const char *queue);

// Raises "queue does not exist" unless the queue (a text Datum) exists.
void RequireQueue(Datum queue_text, const char *queue);

struct InsertedJob {
    int64 id;
    TimestampTz run_at;
    bool inserted;  // false: an unfinished job with the key was returned
};

// Jobs without a unique key, inserted without SPI (store/job_insert.h;
// the caller must not be inside SPI_connect): ids[] in payload order.
// Raises for an unknown queue. False, having inserted nothing, when
// jobq.job carries rules jobq did not put there: the caller then runs a
// planned INSERT, which applies them.
bool InsertDirect(const EnqueueArgs &args, Datum queue_text, const Datum *payloads, int n,
                  int64 *ids);

// One job with a unique key, keep mode: inserts it unless an unfinished job
// holds the key, whose id is returned then. values/nulls: queue, payload,
// priority, run_at, max_attempts, unique_key. False when the key kept
// changing hands under concurrent commits (the caller raises).
bool InsertKeep(const char *queue, Datum *values, const char *nulls, InsertedJob *out);

}  // namespace jobq::sql
