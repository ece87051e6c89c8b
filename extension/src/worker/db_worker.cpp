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
// The loop (jobq_db_worker_main, at the end of this file) is a list of
// named steps: each scheduler runs its unit when its deadline has come,
// then the worker sleeps, only ever on its latch, until the earliest
// deadline (next due job, next schedule tick, next rescue/prune, at most
// jobq.naptime); a producer's commit, SIGTERM or SIGHUP end the sleep at
// once. A new step is one more function called from the loop.
//
// Error policy: see tx.h. Start-up reconciliation (rescue of expired leases,
// a wake-up for every queue with due jobs) is idempotent, so a worker that
// was killed or crashed simply starts over.
#include <cstring>

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/restore_guard.h"
#include "worker/shmem.h"
#include "worker/statements.h"
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
    char dbname[NAMEDATALEN];
    MemoryContext loop_cxt;  // reset after every turn
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
    Datum values[3] = {PointerGetDatum(array), TimestampTzGetDatum(st.due_cursor),
                       BoolGetDatum(st.pending_all || st.wake_failed || !st.have_cursor)};
    char nulls[3] = {' ', st.have_cursor ? ' ' : 'n', ' '};
    jobq::pg::ExecPlan(&stmt::wake_queues, values, nulls, false);
    uint64 sent = SPI_processed;
    bool wake_handlers = false;
    for (uint64 r = 0; r < sent; ++r) {
        bool isnull;
        Datum h = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
        if (!isnull && DatumGetBool(h)) wake_handlers = true;
    }
    bool isnull;
    jobq::pg::ExecPlan(&stmt::next_due, nullptr, nullptr, false);
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
    Datum values[2] = {CStringGetTextDatum(rescuer), Int32GetDatum(kRescueBatch)};
    bool isnull;
    int64 n = ExecInt64(&stmt::rescue, values, nullptr, &isnull);
    int64 handlers = ExecInt64(&stmt::count_handler_queues, nullptr, nullptr, &isnull);
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
    Datum values[1] = {Int32GetDatum(prune_batch_size)};
    bool isnull;
    int64 n = ExecInt64(&stmt::prune, values, nullptr, &isnull);
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
    jobq::pg::ExecPlan(&stmt::run_schedules, nullptr, nullptr, false);
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

// --- the loop's steps ------------------------------------------------------------

void SetUpSignals() {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
}

// Takes the database's slot before connecting, so DROP DATABASE can find
// this process; false when the slot is not (or no longer) ours.
bool ClaimSlot(Oid dboid, int slot_index) {
    if (shared == nullptr || slot_index < 0 || slot_index >= shared->nslots) return false;
    memset(&st, 0, sizeof st);
    st.slot_index = slot_index;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = &shared->slots[slot_index];
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
        slot->quiet_until = 0;
        st.generation = slot->handler_generation;
        st.slot = slot;
    }
    LWLockRelease(shared->lock);
    if (ours) before_shmem_exit(OnWorkerExit, 0);
    return ours;
}

// Connects to the database and sets the session up for maintenance.
void Connect(Oid dboid) {
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
    st.loop_cxt =
        AllocSetContextCreate(TopMemoryContext, "jobq worker loop", ALLOCSET_DEFAULT_SIZES);
    MemoryContextSwitchTo(st.loop_cxt);
}

// Start-up reconciliation: looks for the extension; false when it is not
// installed. The rest needs no step of its own: every deadline starts at
// 0, so the first turn rescues expired leases at once, and its wake-up
// tick (no cursor yet) notifies every queue with due jobs.
bool StartUp(Oid dboid) {
    bool present = BeginWork("jobq: start");
    strlcpy(st.dbname, get_database_name(dboid), NAMEDATALEN);
    if (present) WarnIfSqlVersionDiffers(st.dbname);
    EndWork();
    if (!present) {
        st.extension_gone = true;
        return false;
    }
    ereport(LOG, (errmsg("jobq worker started for database \"%s\"", st.dbname)));
    return true;
}

// Signals and requests that arrived since the last turn.
void HandleInterrupts() {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
        st.next_rescue = st.next_prune = 0;  // intervals may have changed
    }
    if (st.slot->stop_requested) proc_exit(0);
}

// The end of the NOTIFY tick spacing (jobq.wakeup_interval), or 0. Under a
// stream of commits the ticks are spaced so that one tick carries many
// commits and the worker does not take a CPU from the producers; a commit
// after a quiet spell is announced at once.
TimestampTz QuietUntil() {
    if (wakeup_interval_us <= 0 || st.last_notify == 0) return 0;
    return st.last_notify + wakeup_interval_us;
}

bool WakeupsWaiting() {
    LWLockAcquire(shared->lock, LW_SHARED);
    bool waiting = st.slot->nwakeups > 0;
    LWLockRelease(shared->lock);
    return waiting;
}

// Scheduler of the wake-ups: producers' commits, and jobs that came due.
void TickWakeups(TimestampTz now) {
    // Inside the tick spacing the published wake-ups stay in the slot
    // (committing producers find their queue there and skip the lock) until
    // the sleep that ends with the spacing.
    if (now < QuietUntil() && WakeupsWaiting()) return;
    DrainWakeups(now);
    if (st.next_due != 0 && st.next_due <= now) st.next_wake_scan = 0;
    bool scan = now >= st.next_wake_scan;
    if (st.npending == 0 && !st.pending_all && !scan) return;
    if (scan) st.next_wake_scan = TimestampTzPlusMilliseconds(now, naptime_ms);
    if (!RunUnit("wake-up tick", UnitWake, &scan)) {
        // E.g. the NOTIFY queue is full because a listener stalls: do not
        // spin; the next scan (after jobq.naptime) wakes every queue with
        // due jobs.
        st.errors++;
        st.npending = 0;
        st.pending_all = false;
        st.wake_failed = true;
    }
}

// Scheduler of the lease rescue.
void RescueLeases(TimestampTz now) {
    if (st.extension_gone || now < st.next_rescue) return;
    st.next_rescue = TimestampTzPlusMilliseconds(now, rescue_interval_ms);
    Run("lease rescue", UnitRescue, nullptr);
}

// Scheduler of the periodic jobs.
void RunSchedules(TimestampTz now) {
    if (st.extension_gone || now < st.next_cron) return;
    st.next_cron = TimestampTzPlusMilliseconds(now, naptime_ms);
    Run("periodic jobs", UnitSchedules, nullptr);
}

// Scheduler of retention: batches for up to kPruneBudgetMs.
void PruneHistory(TimestampTz now) {
    if (st.extension_gone || now < st.next_prune) return;
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

// Scheduler of the hot-table vacuum check (vacuum.cpp).
void CheckVacuum(TimestampTz now) {
    if (st.extension_gone || vacuum_threshold <= 0 || now < st.next_vacuum_check) return;
    st.next_vacuum_check = TimestampTzPlusMilliseconds(now, kVacuumCheckMs);
    Run("hot-table vacuum check", UnitVacuumCheck, &st.slot_index);
}

void LeaveIfExtensionGone() {
    if (!st.extension_gone) return;
    ereport(LOG, (errmsg("jobq worker leaves database \"%s\": extension jobq is not installed",
                         st.dbname)));
    proc_exit(0);
}

// Handler workers, counters, and the turn's memory.
void FinishTurn() {
    ManageHandlers(GetCurrentTimestamp());
    PublishCounters();
    MemoryContextReset(st.loop_cxt);
}

// Sleeps on the latch until the earliest deadline (next due job, next
// scan, rescue, schedule tick or prune, at most jobq.naptime), or the end
// of the tick spacing, or a wake-up: a producer's commit, SIGTERM, SIGHUP
// or postmaster death set the latch and end the sleep at once.
void SleepUntilNextDeadline() {
    TimestampTz now = GetCurrentTimestamp();
    TimestampTz deadline = TimestampTzPlusMilliseconds(now, naptime_ms);
    deadline = Earlier(deadline, st.next_wake_scan);
    if (st.next_due != 0) deadline = Earlier(deadline, st.next_due);
    deadline = Earlier(deadline, st.next_rescue);
    deadline = Earlier(deadline, st.next_cron);
    deadline = Earlier(deadline, st.next_prune);
    // Right after a NOTIFY tick, under a stream of commits, the next commit
    // is a few microseconds away: signalling a worker asleep on its latch
    // costs the committing backend a kill() and a context switch (15% of a
    // one-row enqueue). So until the spacing ends the slot says that the
    // worker wakes then and takes every wake-up published meanwhile, and
    // producers leave its latch alone (wakeup.cpp).
    TimestampTz quiet_until = QuietUntil();
    bool quiet = now < quiet_until && quiet_until < deadline;
    TimestampTz wake_at = quiet ? quiet_until : deadline;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    st.slot->next_deadline = deadline;
    st.slot->quiet_until = quiet ? quiet_until : 0;
    bool more = st.slot->nwakeups > 0 || st.slot->wake_all;
    LWLockRelease(shared->lock);
    if (more && !quiet) return;  // published during the turn: take them now
    // WaitLatch counts whole milliseconds. Towards a scheduled job's run_at
    // the wait is rounded down, so the job is never announced late: the
    // last fraction of a millisecond is spent in turns that find it not yet
    // due. Every other deadline rounds up, so the tick spacing under a
    // stream of commits never turns into a spin.
    bool toward_due = !quiet && st.next_due != 0 && wake_at == st.next_due;
    long timeout_ms = static_cast<long>((wake_at - now + (toward_due ? 0 : 999)) / 1000);
    if (timeout_ms <= 0) return;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
}

}  // namespace

extern "C" void jobq_db_worker_main(Datum main_arg) {
    Oid dboid = DatumGetObjectId(main_arg);
    WorkerExtra extra;
    memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof extra);

    SetUpSignals();
    if (!ClaimSlot(dboid, extra.slot_index)) proc_exit(0);
    Connect(dboid);
    if (!StartUp(dboid)) proc_exit(0);

    for (;;) {
        HandleInterrupts();
        if (WaitWhileRestoring(st.dbname)) continue;  // a dump restore is still filling the tables
        TimestampTz now = GetCurrentTimestamp();
        TickWakeups(now);
        RescueLeases(now);
        RunSchedules(now);
        PruneHistory(now);
        CheckVacuum(now);
        LeaveIfExtensionGone();
        FinishTurn();
        SleepUntilNextDeadline();
    }
}
