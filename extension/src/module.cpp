// Module entry: PG_MODULE_MAGIC and _PG_init. Declarative only: define the
// settings, then let the background worker register itself when jobq is in
// shared_preload_libraries (worker/launcher decides).
#include "pg/settings.h"
#include "worker/wakeup.h"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

extern "C" void _PG_init(void) {
    if (IsBinaryUpgrade) return;
    jobq::pg::DefineCoreSettings();
    jobq_worker_pg_init();
    MarkGUCPrefixReserved("jobq");
}
