// The database worker ("jobq worker"): one per database that has jobq.
//
// Duties, each a short transaction with its own deadline:
//   wake-ups   drain the queue names committed producers published in the
//              slot, add the queues whose scheduled or retrying jobs came due
//              since the last tick, and NOTIFY jobq_wakeup once per queue;
//   rescue     return jobs with expired leases (jobq._rescue);
//   schedules  enqueue due ticks of periodic jobs (jobq._run_schedules);
//   prune      delete finished jobs past retention (jobq._prune);
//   vacuum     start a "jobq vacuum" process when jobq.job's dead tuples
//              pass jobq.vacuum_threshold (vacuum.cpp);
//   handlers   keep jobq.handler_workers "jobq handler" processes running
//              while some queue has an in-database handler.
// The loop sleeps on its latch until the earliest deadline (next due job,
// next schedule tick, next rescue/prune, at most jobq.naptime), and wakes
// early when a producer commits.
//
// Error policy: see tx.h. Start-up reconciliation (rescue of expired leases,
// a wake-up for every queue with due jobs) is idempotent, so a worker that
// was killed or crashed simply starts over.
#include <cstring>

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/restore_guard.h"
#include "worker/shmem.h"
#include "worker/sql_version.h"
#include "worker/tx.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
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
#include "utils/timestamp.h"
}

namespace {

using namespace jobq::worker;

constexpr int kRescueBatch = 1000;
constexpr int kPruneBudgetMs = 200;  // longest pruning session per loop turn
constexpr int kScheduleRecheckMs = 60 * 1000;
constexpr int kVacuumCheckMs = 1000;  // dead-tuple check of jobq.job (pgstat flushes ~1/s)
// Pseudo-queue jobq.schedule() notes so the worker re-reads next ticks.
constexpr const char *kScheduleWakeup = "jobq.schedule";

// Worker-local state: trivial types only.
struct State {
    int slot_index;
    DbSlot *slot;
    uint64 generation;
    bool extension_gone;
    bool have_cursor;
    TimestampTz due_cursor;  // wake-ups for jobs due up to here were sent
    TimestampTz next_due;    // earliest future run_at known (0: none)
    TimestampTz next_wake_scan, next_rescue, next_prune, next_cron, next_vacuum_check;
    bool have_handlers;
    bool wake_failed;         // last tick failed: next scan wakes every due queue
    TimestampTz last_notify;  // end of the last fast-path NOTIFY tick
    // Wake-ups drained from the slot, waiting for the next tick.
    int npending;
    bool pending_all;
    char pending[kMaxWakeups][kQueueNameSize];
    // Counters since start (published to the slot).
    uint64 wakeups_sent, rescued, pruned, periodic, errors;
    // Handler workers started by this worker.
    BackgroundWorkerHandle *handler_handles[kMaxHandlerWorkers];
    TimestampTz handler_retry_at[kMaxHandlerWorkers];
};

State st;

TimestampTz Earlier(TimestampTz a, TimestampTz b) { return a < b ? a : b; }

void OnWorkerExit(int, Datum) {
    if (shared == nullptr || st.slot == nullptr) return;
    if (LWLockHeldByMe(shared->lock)) LWLockRelease(shared->lock);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = st.slot;
    if (slot->pid == MyProcPid) {
        slot->pid = 0;
        slot->latch = nullptr;
        slot->nwakeups = 0;
        slot->wake_generation++;
        slot->wake_all = false;
        if (slot->state == kSlotRunning || slot->state == kSlotStarting) {
            slot->state = st.extension_gone ? kSlotNoExtension : kSlotExited;
            slot->state_changed_at = GetCurrentTimestamp();
        }
        for (auto &h : slot->handlers)
            if (h.latch != nullptr) SetLatch(h.latch);  // they see pid 0 and leave
        if (shared->launcher_latch != nullptr) SetLatch(shared->launcher_latch);
    }
    LWLockRelease(shared->lock);
}

void PublishCounters() {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = st.slot;
    slot->last_tick = GetCurrentTimestamp();
    slot->rescue_interval_ms = rescue_interval_ms;
    slot->wakeups_sent = st.wakeups_sent;
    slot->jobs_rescued = st.rescued;
    slot->jobs_pruned = st.pruned;
    slot->periodic_enqueued = st.periodic;
    slot->maintenance_errors = st.errors;
    LWLockRelease(shared->lock);
}

// Moves the wake-ups producers published into st.pending.
void DrainWakeups(TimestampTz now) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = st.slot;
    if (slot->wake_all) st.pending_all = true;
    slot->wake_all = false;
    for (int i = 0; i < slot->nwakeups; ++i) {
        const Wakeup &w = slot->wakeups[i];
        if (strcmp(w.queue, kScheduleWakeup) == 0) {  // jobq.schedule() changed a schedule
            if (w.due < st.next_cron) st.next_cron = w.due;
            continue;
        }
        if (w.due > now) {
            if (st.next_due == 0 || w.due < st.next_due) st.next_due = w.due;
            continue;
        }
        int j = 0;
        for (; j < st.npending; ++j)
            if (strcmp(st.pending[j], w.queue) == 0) break;
        if (j < st.npending) continue;
        if (st.npending == kMaxWakeups) {
            st.pending_all = true;
            continue;
        }
        memcpy(st.pending[st.npending++], w.queue, kQueueNameSize);
    }
    slot->nwakeups = 0;
    slot->wake_generation++;
    LWLockRelease(shared->lock);
}

// --- units of work -----------------------------------------------------------

// The channel runners LISTEN on (docs/protocol.md).
constexpr const char *kWakeupChannel = "jobq_wakeup";

// A tick between scans: NOTIFY the pending queues and nothing else. Under
// a stream of commits this runs up to once per jobq.wakeup_interval, so it
// is kept to a bare transaction: no SPI, snapshot or extension lookup (a
// NOTIFY needs none of them; the scans, every jobq.naptime, notice a
// dropped extension). Worker CPU per tick under 32 producers: 52 µs through
// SPI, 34 µs like this.
void NotifyPending() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    pgstat_report_activity(STATE_RUNNING, "jobq: wake-ups");
    PreventCommandDuringRecovery("NOTIFY");
    for (int i = 0; i < st.npending; ++i) Async_Notify(kWakeupChannel, st.pending[i]);
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
    st.wakeups_sent += st.npending;
}

void WakeHandlers() {
    LWLockAcquire(shared->lock, LW_SHARED);
    for (auto &h : st.slot->handlers)
        if (h.latch != nullptr) SetLatch(h.latch);
    LWLockRelease(shared->lock);
}

// arg: bool* "scan": also look for jobs that came due since the cursor.
void UnitWake(void *arg) {
    bool scan = *static_cast<bool *>(arg) || st.pending_all || !st.have_cursor;
    if (!scan) {
        NotifyPending();
        st.last_notify = GetCurrentTimestamp();
        st.npending = 0;
        if (st.have_handlers) WakeHandlers();
        return;
    }
    if (!BeginWork("jobq: wake-ups")) {
        st.extension_gone = true;
        EndWork();
        return;
    }
    Datum *names = static_cast<Datum *>(palloc(sizeof(Datum) * (st.npending + 1)));
    for (int i = 0; i < st.npending; ++i) names[i] = CStringGetTextDatum(st.pending[i]);
    ArrayType *array = construct_array(names, st.npending, TEXTOID, -1, false, TYPALIGN_INT);
    Oid types[3] = {TEXTARRAYOID, TIMESTAMPTZOID, BOOLOID};
    Datum values[3] = {PointerGetDatum(array), TimestampTzGetDatum(st.due_cursor),
                       BoolGetDatum(st.pending_all || st.wake_failed || !st.have_cursor)};
    char nulls[3] = {' ', st.have_cursor ? ' ' : 'n', ' '};
    Exec(
        "WITH names AS ("
        "  SELECT unnest($1::text[]) AS q"
        "  UNION SELECT jobq._due_queues($2)"
        "  UNION SELECT jobq._due_queues(NULL) WHERE $3"
        ") SELECT n.q, q.handler IS NOT NULL, pg_catalog.pg_notify('jobq_wakeup', n.q) "
        "FROM names n JOIN jobq.queue q ON q.name = n.q WHERE NOT q.paused",
        3, types, values, nulls, SPI_OK_SELECT);
    uint64 sent = SPI_processed;
    bool wake_handlers = false;
    for (uint64 r = 0; r < sent; ++r) {
        bool isnull;
        Datum h = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
        if (!isnull && DatumGetBool(h)) wake_handlers = true;
    }
    bool isnull;
    Exec("SELECT jobq._next_due()", 0, nullptr, nullptr, nullptr, SPI_OK_SELECT);
    Datum next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    TimestampTz cursor = GetCurrentTransactionStartTimestamp();
    EndWork();

    st.next_due = isnull ? 0 : DatumGetTimestampTz(next);
    st.due_cursor = cursor;
    st.have_cursor = true;
    st.npending = 0;
    st.pending_all = false;
    st.wake_failed = false;
    st.wakeups_sent += sent;
    if (wake_handlers)
        st.have_handlers = true;  // start handler workers without waiting for the rescue pass
    if (wake_handlers || st.have_handlers) WakeHandlers();
}

void UnitRescue(void *) {
    if (!BeginWork("jobq: lease rescue")) {
        st.extension_gone = true;
        EndWork();
        return;
    }
    char rescuer[32];
    snprintf(rescuer, sizeof rescuer, "%d", MyProcPid);
    Oid types[2] = {TEXTOID, INT4OID};
    Datum values[2] = {CStringGetTextDatum(rescuer), Int32GetDatum(kRescueBatch)};
    bool isnull;
    int64 n = ExecInt64("SELECT jobq._rescue($1, $2)", 2, types, values, nullptr, &isnull);
    int64 handlers =
        ExecInt64("SELECT count(*) FROM jobq.queue WHERE handler IS NOT NULL AND NOT paused", 0,
                  nullptr, nullptr, nullptr, &isnull);
    EndWork();
    st.rescued += n;
    st.have_handlers = handlers > 0;
    if (n > 0) st.next_wake_scan = 0;           // rescued jobs have new due times
    if (n >= kRescueBatch) st.next_rescue = 0;  // more to do: next turn
}

void UnitPrune(void *arg) {
    bool *full = static_cast<bool *>(arg);
    if (!BeginWork("jobq: retention")) {
        st.extension_gone = true;
        EndWork();
        return;
    }
    Oid types[1] = {INT4OID};
    Datum values[1] = {Int32GetDatum(prune_batch_size)};
    bool isnull;
    int64 n = ExecInt64("SELECT jobq._prune($1)", 1, types, values, nullptr, &isnull);
    EndWork();
    st.pruned += n;
    *full = n >= prune_batch_size;
}

void UnitSchedules(void *) {
    if (!BeginWork("jobq: periodic jobs")) {
        st.extension_gone = true;
        EndWork();
        return;
    }
    Exec("SELECT enqueued, next_tick FROM jobq._run_schedules()", 0, nullptr, nullptr, nullptr,
         SPI_OK_SELECT);
    bool isnull;
    int64 n =
        DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    Datum next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    TimestampTz next_tick = isnull ? 0 : DatumGetTimestampTz(next);
    EndWork();
    st.periodic += n;
    TimestampTz recheck = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kScheduleRecheckMs);
    st.next_cron = (next_tick != 0 && next_tick < recheck) ? next_tick : recheck;
}

// --- handler workers -----------------------------------------------------------

void ManageHandlers(TimestampTz now) {
    int want = st.have_handlers ? handler_workers : 0;
    for (int i = 0; i < want && i < kMaxHandlerWorkers; ++i) {
        pid_t pid;
        if (st.handler_handles[i] != nullptr &&
            GetBackgroundWorkerPid(st.handler_handles[i], &pid) != BGWH_STOPPED)
            continue;
        if (now < st.handler_retry_at[i]) continue;
        st.handler_retry_at[i] = TimestampTzPlusMilliseconds(now, Max(restart_delay_ms, 1000));
        char name[BGW_MAXLEN];
        snprintf(name, sizeof name, "jobq handler %d for database %u", i, MyDatabaseId);
        bool registered = StartDynamicWorker(
            "jobq_handler_worker_main", "jobq handler", name, ObjectIdGetDatum(MyDatabaseId),
            WorkerExtra{st.slot_index, i, st.generation}, &st.handler_handles[i]);
        if (!registered) {
            ereport(WARNING,
                    (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                     errmsg("jobq worker could not start in-database handler worker %d", i),
                     errhint("Increase max_worker_processes.")));
        }
    }
}

// Runs a unit; a failed one counts as an error (its deadline was already
// moved, so it is retried at its next turn, not in a tight loop).
void Run(const char *what, UnitFn fn, void *arg) {
    if (!RunUnit(what, fn, arg)) st.errors++;
}

}  // namespace

extern "C" void jobq_db_worker_main(Datum main_arg) {
    Oid dboid = DatumGetObjectId(main_arg);
    WorkerExtra extra;
    memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof extra);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    if (shared == nullptr || extra.slot_index < 0 || extra.slot_index >= shared->nslots)
        proc_exit(0);
    memset(&st, 0, sizeof st);
    st.slot_index = extra.slot_index;

    // Claim the slot before connecting, so DROP DATABASE can find us.
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = &shared->slots[extra.slot_index];
    bool ours = slot->dboid == dboid && slot->pid == 0 && !slot->stop_requested;
    if (ours) {
        slot->pid = MyProcPid;
        slot->latch = MyLatch;
        slot->state = kSlotRunning;
        slot->started_at = GetCurrentTimestamp();
        slot->state_changed_at = slot->started_at;
        slot->handler_generation++;
        slot->handler_completed = 0;  // counters are "since this worker started"
        slot->handler_failed = 0;
        slot->next_deadline = 0;
        st.generation = slot->handler_generation;
        st.slot = slot;
    }
    LWLockRelease(shared->lock);
    if (!ours) proc_exit(0);
    before_shmem_exit(OnWorkerExit, 0);

    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    pgstat_report_appname("jobq worker");

    // Every transaction of this process is idempotent maintenance: a
    // wake-up is a hint (runners poll as a fallback, and a restarted worker
    // wakes every due queue), a rescue or prune lost in a crash is redone,
    // and a schedule's enqueue and next-tick advance are lost or kept
    // together. So commits need not wait for the WAL flush (NOTIFY assigns
    // an xid): that wait was most of the commit -> NOTIFY latency.
    SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION);
    // The worker runs as the bootstrap superuser: resolve nothing through
    // schemas other users can create objects in.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
    MemoryContext loop_cxt =
        AllocSetContextCreate(TopMemoryContext, "jobq worker loop", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(loop_cxt);

    // Start-up: look for the extension; reconcile (the first wake-up tick
    // notifies every queue with due jobs, the first rescue runs at once).
    bool present = BeginWork("jobq: start");
    char dbname[NAMEDATALEN];
    strlcpy(dbname, get_database_name(dboid), NAMEDATALEN);
    if (present) WarnIfSqlVersionDiffers(dbname);
    EndWork();
    if (!present) {
        st.extension_gone = true;
        proc_exit(0);
    }
    ereport(LOG, (errmsg("jobq worker started for database \"%s\"", dbname)));

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            st.next_rescue = st.next_prune = 0;  // intervals may have changed
        }
        if (st.slot->stop_requested) proc_exit(0);
        if (WaitWhileRestoring(dbname)) continue;  // a dump restore is still filling the tables

        TimestampTz now = GetCurrentTimestamp();
        // Under a stream of commits, space NOTIFY ticks by at least
        // jobq.wakeup_interval so one tick carries many commits and the
        // worker does not take a CPU from the producers. A commit after a
        // quiet spell is announced at once. (pg_usleep, not the latch:
        // committing producers keep setting the latch.)
        if (wakeup_interval_us > 0 && st.last_notify != 0) {
            TimestampTz ready = st.last_notify + wakeup_interval_us;
            if (now < ready) {
                LWLockAcquire(shared->lock, LW_SHARED);
                bool waiting = st.slot->nwakeups > 0;
                LWLockRelease(shared->lock);
                if (waiting) {
                    pg_usleep(static_cast<long>(ready - now));
                    CHECK_FOR_INTERRUPTS();
                    now = GetCurrentTimestamp();
                }
            }
        }
        DrainWakeups(now);
        if (st.next_due != 0 && st.next_due <= now) st.next_wake_scan = 0;

        bool scan = now >= st.next_wake_scan;
        if (st.npending > 0 || st.pending_all || scan) {
            if (scan) st.next_wake_scan = TimestampTzPlusMilliseconds(now, naptime_ms);
            if (!RunUnit("wake-up tick", UnitWake, &scan)) {
                // E.g. the NOTIFY queue is full because a listener stalls:
                // do not spin; the next scan (after jobq.naptime) wakes
                // every queue with due jobs.
                st.errors++;
                st.npending = 0;
                st.pending_all = false;
                st.wake_failed = true;
            }
        }
        if (!st.extension_gone && now >= st.next_rescue) {
            st.next_rescue = TimestampTzPlusMilliseconds(now, rescue_interval_ms);
            Run("lease rescue", UnitRescue, nullptr);
        }
        if (!st.extension_gone && now >= st.next_cron) {
            st.next_cron = TimestampTzPlusMilliseconds(now, naptime_ms);
            Run("periodic jobs", UnitSchedules, nullptr);
        }
        if (!st.extension_gone && now >= st.next_prune) {
            st.next_prune = TimestampTzPlusMilliseconds(now, prune_interval_ms);
            TimestampTz budget_end = TimestampTzPlusMilliseconds(now, kPruneBudgetMs);
            bool full = true;
            while (full && !st.extension_gone && GetCurrentTimestamp() < budget_end) {
                full = false;
                if (!RunUnit("retention", UnitPrune, &full)) {
                    st.errors++;
                    break;
                }
                CHECK_FOR_INTERRUPTS();
            }
            if (full) st.next_prune = 0;  // more to delete: continue next turn
        }
        if (!st.extension_gone && vacuum_threshold > 0 && now >= st.next_vacuum_check) {
            st.next_vacuum_check = TimestampTzPlusMilliseconds(now, kVacuumCheckMs);
            Run("hot-table vacuum check", UnitVacuumCheck, &st.slot_index);
        }
        if (st.extension_gone) {
            ereport(LOG,
                    (errmsg("jobq worker leaves database \"%s\": extension jobq is not installed",
                            dbname)));
            proc_exit(0);
        }
        now = GetCurrentTimestamp();
        ManageHandlers(now);
        PublishCounters();
        MemoryContextReset(loop_cxt);

        // Sleep until the earliest deadline.
        TimestampTz deadline = TimestampTzPlusMilliseconds(now, naptime_ms);
        deadline = Earlier(deadline, st.next_wake_scan);
        if (st.next_due != 0) deadline = Earlier(deadline, st.next_due);
        deadline = Earlier(deadline, st.next_rescue);
        deadline = Earlier(deadline, st.next_cron);
        deadline = Earlier(deadline, st.next_prune);
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        st.slot->next_deadline = deadline;
        bool more = st.slot->nwakeups > 0 || st.slot->wake_all;
        LWLockRelease(shared->lock);
        // Right after a NOTIFY tick, under a stream of commits, the next
        // commit is a few microseconds away and would find the worker asleep
        // on its latch: SetLatch then signals it (a kill() and a context
        // switch in the committing backend, 15% of a one-row enqueue). Sleep
        // out the spacing of the ticks without advertising it instead, so
        // those commits only set the latch's flag; the next turn takes them.
        TimestampTz quiet_until =
            wakeup_interval_us > 0 && st.last_notify != 0 ? st.last_notify + wakeup_interval_us : 0;
        if (!more && now < quiet_until && quiet_until < deadline) {
            pg_usleep(static_cast<long>(quiet_until - now));
            continue;
        }
        // WaitLatch counts whole milliseconds: wait the whole ones on the
        // latch and sleep the sub-millisecond rest, so a job due at run_at
        // is announced on time rather than up to 1 ms late (W4s).
        int64 remaining_us = more ? 0 : deadline - now;
        long timeout_ms = (long)(remaining_us / 1000);
        if (timeout_ms > 0) {
            int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms,
                               PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            if (rc & WL_LATCH_SET) continue;
            remaining_us = deadline - GetCurrentTimestamp();
        }
        if (remaining_us > 0 && remaining_us < 1000) pg_usleep((long)remaining_us);
    }
}
