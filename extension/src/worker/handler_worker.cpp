// In-database handler workers ("jobq handler"), started by the database
// worker while some queue has a handler (jobq.handler_workers of them).
//
// Per batch: one transaction claims up to jobq.handler_batch_size jobs from
// each unpaused handler queue through jobq.claim (the attempt is counted
// there, as for any runner). Then each job gets its own transaction:
//   1. lock the job row by id and lease token (a job cancelled or rescued
//      meanwhile is skipped; the rescuer skips a locked row), and resolve
//      the queue's handler, stored as its signature (a function that is
//      gone fails the job);
//   2. switch to the queue owner's role (SECURITY_LOCAL_USERID_CHANGE and
//      SECURITY_RESTRICTED_OPERATION: no SET ROLE back to the superuser,
//      and session-level SETs are undone afterwards), arm the queue's
//      handler_timeout as statement timeout, call fn(payload), fire
//      deferred constraints while still the owner;
//   3. back as the worker, jobq.complete with the lease token; commit.
// The handler's writes and the completion commit together. An ERROR rolls
// both back; a new transaction then fails the job with backoff (jobq.fail,
// fenced by the token like any settle call).
//
// Error policy: see tx.h. Handler errors are the job's, not the worker's:
// they are logged at LOG and never stop the loop.
#include <cstring>

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/shmem.h"
#include "worker/statements.h"
#include "worker/tx.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace {

using namespace jobq::worker;

struct Job {
    int64 id;
    int64 token;
    char *payload;  // jsonb as text
    Oid owner;      // InvalidOid if the role is gone
    char *owner_name;
    int64 timeout_ms;  // 0: none
    char *queue;
    char *handler;  // the queue's handler signature, as stored: "schema.fn(jsonb)"
};

struct HandlerState {
    int slot_index;
    int index;
    uint64 generation;
    DbSlot *slot;
    char name[64];  // worker name recorded on claimed jobs
    MemoryContext batch_cxt;
    Job *jobs;
    int njobs;
    char error[2048];
    bool skipped;
};

HandlerState hs;

void OnHandlerExit(int, Datum) {
    if (shared == nullptr || hs.slot == nullptr) return;
    if (LWLockHeldByMe(shared->lock)) LWLockRelease(shared->lock);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    HandlerSlot &h = hs.slot->handlers[hs.index];
    if (h.pid == MyProcPid) {
        h.pid = 0;
        h.latch = nullptr;
    }
    LWLockRelease(shared->lock);
}

bool StillWanted() {
    if (hs.index >= handler_workers) return false;
    LWLockAcquire(shared->lock, LW_SHARED);
    bool wanted = hs.slot->pid != 0 && hs.slot->handler_generation == hs.generation &&
                  !hs.slot->stop_requested;
    LWLockRelease(shared->lock);
    return wanted;
}

void Count(bool completed) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (completed)
        hs.slot->handler_completed++;
    else
        hs.slot->handler_failed++;
    LWLockRelease(shared->lock);
}

char *CopyValue(int row, int col) {
    char *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return v == nullptr ? nullptr : MemoryContextStrdup(hs.batch_cxt, v);
}

void UnitRescueOwn(void *) {
    if (!BeginWork("jobq: handler start-up")) {
        EndWork();
        return;
    }
    char rescuer[32];
    snprintf(rescuer, sizeof rescuer, "%d", MyProcPid);
    Datum values[3] = {CStringGetTextDatum(rescuer), Int32GetDatum(100000),
                       CStringGetTextDatum(hs.name)};
    bool isnull;
    (void)ExecInt64(&stmt::rescue_own, values, nullptr, &isnull);
    EndWork();
}

void UnitClaim(void *) {
    hs.njobs = 0;
    MemoryContextReset(hs.batch_cxt);
    if (!BeginWork("jobq: handler claim")) {
        EndWork();
        return;
    }
    jobq::pg::ExecPlan(&stmt::handler_queues, nullptr, nullptr, false);
    bool isnull;
    Datum names = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    if (isnull) {
        EndWork();
        return;
    }
    // Each queue gives up to jobq.handler_batch_size jobs.
    Datum values[3] = {names, CStringGetTextDatum(hs.name), Int32GetDatum(handler_batch_size)};
    jobq::pg::ExecPlan(&stmt::claim_handler_jobs, values, nullptr, false);
    int n = static_cast<int>(SPI_processed);
    hs.jobs = static_cast<Job *>(MemoryContextAllocZero(hs.batch_cxt, sizeof(Job) * (n + 1)));
    for (int r = 0; r < n; ++r) {
        HeapTuple tup = SPI_tuptable->vals[r];
        TupleDesc desc = SPI_tuptable->tupdesc;
        Job &j = hs.jobs[r];
        j.id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
        j.token = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
        j.payload = CopyValue(r, 3);
        Datum owner = SPI_getbinval(tup, desc, 4, &isnull);
        j.owner = isnull ? InvalidOid : DatumGetObjectId(owner);
        j.owner_name = CopyValue(r, 5);
        j.timeout_ms = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
        j.queue = CopyValue(r, 7);
        j.handler = CopyValue(r, 8);
    }
    EndWork();
    hs.njobs = n;
}

// The job's transaction. Raises on any failure (caught by RunJob). Sets
// hs.skipped when the job was not run (no longer held, extension gone).
void RunJobTransaction(const Job &j) {
    hs.skipped = false;
    if (!BeginWork("jobq: in-database handler")) {
        hs.skipped = true;
        EndWork();
        return;
    }
    Datum lock_values[2] = {Int64GetDatum(j.id), Int64GetDatum(j.token)};
    jobq::pg::ExecPlan(&stmt::lock_job, lock_values, nullptr, false);
    if (SPI_processed == 0) {  // cancelled, rescued or settled meanwhile
        hs.skipped = true;
        EndWork();
        return;
    }
    // The queue stores the handler by signature (text; regprocedure under
    // the SQL of 0.1.0), resolved here, in the job's own transaction: a
    // function dropped (or a signature written into jobq.queue by hand that
    // does not parse) fails this job, not the claims of every handler queue.
    Datum resolve_values[1] = {CStringGetTextDatum(j.handler ? j.handler : "")};
    jobq::pg::ExecPlan(&stmt::resolve_handler, resolve_values, nullptr, false);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                        errmsg("handler function %s of queue \"%s\" does not exist",
                               j.handler ? j.handler : "", j.queue ? j.queue : ""),
                        errhint("Create the function again, or give the queue another handler "
                                "with jobq.alter_queue.")));
    char *call_sql = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    bool isnull;
    bool returns_jsonb =
        DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    if (!OidIsValid(j.owner))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("owner role \"%s\" of the queue does not exist",
                               j.owner_name ? j.owner_name : "")));

    if (superuser_arg(j.owner))
        ereport(
            ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
             errmsg("in-database handlers never run as a superuser"),
             errdetail("The queue is owned by superuser \"%s\".", j.owner_name),
             errhint("Create the queue as a non-superuser role that may execute the handler.")));
    Oid save_user;
    int save_sec;
    GetUserIdAndSecContext(&save_user, &save_sec);
    int nest = NewGUCNestLevel();
    SetUserIdAndSecContext(j.owner,
                           save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    // What a fresh session of the owner would see; undone with the nest level.
    (void)set_config_option("search_path", "\"$user\", public", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    if (j.timeout_ms > 0)
        enable_timeout_after(STATEMENT_TIMEOUT,
                             static_cast<int>(Min(j.timeout_ms, (int64)INT_MAX)));
    Oid call_types[1] = {TEXTOID};
    Datum call_values[1] = {CStringGetTextDatum(j.payload)};
    ExecDynamic(call_sql, 1, call_types, call_values, nullptr, SPI_OK_SELECT);
    Datum result = 0;
    bool result_null = true;
    if (returns_jsonb && SPI_processed == 1)
        result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &result_null);
    jobq::pg::ExecPlan(&stmt::set_constraints_immediate, nullptr, nullptr, false);
    if (j.timeout_ms > 0) disable_timeout(STATEMENT_TIMEOUT, false);
    AtEOXact_GUC(true, nest);
    SetUserIdAndSecContext(save_user, save_sec);

    Datum values[3] = {Int64GetDatum(j.id), Int64GetDatum(j.token), result};
    char nulls[3] = {' ', ' ', result_null ? 'n' : ' '};
    jobq::pg::ExecPlan(&stmt::complete_job, values, nulls, false);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("job %lld is no longer held by this handler worker",
                               static_cast<long long>(j.id))));
    EndWork();
}

struct FailArgs {
    const Job *job;
    const char *error;
};

void UnitFail(void *arg) {
    auto *a = static_cast<FailArgs *>(arg);
    if (!BeginWork("jobq: in-database handler failed")) {
        EndWork();
        return;
    }
    Datum values[3] = {Int64GetDatum(a->job->id), Int64GetDatum(a->job->token),
                       CStringGetTextDatum(a->error)};
    jobq::pg::ExecPlan(&stmt::fail_job, values, nullptr, false);
    EndWork();
}

void RunJob(const Job &j) {
    MemoryContext caller = CurrentMemoryContext;
    volatile bool ok = true;
    PG_TRY();
    { RunJobTransaction(j); }
    PG_CATCH();
    {
        HOLD_INTERRUPTS();
        disable_all_timeouts(false);
        QueryCancelPending = false;
        MemoryContextSwitchTo(caller);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        strlcpy(hs.error, edata->message ? edata->message : "unknown error", sizeof hs.error);
        FreeErrorData(edata);
        pgstat_report_activity(STATE_IDLE, nullptr);
        RESUME_INTERRUPTS();
        ok = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    if (ok) {
        if (!hs.skipped) Count(true);
        return;
    }
    ereport(LOG, (errmsg("jobq: in-database handler of job %lld failed: %s",
                         static_cast<long long>(j.id), hs.error)));
    FailArgs args = {&j, hs.error};
    (void)RunUnit("failing a handler job", UnitFail, &args);
    Count(false);
}

}  // namespace

extern "C" void jobq_handler_worker_main(Datum main_arg) {
    Oid dboid = DatumGetObjectId(main_arg);
    WorkerExtra extra;
    memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof extra);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    if (shared == nullptr || extra.slot_index < 0 || extra.slot_index >= shared->nslots ||
        extra.handler_index < 0 || extra.handler_index >= kMaxHandlerWorkers)
        proc_exit(0);
    memset(&hs, 0, sizeof hs);
    hs.slot_index = extra.slot_index;
    hs.index = extra.handler_index;
    hs.generation = extra.generation;
    snprintf(hs.name, sizeof hs.name, "jobq-handler-%d", hs.index);

    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = &shared->slots[hs.slot_index];
    bool ours = slot->dboid == dboid && slot->pid != 0 &&
                slot->handler_generation == hs.generation && !slot->stop_requested;
    if (ours) {
        slot->handlers[hs.index].pid = MyProcPid;
        slot->handlers[hs.index].latch = MyLatch;
        hs.slot = slot;
    }
    LWLockRelease(shared->lock);
    if (!ours) proc_exit(0);
    before_shmem_exit(OnHandlerExit, 0);

    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    pgstat_report_appname("jobq handler");
    hs.batch_cxt =
        AllocSetContextCreate(TopMemoryContext, "jobq handler batch", ALLOCSET_DEFAULT_SIZES);
    MemoryContext loop_cxt =
        AllocSetContextCreate(TopMemoryContext, "jobq handler loop", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(loop_cxt);
    // Our own statements run as the bootstrap superuser: resolve nothing
    // through schemas other users can create objects in. Handlers get the
    // default path, resolved as their owner (see RunJobTransaction).
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);

    // Jobs claimed under this worker name by an earlier incarnation are not
    // running any more: rescue them now instead of waiting for their lease.
    (void)RunUnit("handler start-up rescue", UnitRescueOwn, nullptr);

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        if (!StillWanted()) proc_exit(0);
        bool claimed = RunUnit("handler claim", UnitClaim, nullptr);
        int n = claimed ? hs.njobs : 0;
        for (int i = 0; i < n; ++i) {
            RunJob(hs.jobs[i]);
            MemoryContextReset(loop_cxt);
            CHECK_FOR_INTERRUPTS();
        }
        MemoryContextReset(loop_cxt);
        if (claimed && n >= handler_batch_size) continue;  // more waiting: no sleep
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                        claimed ? naptime_ms : Max(naptime_ms, 1000), PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
