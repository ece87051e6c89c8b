// Restore guard (see restore_guard.h): the backend side notes how CREATE
// EXTENSION jobq was run; the database worker's side waits while the
// restore session and its helpers are connected. C-style Postgres code
// (tx.h): no C++ objects with destructors.
#include "worker/restore_guard.h"

#include "worker/statements.h"
#include "worker/tx.h"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace {

using namespace jobq::worker;

// Backend side: check_function_bodies as the session had it when its last
// CREATE EXTENSION jobq started.
bool created_with_unchecked_bodies = false;

// Worker side.
bool restore_over = false;  // for good, in this process
bool logged_waiting = false;
TimestampTz session_gone_at = 0;  // when the worker first saw the restore session gone

// pg_restore -j's workers connect a few milliseconds after its leader
// disconnected; sessions of the same application that connect within this
// time after the restore session was seen gone count as its helpers.
constexpr int kHelperGraceMs = 5000;
constexpr long kPollMs = 250;
constexpr long kRetryAfterErrorMs = 5000;

struct GuardCheck {
    bool restoring;  // restore session or helpers connected, or grace not over
    int pid;         // the restore session
    bool session_connected;
    char application[NAMEDATALEN];
};

void UnitGuardCheck(void *arg) {
    auto *check = static_cast<GuardCheck *>(arg);
    check->restoring = false;
    // Extension gone: nothing to guard; the loop's units notice and leave.
    if (!BeginWork("jobq: restore guard")) {
        EndWork();
        return;
    }
    bool isnull;
    // The table is missing under the SQL of jobq 0.1.0 (library updated,
    // ALTER EXTENSION jobq UPDATE not yet run): no guard then.
    int64 present = ExecInt64(&stmt::restore_table_present, nullptr, nullptr, &isnull);
    if (present == 0) {
        EndWork();
        return;
    }
    TimestampTz cutoff = session_gone_at == 0
                             ? DT_NOEND
                             : TimestampTzPlusMilliseconds(session_gone_at, kHelperGraceMs);
    Datum values[1] = {TimestampTzGetDatum(cutoff)};
    jobq::pg::ExecPlan(&stmt::restore_session, values, nullptr, false);
    if (SPI_processed == 0) {
        EndWork();
        return;
    }
    HeapTuple tup = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    check->pid = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
    char *application = SPI_getvalue(tup, desc, 2);
    strlcpy(check->application, application ? application : "", sizeof check->application);
    check->session_connected = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
    bool helpers_connected = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
    TimestampTz now = GetCurrentTimestamp();
    if (!check->session_connected && session_gone_at == 0) session_gone_at = now;
    check->restoring = check->session_connected || helpers_connected ||
                       now < TimestampTzPlusMilliseconds(session_gone_at, kHelperGraceMs);
    if (!check->restoring)
        jobq::pg::ExecPlan(&stmt::forget_restore_session, nullptr, nullptr, false);
    EndWork();
}

}  // namespace

namespace jobq::worker {

void NoteUtilityForRestoreGuard(Node *stmt) {
    if (stmt == nullptr || !IsA(stmt, CreateExtensionStmt)) return;
    auto *create = reinterpret_cast<CreateExtensionStmt *>(stmt);
    if (strcmp(create->extname, "jobq") == 0)
        created_with_unchecked_bodies = !check_function_bodies;
}

bool WaitWhileRestoring(const char *dbname) {
    if (restore_over) return false;
    GuardCheck check;
    memset(&check, 0, sizeof check);
    // A failed check (logged by RunUnit) counts as still restoring: acting
    // on a half-restored database is the harm this guard exists to prevent.
    bool ok = RunUnit("restore guard", UnitGuardCheck, &check);
    if (ok && !check.restoring) {
        restore_over = true;
        if (logged_waiting)
            ereport(LOG, (errmsg("jobq worker: the restore of database \"%s\" has ended, starting",
                                 dbname)));
        return false;
    }
    if (ok && !logged_waiting) {
        logged_waiting = true;
        ereport(LOG,
                (errmsg("jobq worker waits for the restore of database \"%s\" to end", dbname),
                 errdetail("CREATE EXTENSION jobq ran with check_function_bodies = off, as in a "
                           "dump, in session %d (application_name \"%s\"). The worker starts "
                           "once that session, and the sessions of the same application that "
                           "connected while it ran, have disconnected.",
                           check.pid, check.application),
                 errhint("If no restore is running, DELETE FROM jobq._restore_session starts "
                         "the worker.")));
    }
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                    ok ? kPollMs : kRetryAfterErrorMs, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    return true;
}

}  // namespace jobq::worker

extern "C" {

PG_FUNCTION_INFO_V1(jobq_created_by_restore);

// jobq._created_by_restore() RETURNS boolean: whether the CREATE EXTENSION
// jobq now running in this session started with check_function_bodies =
// off (as dump scripts set it). Called by the extension script only.
Datum jobq_created_by_restore(PG_FUNCTION_ARGS) {
    PG_RETURN_BOOL(creating_extension && created_with_unchecked_bodies);
}

}  // extern "C"
