// jobq_worker_pg_init: the worker's part of _PG_init. Declarative: settings,
// shared-memory hooks (chained), the launcher's registration, and a utility
// hook that moves our workers out of the way of DROP DATABASE, ALTER
// DATABASE ... RENAME / SET TABLESPACE and CREATE DATABASE ... TEMPLATE,
// which all refuse to run while another process is connected.
#include "worker/wakeup.h"

#include "worker/control.h"
#include "worker/gucs.h"
#include "worker/restore_guard.h"
#include "worker/shmem.h"

extern "C" {
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
}

namespace {

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;

void ShmemRequest() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    jobq::worker::RequestSharedMemory();
}

void ShmemStartup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    jobq::worker::InitSharedMemory();
}

// The database a utility statement needs to itself: NULL for most.
const char *DatabaseNeededAlone(Node *stmt) {
    switch (nodeTag(stmt)) {
        case T_DropdbStmt:
            return reinterpret_cast<DropdbStmt *>(stmt)->dbname;
        case T_RenameStmt: {
            auto *rename = reinterpret_cast<RenameStmt *>(stmt);
            return rename->renameType == OBJECT_DATABASE ? rename->subname : nullptr;
        }
        case T_AlterDatabaseStmt: {
            auto *alter = reinterpret_cast<AlterDatabaseStmt *>(stmt);
            ListCell *lc;
            foreach (lc, alter->options) {
                DefElem *opt = static_cast<DefElem *>(lfirst(lc));
                if (strcmp(opt->defname, "tablespace") == 0) return alter->dbname;
            }
            return nullptr;
        }
        case T_CreatedbStmt: {
            auto *create = reinterpret_cast<CreatedbStmt *>(stmt);
            ListCell *lc;
            foreach (lc, create->options) {
                DefElem *opt = static_cast<DefElem *>(lfirst(lc));
                if (strcmp(opt->defname, "template") == 0 && opt->arg != nullptr)
                    return defGetString(opt);
            }
            return "template1";
        }
        default:
            return nullptr;
    }
}

void JobqProcessUtility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                        ProcessUtilityContext context, ParamListInfo params,
                        QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) {
    volatile Oid stopped = InvalidOid;
    jobq::worker::NoteUtilityForRestoreGuard(pstmt->utilityStmt);
    if (jobq::worker::shared != nullptr) {
        const char *dbname = DatabaseNeededAlone(pstmt->utilityStmt);
        if (dbname != nullptr) {
            Oid dboid = get_database_oid(dbname, true);
            if (OidIsValid(dboid) && dboid != MyDatabaseId) {
                jobq::worker::StopDatabaseWorkers(dboid);
                stopped = dboid;
            }
        }
    }
    PG_TRY();
    {
        if (prev_process_utility_hook)
            prev_process_utility_hook(pstmt, query_string, read_only_tree, context, params,
                                      query_env, dest, qc);
        else
            standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                    dest, qc);
    }
    PG_FINALLY();
    {
        // The command is done (its commit follows at once): let the
        // launcher restart the worker soon, if the database still exists.
        if (OidIsValid(stopped)) jobq::worker::AllowDatabaseWorkers(stopped, 1000);
    }
    PG_END_TRY();
}

void RegisterLauncher() {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "jobq");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "jobq_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "jobq launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "jobq launcher");
    worker.bgw_main_arg = static_cast<Datum>(0);
    worker.bgw_notify_pid = 0;
    RegisterBackgroundWorker(&worker);
}

}  // namespace

extern "C" void jobq_worker_pg_init(void) {
    if (!process_shared_preload_libraries_in_progress) return;
    jobq::worker::DefineWorkerSettings();

    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = ShmemRequest;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = ShmemStartup;
    prev_process_utility_hook = ProcessUtility_hook;
    ProcessUtility_hook = JobqProcessUtility;

    RegisterLauncher();
}
