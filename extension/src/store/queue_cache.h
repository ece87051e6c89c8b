// A queue's enqueue defaults, cached per backend (queue_cache.cpp).
//
// C-style on purpose: this reads tables and can ereport (see pg/guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/relcache.h"
}

namespace jobq::store {

// The queue's max_attempts; false when there is no such queue (which is
// never cached). Reflects every change committed before the call (see
// queue_cache.cpp), and the caller's own uncommitted ones.
bool LookUpQueueDefaults(Datum queue_text, const char *queue, int32 *max_attempts);

// After any change to jobq.queue (`queue`): every backend's cache is
// dropped once the change commits, and this backend's at once.
void InvalidateQueueCaches(Relation queue);

}  // namespace jobq::store
