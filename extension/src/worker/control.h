// Process entry points of the workers and the calls that start or stop them.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"

PGDLLEXPORT void jobq_launcher_main(Datum arg);
PGDLLEXPORT void jobq_db_worker_main(Datum arg);
PGDLLEXPORT void jobq_handler_worker_main(Datum arg);
PGDLLEXPORT void jobq_vacuum_worker_main(Datum arg);
}

namespace jobq::worker {

// Asks every jobq process connected to `dboid` to leave and waits (up to a
// few seconds) until they have; the launcher keeps them away for a while.
// Called by a backend about to DROP / RENAME / copy that database.
void StopDatabaseWorkers(Oid dboid);
// After the command: the launcher may start them again in `delay_ms`.
void AllowDatabaseWorkers(Oid dboid, int delay_ms);

// A unit of the database worker (tx.h): starts a "jobq vacuum" process when
// jobq.job's dead tuples grew by jobq.vacuum_threshold since the last one.
// arg: the database's slot index (int *).
void UnitVacuumCheck(void *arg);

// bgw_extra of database and handler workers.
struct WorkerExtra {
    int slot_index;
    int handler_index;  // handler workers only
    uint64 generation;  // handler workers: the database worker's start count
};

}  // namespace jobq::worker
