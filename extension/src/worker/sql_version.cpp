// See sql_version.h. JOBQ_VERSION is default_version in jobq.control,
// passed in by the Makefile.
#include "worker/sql_version.h"

#include "worker/statements.h"
#include "worker/tx.h"

extern "C" {
#include "utils/builtins.h"
}

#ifndef JOBQ_VERSION
#error "JOBQ_VERSION must be defined (the Makefile passes jobq.control's default_version)"
#endif

namespace jobq::worker {

void WarnIfSqlVersionDiffers(const char *dbname) {
    jobq::pg::ExecPlan(&stmt::installed_version, nullptr, nullptr, false);
    if (SPI_processed != 1) return;
    char *installed = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    if (installed == nullptr || strcmp(installed, JOBQ_VERSION) == 0) return;
    ereport(WARNING,
            (errmsg("jobq library %s runs with the SQL of jobq %s in database \"%s\"", JOBQ_VERSION,
                    installed, dbname),
             errdetail("Queues, jobs and the background worker keep working; what is new in "
                       "%s needs its SQL.",
                       JOBQ_VERSION),
             errhint("Run ALTER EXTENSION jobq UPDATE in database \"%s\".", dbname)));
}

}  // namespace jobq::worker
