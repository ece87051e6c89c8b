// The jobq launcher: one process per cluster, connected to no database.
//
// Every second (or when its latch is set: a database worker exited, or
// CREATE EXTENSION jobq committed somewhere) it reads pg_database and makes
// sure each connectable, non-template database (or each one listed in
// jobq.database_names) has a database worker:
//   - a database never seen, or seen without the extension longer than
//     jobq.launcher_naptime ago, gets a worker that looks for the extension
//     and leaves at once if it is missing (slot state "no extension");
//   - a worker that exited for any other reason (terminated, ERROR) is
//     restarted after jobq.worker_restart_delay;
//   - a dropped database's slot is freed.
// Database workers are dynamic bgworkers with BGW_NEVER_RESTART: the
// launcher, not the postmaster, decides about restarts, so a dropped
// database is never retried in a loop.
//
// Error policy: crash-only. Any ERROR here is promoted to FATAL (no handler
// is installed), the launcher exits and the postmaster restarts it after
// bgw_restart_time; its state lives in shared memory and is reconciled on
// start (database workers keep running meanwhile).
#include <cstring>

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/shmem.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

using namespace jobq::worker;

constexpr int kStartTimeoutMs = 60 * 1000;  // STARTING longer than this: assume it failed

struct DbEntry {
    Oid oid;
    char name[NAMEDATALEN];
};

BackgroundWorkerHandle **handles = nullptr;  // per slot, launcher-local
bool warned_no_slot = false;

// Frees or re-initialises a slot, keeping its wake-up generation moving so
// a producer's lock-free check (wakeup.cpp) never trusts stale entries.
void ResetSlot(DbSlot *slot) {
    uint64 generation = slot->wake_generation;
    memset(slot, 0, sizeof *slot);
    slot->wake_generation = generation + 1;
}
bool warned_no_bgworker = false;

void OnLauncherExit(int, Datum) {
    if (shared == nullptr) return;
    if (LWLockHeldByMe(shared->lock)) LWLockRelease(shared->lock);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (shared->launcher_pid == MyProcPid) {
        shared->launcher_pid = 0;
        shared->launcher_latch = nullptr;
    }
    LWLockRelease(shared->lock);
}

// Is `name` listed in jobq.database_names? (Empty setting: every database.)
bool DatabaseWanted(const char *name) {
    const char *list = database_names;
    if (list == nullptr || *list == '\0') return true;
    size_t len = strlen(name);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') ++p;
        const char *start = p;
        while (*p && *p != ',') ++p;
        const char *end = p;
        while (end > start && end[-1] == ' ') --end;
        if (static_cast<size_t>(end - start) == len && strncmp(start, name, len) == 0) return true;
    }
    return false;
}

// The databases that should have a worker, palloc'd in `cxt`.
int ListDatabases(MemoryContext cxt, DbEntry **out) {
    int n = 0, cap = 16;
    DbEntry *entries = static_cast<DbEntry *>(MemoryContextAlloc(cxt, sizeof(DbEntry) * cap));
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tup));
        if (!db->datallowconn || db->datistemplate) continue;
        if (!DatabaseWanted(NameStr(db->datname))) continue;
        if (n == cap) {
            cap *= 2;
            entries = static_cast<DbEntry *>(repalloc(entries, sizeof(DbEntry) * cap));
        }
        entries[n].oid = db->oid;
        strlcpy(entries[n].name, NameStr(db->datname), NAMEDATALEN);
        ++n;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    *out = entries;
    return n;
}

bool StartDatabaseWorker(int index, const DbEntry &db) {
    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "jobq worker for database %s", db.name);
    bool registered =
        StartDynamicWorker("jobq_db_worker_main", "jobq worker", name, ObjectIdGetDatum(db.oid),
                           WorkerExtra{index, -1, 0}, &handles[index]);
    if (!registered) {
        if (!warned_no_bgworker)
            ereport(WARNING,
                    (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                     errmsg("jobq launcher could not start a worker for database \"%s\"", db.name),
                     errhint("Increase max_worker_processes.")));
        warned_no_bgworker = true;
        return false;
    }
    warned_no_bgworker = false;
    return true;
}

void Reconcile(MemoryContext cxt) {
    DbEntry *dbs = nullptr;
    int ndbs = ListDatabases(cxt, &dbs);
    TimestampTz now = GetCurrentTimestamp();
    int *to_start = static_cast<int *>(MemoryContextAlloc(cxt, sizeof(int) * shared->nslots));
    int *to_start_db = static_cast<int *>(MemoryContextAlloc(cxt, sizeof(int) * shared->nslots));
    int nstart = 0;

    // Launcher-local view of the workers' handles, read before the lock.
    bool *stopped = static_cast<bool *>(MemoryContextAllocZero(cxt, sizeof(bool) * shared->nslots));
    for (int i = 0; i < shared->nslots; ++i) {
        pid_t pid;
        if (handles[i] != nullptr && GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
            stopped[i] = true;
    }

    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    bool rescan = shared->rescan_requested;
    Oid rescan_dboid = shared->rescan_dboid;
    shared->rescan_requested = false;

    // Free slots of databases that are gone or no longer wanted.
    for (int i = 0; i < shared->nslots; ++i) {
        DbSlot *slot = &shared->slots[i];
        if (slot->state == kSlotFree) continue;
        bool listed = false;
        for (int d = 0; d < ndbs && !listed; ++d) listed = dbs[d].oid == slot->dboid;
        if (listed) continue;
        if (slot->pid != 0) {
            slot->stop_requested = true;  // e.g. removed from jobq.database_names
            if (slot->latch) SetLatch(slot->latch);
        } else if (slot->state != kSlotStarting || stopped[i]) {
            ResetSlot(slot);
        }
    }

    for (int d = 0; d < ndbs; ++d) {
        DbSlot *slot = FindSlot(dbs[d].oid);
        int index;
        if (slot == nullptr) {
            index = -1;
            for (int i = 0; i < shared->nslots && index < 0; ++i)
                if (shared->slots[i].state == kSlotFree) index = i;
            if (index < 0) {
                if (!warned_no_slot)
                    ereport(WARNING,
                            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                             errmsg("jobq launcher cannot serve database \"%s\"", dbs[d].name),
                             errdetail("All %d database slots are in use.", shared->nslots),
                             errhint("Increase jobq.max_databases or set jobq.database_names.")));
                warned_no_slot = true;
                continue;
            }
            slot = &shared->slots[index];
            ResetSlot(slot);
            slot->dboid = dbs[d].oid;
            slot->state = kSlotExited;
            slot->state_changed_at = 0;  // start at once
        }
        index = static_cast<int>(slot - shared->slots);
        bool start = false;
        switch (slot->state) {
            case kSlotRunning:
                if (stopped[index] && slot->pid == 0) {
                    slot->state = kSlotExited;
                    slot->state_changed_at = now;
                }
                break;
            case kSlotStarting:
                if (stopped[index] ||
                    (handles[index] == nullptr &&
                     TimestampDifferenceExceeds(slot->state_changed_at, now, kStartTimeoutMs))) {
                    slot->state = kSlotExited;
                    slot->state_changed_at = now;
                }
                break;
            case kSlotNoExtension:
                start = (rescan && (rescan_dboid == slot->dboid || !OidIsValid(rescan_dboid))) ||
                        TimestampDifferenceExceeds(slot->state_changed_at, now,
                                                   launcher_naptime_s * 1000);
                break;
            case kSlotExited:
                start =
                    (slot->state_changed_at == 0 ||
                     TimestampDifferenceExceeds(slot->state_changed_at, now, restart_delay_ms)) &&
                    now >= slot->blocked_until;
                break;
            default:
                break;
        }
        if (start && slot->pid == 0) {
            slot->state = kSlotStarting;
            slot->state_changed_at = now;
            slot->stop_requested = false;
            to_start[nstart] = index;
            to_start_db[nstart] = d;
            ++nstart;
        }
    }
    LWLockRelease(shared->lock);

    for (int i = 0; i < nstart; ++i) {
        if (!StartDatabaseWorker(to_start[i], dbs[to_start_db[i]])) {
            LWLockAcquire(shared->lock, LW_EXCLUSIVE);
            DbSlot *slot = &shared->slots[to_start[i]];
            if (slot->state == kSlotStarting) {
                slot->state = kSlotExited;
                slot->state_changed_at = GetCurrentTimestamp();
            }
            LWLockRelease(shared->lock);
        }
    }
}

}  // namespace

namespace jobq::worker {

void StopDatabaseWorkers(Oid dboid) {
    pid_t pids[2 + kMaxHandlerWorkers];
    int npids = 0;
    TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = FindSlot(dboid);
    if (slot != nullptr) {
        slot->blocked_until = TimestampTzPlusMilliseconds(now, 10 * 1000);
        slot->stop_requested = true;
        if (slot->pid != 0) pids[npids++] = slot->pid;
        for (auto &h : slot->handlers)
            if (h.pid != 0) pids[npids++] = h.pid;
        if (slot->vacuum_pid != 0) pids[npids++] = slot->vacuum_pid;
    }
    LWLockRelease(shared->lock);
    if (npids == 0) return;
    for (int i = 0; i < npids; ++i) kill(pids[i], SIGTERM);
    // Wait for them to leave (the command itself waits 5 more seconds).
    for (int waited = 0; waited < 5000; waited += 20) {
        bool gone = true;
        LWLockAcquire(shared->lock, LW_SHARED);
        slot = FindSlot(dboid);
        if (slot != nullptr) {
            gone = slot->pid == 0;
            for (auto &h : slot->handlers) gone = gone && h.pid == 0;
            gone = gone && slot->vacuum_pid == 0;
        }
        LWLockRelease(shared->lock);
        if (gone) return;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

void AllowDatabaseWorkers(Oid dboid, int delay_ms) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = FindSlot(dboid);
    if (slot != nullptr)
        slot->blocked_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
    LWLockRelease(shared->lock);
}

}  // namespace jobq::worker

extern "C" void jobq_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname("jobq launcher");

    if (shared == nullptr) proc_exit(0);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->launcher_pid = MyProcPid;
    shared->launcher_latch = MyLatch;
    LWLockRelease(shared->lock);
    before_shmem_exit(OnLauncherExit, 0);

    handles = static_cast<BackgroundWorkerHandle **>(MemoryContextAllocZero(
        TopMemoryContext, sizeof(BackgroundWorkerHandle *) * shared->nslots));
    MemoryContext loop_cxt =
        AllocSetContextCreate(TopMemoryContext, "jobq launcher loop", ALLOCSET_DEFAULT_SIZES);
    ereport(LOG, (errmsg("jobq launcher started")));

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        MemoryContext old = MemoryContextSwitchTo(loop_cxt);
        Reconcile(loop_cxt);
        MemoryContextSwitchTo(old);
        MemoryContextReset(loop_cxt);
        pgstat_report_activity(STATE_IDLE, nullptr);

        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
