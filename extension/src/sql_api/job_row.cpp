// jobq._job_row_valid(...): the CHECK constraint of jobq.job, in C.
//
// Four SQL CHECK constraints cost every single-row INSERT or UPDATE about
// 3.6 kB of node strings to parse (the executor rebuilds constraint
// expressions per statement), a third of the CPU of jobq.enqueue. One call
// to this function keeps the same invariant at a tenth of the parse cost.
#include "core/validate.h"
#include "pg/compat.h"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
}

extern "C" {

PG_FUNCTION_INFO_V1(jobq_job_row_valid);

// (state text, attempt integer, max_attempts integer, lease_token bigint,
//  lease_expires_at timestamptz) returns boolean; not strict: NULLs matter.
Datum jobq_job_row_valid(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_BOOL(false);
    text *state = PG_GETARG_TEXT_PP(0);
    jobq::LiveJobRow row{
        std::string_view(VARDATA_ANY(state), VARSIZE_ANY_EXHDR(state)),
        PG_GETARG_INT32(1),
        PG_GETARG_INT32(2),
        !PG_ARGISNULL(3),
        !PG_ARGISNULL(4),
    };
    PG_RETURN_BOOL(jobq::IsValidLiveJobRow(row));
}

}  // extern "C"
