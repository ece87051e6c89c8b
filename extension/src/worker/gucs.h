// Settings (GUCs) of the background workers. Documented in docs/settings.md.
#pragma once

namespace jobq::worker {

extern char *database_names;    // jobq.database_names (sighup): "" = auto-discovery
extern int launcher_naptime_s;  // jobq.launcher_naptime (sighup)
extern int max_databases;       // jobq.max_databases (postmaster)
extern int naptime_ms;          // jobq.naptime (sighup): longest worker sleep
extern int rescue_interval_ms;  // jobq.rescue_interval (sighup)
extern int prune_interval_ms;   // jobq.prune_interval (sighup)
extern int prune_batch_size;    // jobq.prune_batch_size (sighup)
extern int handler_workers;     // jobq.handler_workers (sighup)
extern int handler_batch_size;  // jobq.handler_batch_size (sighup)
extern int restart_delay_ms;    // jobq.worker_restart_delay (sighup)
extern int vacuum_threshold;    // jobq.vacuum_threshold (sighup): 0 = off
extern bool wakeups_enabled;    // jobq.wakeups (sighup)
extern int wakeup_interval_us;  // jobq.wakeup_interval (sighup)

void DefineWorkerSettings();

}  // namespace jobq::worker
