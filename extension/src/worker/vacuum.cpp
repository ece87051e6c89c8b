// Hot-table vacuum: the database worker starts a short-lived "jobq vacuum"
// process that runs VACUUM (SKIP_LOCKED) jobq.job once the table's dead
// tuples have grown by jobq.vacuum_threshold since the last such vacuum, or
// by 1,000 and then stopped growing (a burst has ended), or when the table
// is quiet and its indexes hold deleted pages waiting to be recycled.
//
// Why not leave it to autovacuum: every job leaves two dead tuples in
// jobq.job (the claim's old version and the settled row, moved to the
// archive), and a busy queue turns the whole table over in seconds, while
// autovacuum looks at a table once per autovacuum_naptime (1 min). Until a
// VACUUM records the freed space in the free space map, new jobs extend the
// table instead of reusing it, so back-to-back bursts grow it without bound
// (BENCHMARKS.md W5). A separate process keeps the worker's wake-ups on time
// while the vacuum runs.
//
// Growth is measured from the dead tuples the previous vacuum left (it
// publishes them in the database's slot): while a long transaction pins
// xmin nothing can be removed, and the worker must not start a useless
// vacuum every second.
//
// Index pages: a vacuum that empties B-tree pages deletes them, but a
// deleted page can be reused only once no transaction that began before
// its deletion is left, and nbtree checks that against transaction ids.
// After a burst has drained, nothing consumes ids, so the vacuum that
// cleans up after it leaves every page it deleted pending, and the next
// burst grows the indexes instead of reusing them (BENCHMARKS.md W5: twice
// the size after the second burst). When a vacuum leaves enough pages
// pending for nbtree to scan for them (over 5% of an index), the process
// takes one transaction id, waits briefly for older transactions to end,
// and vacuums once more, which hands them out.
// Pages left pending otherwise (autovacuum got there first, or transactions
// of the drain still ran) are seen in the indexes' metapages at the
// worker's check, which then starts one.
//
// Error policy: see tx.h. An ERROR in the vacuum process ends it (it is
// started again at the next threshold crossing); the check is a unit of the
// database worker.
#include <algorithm>
#include <cstring>

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/shmem.h"
#include "worker/statements.h"
#include "worker/tx.h"

extern "C" {
#include "access/nbtree.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace jobq::worker {

// Dead tuples beyond the baseline that start a vacuum once they have not
// grown for kQuietChecks checks (one a second).
constexpr int64 kSettledDead = 1000;
constexpr int kQuietChecks = 2;
// Steps of 10 ms the vacuum process waits for the horizon before its second pass.
constexpr int kHorizonWaitSteps = 100;

namespace {

// Database-worker state: trivial types only.
struct VacuumState {
    BackgroundWorkerHandle *handle;  // the running or last vacuum process
    bool running;                    // handle's process had not stopped at the last check
    int64 baseline_dead;             // dead tuples the last vacuum left (0 at start)
    int64 last_dead;                 // dead tuples at the previous check
    int quiet_checks;                // checks in a row that saw last_dead again
    TransactionId next_xid_after;    // the next transaction id when our last vacuum had ended
    bool warned;                     // about max_worker_processes, once until a start succeeds
} vs;

bool StartVacuumProcess(int slot_index) {
    char name[BGW_MAXLEN];
    snprintf(name, sizeof name, "jobq vacuum for database %u", MyDatabaseId);
    bool registered = StartDynamicWorker("jobq_vacuum_worker_main", "jobq vacuum", name,
                                         ObjectIdGetDatum(MyDatabaseId),
                                         WorkerExtra{slot_index, -1, 0}, &vs.handle);
    if (!registered) {
        if (!vs.warned)
            ereport(WARNING, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                              errmsg("jobq worker could not start a vacuum of jobq.job"),
                              errhint("Increase max_worker_processes.")));
        vs.warned = true;
        return false;
    }
    vs.warned = false;
    return true;
}

// Vacuum process: its slot, to clear vacuum_pid on any exit.
DbSlot *vacuum_slot = nullptr;

void OnVacuumExit(int, Datum) {
    if (shared == nullptr || vacuum_slot == nullptr) return;
    if (LWLockHeldByMe(shared->lock)) LWLockRelease(shared->lock);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (vacuum_slot->vacuum_pid == MyProcPid) vacuum_slot->vacuum_pid = 0;
    LWLockRelease(shared->lock);
}

// Runs stmt::kVacuumJobTable. vacuum() allocates under PortalContext and runs one
// transaction per relation itself; it expects to be called inside a started
// transaction (as exec_simple_query does) and leaves one open for the caller.
void RunVacuum() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    const char *sql = stmt::kVacuumJobTable;
    pgstat_report_activity(STATE_RUNNING, sql);
    MemoryContext old = MemoryContextSwitchTo(PortalContext);
    List *trees = pg_parse_query(sql);
    RawStmt *raw = linitial_node(RawStmt, trees);
    ParseState *pstate = make_parsestate(nullptr);
    pstate->p_sourcetext = sql;
    MemoryContextSwitchTo(old);
    ExecVacuum(pstate, castNode(VacuumStmt, raw->stmt), true);
    CommitTransactionCommand();
    MemoryContextReset(PortalContext);
}

// Deleted pages that jobq.job's B-tree indexes wait to recycle, summed over
// the indexes where they are enough for nbtree to scan for them at the next
// vacuum (_bt_vacuum_needs_cleanup: over 5% of the index); 0 if there is
// none. Inside a transaction.
int64 PendingIndexPages() {
    Oid ns = get_namespace_oid("jobq", true);
    Oid relid = OidIsValid(ns) ? get_relname_relid("job", ns) : InvalidOid;
    if (!OidIsValid(relid)) return 0;
    Relation job = try_table_open(relid, AccessShareLock);  // NULL if dropped meanwhile
    if (job == nullptr) return 0;
    List *indexes = RelationGetIndexList(job);
    int64 pending = 0;
    ListCell *lc;
    foreach (lc, indexes) {
        Relation index = index_open(lfirst_oid(lc), AccessShareLock);
        if (index->rd_rel->relam == BTREE_AM_OID) {
            BlockNumber blocks = RelationGetNumberOfBlocks(index);
            if (blocks > BTREE_METAPAGE) {
                Buffer buf = ReadBuffer(index, BTREE_METAPAGE);
                LockBuffer(buf, BUFFER_LOCK_SHARE);
                BTMetaPageData *meta = BTPageGetMeta(BufferGetPage(buf));
                if (meta->btm_magic == BTREE_MAGIC && meta->btm_version >= BTREE_NOVAC_VERSION &&
                    meta->btm_last_cleanup_num_delpages > 0 &&
                    meta->btm_last_cleanup_num_delpages > blocks / 20)
                    pending += meta->btm_last_cleanup_num_delpages;
                UnlockReleaseBuffer(buf);
            }
        }
        index_close(index, AccessShareLock);
    }
    list_free(indexes);
    table_close(job, AccessShareLock);
    return pending;
}

}  // namespace

void UnitVacuumCheck(void *arg) {
    DbSlot *slot = &shared->slots[*static_cast<int *>(arg)];
    if (vs.running) {
        pid_t pid;
        if (GetBackgroundWorkerPid(vs.handle, &pid) != BGWH_STOPPED) return;
        vs.running = false;
        LWLockAcquire(shared->lock, LW_SHARED);
        int64 left = slot->vacuum_left_dead;
        LWLockRelease(shared->lock);
        if (left >= 0) vs.baseline_dead = left;
        vs.next_xid_after = ReadNextTransactionId();
    }
    if (!BeginWork("jobq: hot-table vacuum check")) {
        EndWork();
        return;
    }
    bool isnull = true;
    int64 dead = ExecInt64(&stmt::dead_tuples, nullptr, nullptr, &isnull);
    if (isnull) {
        EndWork();
        return;
    }
    // A burst that has ended: what its tail left below the threshold would
    // wait for the next burst, which would then extend the table and its
    // indexes instead of reusing their space. Two quiet checks, not one:
    // a busy backend reports its dead tuples only once a second, so one
    // check can see no change in the middle of a burst.
    vs.quiet_checks = dead == vs.last_dead ? vs.quiet_checks + 1 : 0;
    vs.last_dead = dead;
    bool quiet = vs.quiet_checks >= kQuietChecks;
    // Index pages matter only once the table is quiet: no metapage reads
    // while jobs flow (this loop also announces them).
    int64 pending = quiet ? PendingIndexPages() : 0;
    // The horizon nbtree checks deleted pages against (shared relations').
    TransactionId horizon =
        quiet ? GetOldestNonRemovableTransactionId(nullptr) : InvalidTransactionId;
    EndWork();
    // Fewer than the baseline: autovacuum or a manual VACUUM cleaned up.
    if (dead < vs.baseline_dead) vs.baseline_dead = dead;
    int64 growth = dead - vs.baseline_dead;
    bool settled = quiet && growth >= std::min<int64>(kSettledDead, vacuum_threshold);
    // Index pages left pending, by another vacuum (autovacuum, a manual
    // one) or by ours while transactions that began before it still ran:
    // a vacuum now recycles them (taking a transaction id if none has been
    // taken since). Not while a transaction older than our last vacuum's
    // end holds the horizon back (a pinned xmin): nothing deleted since
    // could be recycled yet, and the worker must not retry every second.
    bool recycle = quiet && pending > 0 && !TransactionIdPrecedes(horizon, vs.next_xid_after);
    if (growth < vacuum_threshold && !settled && !recycle) return;
    ereport(DEBUG1, (errmsg("jobq worker starts a vacuum of jobq.job: %lld dead tuples, "
                            "%lld index pages to recycle",
                            static_cast<long long>(dead), static_cast<long long>(pending))));
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    slot->vacuum_left_dead = -1;
    LWLockRelease(shared->lock);
    vs.quiet_checks = 0;
    vs.running = StartVacuumProcess(*static_cast<int *>(arg));
}

}  // namespace jobq::worker

extern "C" void jobq_vacuum_worker_main(Datum main_arg) {
    using jobq::worker::DbSlot;
    using jobq::worker::shared;
    Oid dboid = DatumGetObjectId(main_arg);
    jobq::worker::WorkerExtra extra;
    memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof extra);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    // Registered in the slot before connecting, so DROP DATABASE (which
    // stops the slot's processes, StopDatabaseWorkers) stops this one too
    // instead of waiting for a long vacuum and then failing.
    if (shared == nullptr || extra.slot_index < 0 || extra.slot_index >= shared->nslots)
        proc_exit(0);
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *own = &shared->slots[extra.slot_index];
    bool ours = own->dboid == dboid && !own->stop_requested && own->vacuum_pid == 0;
    if (ours) {
        own->vacuum_pid = MyProcPid;
        jobq::worker::vacuum_slot = own;
    }
    LWLockRelease(shared->lock);
    if (!ours) proc_exit(0);
    before_shmem_exit(jobq::worker::OnVacuumExit, 0);
    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    pgstat_report_appname("jobq vacuum");
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);

    PortalContext = AllocSetContextCreate(TopMemoryContext, "jobq vacuum", ALLOCSET_DEFAULT_SIZES);
    jobq::worker::RunVacuum();
    (void)jobq::worker::BeginWork("jobq: vacuum done");
    bool again = jobq::worker::PendingIndexPages() > 0;
    // The id: committed, it moves the horizon past the pages just deleted.
    TransactionId xid = again ? GetTopTransactionId() : InvalidTransactionId;
    jobq::worker::EndWork();
    if (again) {
        // A transaction that began before the id (a short query somewhere)
        // still holds the horizon behind it: give such ones up to a second
        // to end. A longer one (a pinned xmin) would make the second pass
        // useless: the pages are left to the worker's retry.
        bool passed = false;
        for (int i = 0; i < jobq::worker::kHorizonWaitSteps && !passed; ++i) {
            StartTransactionCommand();
            passed = TransactionIdFollows(GetOldestNonRemovableTransactionId(nullptr), xid);
            CommitTransactionCommand();
            if (!passed) {
                CHECK_FOR_INTERRUPTS();
                pg_usleep(10000L);
            }
        }
        if (passed) {
            ereport(DEBUG1, (errmsg("jobq vacuum runs again to recycle deleted index pages")));
            jobq::worker::RunVacuum();
        }
    }

    // What the vacuum could not remove (a pinned xmin) is the database
    // worker's new baseline: it waits for real growth before the next one.
    (void)jobq::worker::BeginWork("jobq: vacuum done");
    bool isnull = true;
    int64 left =
        jobq::worker::ExecInt64(&jobq::worker::stmt::dead_tuples, nullptr, nullptr, &isnull);
    jobq::worker::EndWork();
    if (!isnull && shared != nullptr && extra.slot_index >= 0 &&
        extra.slot_index < shared->nslots) {
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        DbSlot *slot = &shared->slots[extra.slot_index];
        if (slot->dboid == dboid) slot->vacuum_left_dead = left;
        LWLockRelease(shared->lock);
    }
    pgstat_report_activity(STATE_IDLE, nullptr);
    proc_exit(0);
}
