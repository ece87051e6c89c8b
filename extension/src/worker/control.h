// Process entry points of the workers and the calls that start or stop them.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "postmaster/bgworker.h"

PGDLLEXPORT void jobq_launcher_main(Datum arg);
PGDLLEXPORT void jobq_db_worker_main(Datum arg);
PGDLLEXPORT void jobq_handler_worker_main(Datum arg);
PGDLLEXPORT void jobq_vacuum_worker_main(Datum arg);
}

namespace jobq::worker {

// bgw_extra of the dynamic workers (database, handler and vacuum workers).
struct WorkerExtra {
    int slot_index;     // the database's slot in shared memory
    int handler_index;  // handler workers only
    uint64 generation;  // handler workers: the database worker's start count
};

// Asks every jobq process connected to `dboid` to leave and waits (up to a
// few seconds) until they have; the launcher keeps them away for a while.
// Called by a backend about to DROP / RENAME / copy that database.
void StopDatabaseWorkers(Oid dboid);
// After the command: the launcher may start them again in `delay_ms`.
void AllowDatabaseWorkers(Oid dboid, int delay_ms);

// Registers a dynamic worker of this library (database connection, no
// restart, this process notified of its start and stop). On success the
// new handle, kept in TopMemoryContext, replaces *handle (the old one is
// freed); on failure (no free max_worker_processes slot) *handle is kept.
bool StartDynamicWorker(const char *function, const char *type, const char *name, Datum main_arg,
                        const WorkerExtra &extra, BackgroundWorkerHandle **handle);

// A unit of the database worker (tx.h): starts a "jobq vacuum" process when
// jobq.job's dead tuples grew by jobq.vacuum_threshold since the last one.
// arg: the database's slot index (int *).
void UnitVacuumCheck(void *arg);

}  // namespace jobq::worker
