// The worker's interface to the rest of jobq (C linkage, called by the core).
//
//   jobq_note_wakeup(queue, run_at)  called inside a producer's (or settle
//       call's) transaction whenever a job of `queue` becomes due at
//       `run_at`. It only remembers the queue in backend-local memory; at
//       COMMIT the names are published to shared memory and the database
//       worker's latch is set. The worker sends the NOTIFY from its own
//       transaction, so producers never take NOTIFY's global commit lock.
//       A harmless no-op when jobq is not in shared_preload_libraries.
//       Never raises an error.
//   jobq_worker_pg_init()  called from _PG_init after the core settings are
//       defined: worker settings, shared memory hooks, launcher registration.
//       Does nothing unless shared_preload_libraries is being processed.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"

void jobq_note_wakeup(const char *queue_name, TimestampTz run_at);
void jobq_worker_pg_init(void);
}
