#include "sql_api/settle_isolated.h"

#include "pg/subxact.h"

extern "C" {
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace {

// Errors that say nothing about one job: raised as they are, never
// isolated (a cancel must cancel; a serialization failure or deadlock
// asks the caller to retry the transaction).
bool BelongsToTransaction(int sqlerrcode) {
    if (sqlerrcode == ERRCODE_QUERY_CANCELED) return true;
    const char *state = unpack_sql_state(sqlerrcode);
    return strncmp(state, "40", 2) == 0      // transaction rollback
           || strncmp(state, "53", 2) == 0   // insufficient resources
           || strncmp(state, "57", 2) == 0   // operator intervention
           || strncmp(state, "58", 2) == 0   // system error
           || strncmp(state, "XX", 2) == 0;  // internal error
}

}  // namespace

namespace jobq::sql {

void SettleIsolated(const int64 *ids, int n, const char *verb,
                    void (*settle)(void *context, int first, int count), void *context) {
    if (n <= 1) {
        settle(context, 0, n);
        return;
    }
    ErrorData *error = nullptr;
    if (jobq::pg::TryInSubtransaction([&] { settle(context, 0, n); }, &error)) return;
    if (BelongsToTransaction(error->sqlerrcode)) ReThrowError(error);
    FreeErrorData(error);
    for (int i = 0; i < n; ++i) {
        ErrorData *job_error = nullptr;
        if (jobq::pg::TryInSubtransaction([&] { settle(context, i, 1); }, &job_error)) continue;
        if (BelongsToTransaction(job_error->sqlerrcode)) ReThrowError(job_error);
        ereport(WARNING,
                (errcode(job_error->sqlerrcode),
                 errmsg("jobq: job %lld was not %s: %s", static_cast<long long>(ids[i]), verb,
                        job_error->message),
                 job_error->detail ? errdetail_internal("%s", job_error->detail) : 0,
                 errhint("The other jobs of the call were settled. This one is left as it was "
                         "and is missing from the result.")));
        FreeErrorData(job_error);
    }
}

Datum SliceArray(const Datum *values, const bool *nulls, int first, int count, Oid elemtype) {
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
    int dims[1] = {count};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(const_cast<Datum *>(values + first),
                                              nulls ? const_cast<bool *>(nulls + first) : nullptr,
                                              1, dims, lbs, elemtype, typlen, typbyval, typalign));
}

}  // namespace jobq::sql
