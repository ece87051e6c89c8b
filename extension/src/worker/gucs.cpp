// Worker settings. Everything but jobq.max_databases (it sizes shared
// memory) is reloaded on SIGHUP; only superusers (or ALTER SYSTEM) set them.
#include "worker/gucs.h"

#include <climits>

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace jobq::worker {

char *database_names = nullptr;
int launcher_naptime_s = 60;
int max_databases = 32;
int naptime_ms = 1000;
int rescue_interval_ms = 5000;
int prune_interval_ms = 60000;
int prune_batch_size = 1000;
int handler_workers = 1;
int handler_batch_size = 10;
int restart_delay_ms = 5000;
int vacuum_threshold = 50000;
bool wakeups_enabled = true;
int wakeup_interval_us = 1000;

void DefineWorkerSettings() {
    DefineCustomStringVariable(
        "jobq.database_names", "Databases the jobq background worker serves.",
        "Comma-separated database names. Empty: every database that has the jobq extension.",
        &database_names, "", PGC_SIGHUP, GUC_LIST_INPUT, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.launcher_naptime",
        "How often the launcher looks again for the extension in databases that lack it.",
        "CREATE EXTENSION jobq starts a worker at once; this only bounds the delay in other cases.",
        &launcher_naptime_s, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.max_databases", "Most databases the jobq background worker can serve.", nullptr,
        &max_databases, 32, 1, 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.naptime", "Longest sleep of a jobq database worker.",
        "The worker wakes earlier for commits, due jobs, schedules and maintenance.", &naptime_ms,
        1000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("jobq.rescue_interval",
                            "How often the worker returns jobs with expired leases to the queue.",
                            nullptr, &rescue_interval_ms, 5000, 10, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("jobq.prune_interval",
                            "How often the worker deletes finished jobs past their retention.",
                            nullptr, &prune_interval_ms, 60000, 10, 24 * 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.prune_batch_size", "Finished jobs deleted per pruning transaction.", nullptr,
        &prune_batch_size, 1000, 1, 1000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.handler_workers", "Processes per database that run in-database handlers.",
        "0 disables in-database handlers. Each counts against max_worker_processes.",
        &handler_workers, 1, 0, 16, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.handler_batch_size",
        "Jobs an in-database handler worker claims at a time from each handler queue.", nullptr,
        &handler_batch_size, 10, 1, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("jobq.worker_restart_delay",
                            "Delay before the launcher restarts a database worker that exited.",
                            nullptr, &restart_delay_ms, 5000, 0, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.vacuum_threshold",
        "Dead tuples in jobq.job, beyond what the last vacuum left, that start a vacuum of it.",
        "The worker starts a short-lived \"jobq vacuum\" process (one max_worker_processes "
        "slot) so freed space is reused well before autovacuum would come by. 0: leave it to "
        "autovacuum.",
        &vacuum_threshold, 50000, 0, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "jobq.wakeup_interval", "Shortest spacing of the worker's NOTIFY ticks, in microseconds.",
        "Under a stream of commits one tick then announces many of them; a commit after a quiet "
        "spell is announced at once. 0: no spacing.",
        &wakeup_interval_us, 1000, 0, 1000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("jobq.wakeups",
                             "Publishes committed enqueues to the worker, which notifies runners.",
                             "Off: runners rely on polling alone.", &wakeups_enabled, true,
                             PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

}  // namespace jobq::worker
