// Starting jobq's dynamic background workers (see control.h).
#include <cstring>

#include "worker/control.h"

extern "C" {
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
}

namespace jobq::worker {

bool StartDynamicWorker(const char *function, const char *type, const char *name, Datum main_arg,
                        const WorkerExtra &extra, BackgroundWorkerHandle **handle) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "jobq");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
    worker.bgw_main_arg = main_arg;
    memcpy(worker.bgw_extra, &extra, sizeof extra);
    worker.bgw_notify_pid = MyProcPid;
    // RegisterDynamicBackgroundWorker pallocs the handle in the current
    // context; callers keep it across loop turns whose context is reset.
    BackgroundWorkerHandle *fresh = nullptr;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    bool registered = RegisterDynamicBackgroundWorker(&worker, &fresh);
    MemoryContextSwitchTo(old);
    if (!registered) return false;
    if (*handle != nullptr) pfree(*handle);
    *handle = fresh;
    return true;
}

}  // namespace jobq::worker
