// The keyless enqueue's insert, straight into jobq.job without SPI
// (job_insert.cpp). Enqueue (sql_api/enqueue.cpp, enqueue_many.cpp)
// validates the arguments; this writes the rows.
//
// C-style on purpose: everything here can ereport (see pg/guard.h). The
// caller must not be inside SPI_connect.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

namespace jobq::store {

// What every job of one insert shares, validated by the caller.
struct NewJobs {
    const char *queue;   // the queue's name
    Datum queue_text;    // the same as text
    TimestampTz run_at;  // the run_at given, or the transaction's now()
    int16 priority;
    bool has_max_attempts;  // false: the queue's max_attempts
    int32 max_attempts;
};

enum class InsertResult {
    kInserted,
    kNoQueue,  // there is no such queue; nothing was inserted
    // jobq.job carries rules jobq did not put there (a trigger, another
    // constraint...): nothing was inserted, and the caller runs a planned
    // INSERT, which applies them.
    kDeclined,
};

// Inserts n jobs, one per payload, and sets ids[] in payload order (n may
// be 0: the queue is still checked).
InsertResult InsertJobs(const NewJobs &jobs, const Datum *payloads, int n, int64 *ids);

}  // namespace jobq::store
