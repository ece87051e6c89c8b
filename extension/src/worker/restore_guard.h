// Restore guard: the database worker leaves a database alone while the dump
// restore that created jobq in it is still running.
//
// Vocabulary:
//   restore session  the session that ran CREATE EXTENSION jobq with
//                    check_function_bodies = off, as every pg_dump script and
//                    pg_restore does before it; recorded (pid, backend_start,
//                    application_name) in the one-row table
//                    jobq._restore_session, which is not dumped.
//   its helpers      sessions with the same application_name that connected
//                    to the database while it ran or just after it left:
//                    pg_restore -j's parallel workers (the leader disconnects
//                    after the schema and reconnects at the end).
// Without the guard the worker would act on half-restored tables: e.g. fire
// a restored schedule before the dump's setval of the job id sequence, and
// enqueue jobs whose ids the restore then brings in again.
//
// CREATE EXTENSION turns check_function_bodies off for every extension
// script, so the script cannot see the session's own setting: the utility
// hook notes it just before the command (NoteUtilityForRestoreGuard) and
// the script asks for it (jobq._created_by_restore()).
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/nodes.h"
}

namespace jobq::worker {

// The utility hook's part: called before every utility statement of a
// backend; remembers check_function_bodies at CREATE EXTENSION jobq.
void NoteUtilityForRestoreGuard(Node *stmt);

// The database worker's part, called at the top of each turn of its loop.
// While the restore session or its helpers are connected, it waits a
// moment on the latch and returns true: the turn does nothing else. Once
// they are gone it empties jobq._restore_session and returns false, for
// good (cheaply: no transaction after that). Logs once when it starts
// waiting and once when the restore is over.
bool WaitWhileRestoring(const char *dbname);

}  // namespace jobq::worker
