// A queue's enqueue defaults, cached per backend (queue_cache.cpp).
//
// C-style on purpose: this reads tables and can ereport (see pg/guard.h).
#pragma once

extern "C" {
#include "postgres.h"
}

namespace jobq::sql {

// The queue's max_attempts; false when there is no such queue (which is
// never cached). The caller holds its lock on jobq.job and has pushed the
// statement's snapshot: a miss reads jobq.queue under that snapshot.
bool LookUpQueueDefaults(Datum queue_text, const char *queue, int32 *max_attempts);

}  // namespace jobq::sql
