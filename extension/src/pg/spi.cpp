#include "pg/spi.h"

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
}

namespace jobq::pg {

int ExecPlan(PlanSlot *slot, Datum *values, const char *nulls, bool read_only, long count) {
    if (slot->plan == nullptr) {
        int options = slot->mode == PlanMode::kCustom    ? CURSOR_OPT_CUSTOM_PLAN
                      : slot->mode == PlanMode::kGeneric ? CURSOR_OPT_GENERIC_PLAN
                                                         : 0;
        SPIPlanPtr plan = SPI_prepare_cursor(slot->sql, slot->nargs, slot->argtypes, options);
        if (plan == nullptr)
            elog(ERROR, "jobq: could not prepare statement: %s",
                 SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0) elog(ERROR, "jobq: could not save statement");
        slot->plan = plan;
    }
    int rc = SPI_execute_plan(slot->plan, values, nulls, read_only, count);
    if (rc < 0) elog(ERROR, "jobq: statement failed: %s", SPI_result_code_string(rc));
    return rc;
}

Datum ResultValue(uint64 row, int col, bool *isnull) {
    return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

int BigintArrayElements(ArrayType *array, const char *what, int64 **out) {
    Datum *values;
    bool *nulls;
    int n = DatumArrayElements(array, INT8OID, &values, &nulls);
    int64 *result = static_cast<int64 *>(palloc(sizeof(int64) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; ++i) {
        if (nulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("%s must not contain null elements", what)));
        result[i] = DatumGetInt64(values[i]);
    }
    *out = result;
    return n;
}

int DatumArrayElements(ArrayType *array, Oid elemtype, Datum **values, bool **nulls) {
    if (ARR_NDIM(array) > 1)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                        errmsg("multidimensional arrays are not supported")));
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
    int n = 0;
    deconstruct_array(array, elemtype, typlen, typbyval, typalign, values, nulls, &n);
    return n;
}

ArrayType *MakeTextArray(const char **items, int count) {
    Datum *datums = static_cast<Datum *>(palloc(sizeof(Datum) * (count > 0 ? count : 1)));
    for (int i = 0; i < count; ++i) datums[i] = CStringGetTextDatum(items[i]);
    return construct_array(datums, count, TEXTOID, -1, false, TYPALIGN_INT);
}

void BeginMaterializedResult(FunctionCallInfo fcinfo) {
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
}

void PutResultRow(FunctionCallInfo fcinfo, Datum *values, bool *nulls) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

}  // namespace jobq::pg
