// enqueue_many: a batch of jobs into one queue in one statement, ids in
// payload order.
//
// Without unique_keys the batch goes in without SPI, through
// heap_multi_insert (InsertDirect, store/job_insert.cpp), unless jobq.job
// carries rules of its user's; then, as with keys, it is one planned
// INSERT.
//
// With unique_keys (keep mode only), the batch is still one INSERT ... ON
// CONFLICT DO NOTHING: a payload whose key an unfinished job holds, or an
// earlier payload of the same batch, gets that job's id instead of a new
// job. Only the payloads the statement skipped take the single-job path
// (InsertKeep), which finds the holder and retries if it finished
// meanwhile.
#include <cstdlib>
#include <cstring>

#include "core/validate.h"
#include "pg/guard.h"
#include "pg/owner_rights.h"
#include "pg/spi.h"
#include "sql_api/args.h"
#include "sql_api/statements.h"
#include "sql_api/enqueue.h"
#include "worker/wakeup.h"

extern "C" {
#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
}

namespace {

namespace stmt = jobq::sql::stmt;

// A key the batch statement inserted, and its job.
struct KeyedId {
    const char *key;
    int64 id;
};

int CompareKeyedId(const void *a, const void *b) {
    return strcmp(static_cast<const KeyedId *>(a)->key, static_cast<const KeyedId *>(b)->key);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(jobq_enqueue_many);

// enqueue_many(queue, payloads, run_at, priority, max_attempts, unique_keys)
// returns setof bigint
Datum jobq_enqueue_many(PG_FUNCTION_ARGS) {
    jobq::sql::EnqueueArgs args;
    jobq::sql::ReadCommonArgs(fcinfo, 2, &args);
    jobq::sql::RequireArg(fcinfo, 1, "payloads");
    ArrayType *payloads = PG_GETARG_ARRAYTYPE_P(1);
    Datum *elems;
    bool *elem_nulls;
    int n = jobq::pg::DatumArrayElements(payloads, JSONBOID, &elems, &elem_nulls);
    for (int i = 0; i < n; ++i) {
        if (elem_nulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("payloads must not contain null elements"),
                            errdetail("Element %d is null.", i + 1)));
        jobq::sql::CheckPayload(elems[i]);
    }
    // PG_NARGS: a database whose jobq functions were created by an older
    // build of the same version passes fewer arguments.
    bool keyed = PG_NARGS() > 5 && !PG_ARGISNULL(5);
    ArrayType *keys = keyed ? PG_GETARG_ARRAYTYPE_P(5) : nullptr;
    Datum *key_elems = nullptr;
    bool *key_nulls = nullptr;
    if (keyed) {
        int nkeys = jobq::pg::DatumArrayElements(keys, TEXTOID, &key_elems, &key_nulls);
        if (nkeys != n)
            ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                            errmsg("unique_keys must have one element per payload"),
                            errdetail("%d payloads, %d unique keys.", n, nkeys),
                            errhint("Use NULL for a payload without a key.")));
        for (int i = 0; i < n; ++i) {
            if (key_nulls[i]) continue;
            Size key_bytes = toast_raw_datum_size(key_elems[i]) - VARHDRSZ;
            if (key_bytes > jobq::kMaxUniqueKeyLength)
                ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                                errmsg("unique_keys element %d is too long (%zu bytes)", i + 1,
                                       static_cast<size_t>(key_bytes)),
                                errdetail("Unique keys have at most %zu bytes.",
                                          jobq::kMaxUniqueKeyLength),
                                errhint("Use a digest of a longer key, such as md5(key).")));
        }
    }

    jobq::pg::BeginMaterializedResult(fcinfo);
    Datum queue = CStringGetTextDatum(args.queue);
    if (!keyed) {
        int64 *ids = static_cast<int64 *>(palloc(sizeof(int64) * (n + 1)));
        if (jobq::sql::InsertDirect(args, queue, elems, n, ids)) {
            for (int i = 0; i < n; ++i) {
                Datum id = Int64GetDatum(ids[i]);
                bool isnull = false;
                jobq::pg::PutResultRow(fcinfo, &id, &isnull);
            }
            if (n > 0) jobq_note_wakeup(args.queue, jobq::sql::RunAt(args));
            return static_cast<Datum>(0);
        }
    }
    Datum values[6] = {queue,       PointerGetDatum(payloads), Int16GetDatum(args.priority),
                       args.run_at, args.max_attempts,         PointerGetDatum(keys)};
    char nulls[7] = {' ', ' ', ' ', args.run_at_null, args.max_attempts_null, ' ', '\0'};
    // The SQL paths run with the owner's rights (see pg/owner_rights.h).
    jobq::pg::SavedRights caller;
    jobq::pg::BeginOwnerRights(fcinfo, &caller);
    SPI_connect();
    jobq::pg::ExecPlan(keyed ? &stmt::insert_many_keyed : &stmt::insert_many, values, nulls, false);
    uint64 returned = SPI_processed;
    if (returned == 0) jobq::sql::RequireQueue(queue, args.queue);
    bool any_inserted = returned > 0;

    if (!keyed) {
        for (uint64 row = 0; row < returned; ++row) {
            bool isnull = false;
            Datum id = jobq::pg::ResultValue(row, 1, &isnull);
            jobq::pg::PutResultRow(fcinfo, &id, &isnull);
        }
    } else {
        // Rows come back in payload order (ORDER BY p.n): keyless payloads
        // take them in turn; keyed ones look their key up.
        int64 *keyless = static_cast<int64 *>(palloc(sizeof(int64) * (returned + 1)));
        KeyedId *inserted = static_cast<KeyedId *>(palloc(sizeof(KeyedId) * (returned + 1)));
        uint64 n_keyless = 0, n_inserted = 0;
        for (uint64 row = 0; row < returned; ++row) {
            bool isnull = false;
            int64 id = DatumGetInt64(jobq::pg::ResultValue(row, 1, &isnull));
            char *key = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2);
            if (key == nullptr)
                keyless[n_keyless++] = id;
            else
                inserted[n_inserted++] = KeyedId{key, id};
        }
        qsort(inserted, n_inserted, sizeof(KeyedId), CompareKeyedId);
        uint64 next_keyless = 0;
        for (int i = 0; i < n; ++i) {
            int64 id;
            if (key_nulls[i]) {
                // Every keyless payload is inserted (nothing to conflict
                // with), unless something outside jobq, such as a trigger,
                // dropped a row.
                if (next_keyless >= n_keyless)
                    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                                    errmsg("jobq: enqueue_many inserted fewer jobs than it was "
                                           "given without a unique key")));
                id = keyless[next_keyless++];
            } else {
                KeyedId probe{TextDatumGetCString(key_elems[i]), 0};
                auto *hit = static_cast<KeyedId *>(
                    bsearch(&probe, inserted, n_inserted, sizeof(KeyedId), CompareKeyedId));
                if (hit != nullptr) {
                    id = hit->id;
                } else {
                    // Held by an unfinished job from before this batch.
                    Datum one[6] = {queue,       elems[i],          Int16GetDatum(args.priority),
                                    args.run_at, args.max_attempts, key_elems[i]};
                    char one_nulls[7] = {' ', ' ', ' ', args.run_at_null, args.max_attempts_null,
                                         ' ', '\0'};
                    jobq::sql::InsertedJob job{};
                    if (!jobq::sql::InsertKeep(args.queue, one, one_nulls, &job))
                        ereport(ERROR,
                                (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                                 errmsg("could not enqueue into queue \"%s\" with unique key "
                                        "\"%s\": too many concurrent changes to the key",
                                        args.queue, probe.key),
                                 errhint("Retry the transaction.")));
                    id = job.id;
                    any_inserted = any_inserted || job.inserted;
                }
            }
            Datum out = Int64GetDatum(id);
            bool out_null = false;
            jobq::pg::PutResultRow(fcinfo, &out, &out_null);
        }
    }
    SPI_finish();
    jobq::pg::EndOwnerRights(&caller);
    if (any_inserted) jobq_note_wakeup(args.queue, jobq::sql::RunAt(args));
    return static_cast<Datum>(0);
}

}  // extern "C"
