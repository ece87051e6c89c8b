// See tx.h for the error policy.
#include "worker/tx.h"

extern "C" {
#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
}

namespace jobq::worker {

bool BeginWork(const char *activity) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
    return OidIsValid(get_extension_oid("jobq", true));
}

void EndWork() {
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

bool RunUnit(const char *what, UnitFn unit, void *arg) {
    MemoryContext caller = CurrentMemoryContext;
    volatile bool ok = true;
    PG_TRY();
    { unit(arg); }
    PG_CATCH();
    {
        HOLD_INTERRUPTS();
        disable_all_timeouts(false);
        QueryCancelPending = false;
        MemoryContextSwitchTo(caller);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
        pgstat_report_activity(STATE_IDLE, nullptr);
        RESUME_INTERRUPTS();
        ok = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    if (!ok) ereport(LOG, (errmsg("jobq: %s failed; it is retried at its next turn", what)));
    return ok;
}

void ExecDynamic(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
                 int expect) {
    int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
    if (rc != expect) elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

int64 ExecInt64(pg::PlanSlot *stmt, Datum *values, const char *nulls, bool *isnull) {
    pg::ExecPlan(stmt, values, nulls, false);
    *isnull = true;
    if (SPI_processed == 0) return 0;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
    return *isnull ? 0 : DatumGetInt64(d);
}

}  // namespace jobq::worker
