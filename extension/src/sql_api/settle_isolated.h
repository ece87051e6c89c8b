// Settle batches that isolate their jobs (complete, fail_many).
//
// A batch runs in one subtransaction. If it raises an ERROR that belongs to
// a job (a constraint of the archive, a user's trigger, bad data), the batch
// is rolled back and each job is settled again alone, in its own
// subtransaction: the good ones are applied, and a job that fails alone is
// reported with a WARNING (its SQLSTATE and message, naming the job id),
// left exactly as it was, and missing from the call's result, as a job
// whose token is stale would be. Errors that belong to the transaction or
// the server (cancel, timeout, serialization failure, deadlock, out of
// memory, shutdown, internal errors) are raised as they are.
//
// A call with one job has nothing to isolate: it runs without a
// subtransaction and raises its error, as before.
//
// C-style on purpose (see pg/guard.h and pg/subxact.h).
#pragma once

extern "C" {
#include "postgres.h"
}

namespace jobq::sql {

// settle(first, count) settles entries [first, first + count) of the
// call's arrays and emits their result rows; ids name the entries in the
// warning; verb says what did not happen ("completed", "failed").
void SettleIsolated(const int64 *ids, int n, const char *verb,
                    void (*settle)(void *context, int first, int count), void *context);

// An array of `count` elements from values/nulls starting at `first`
// (nulls may be null: no null elements).
Datum SliceArray(const Datum *values, const bool *nulls, int first, int count, Oid elemtype);

}  // namespace jobq::sql
