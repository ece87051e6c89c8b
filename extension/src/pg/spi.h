// Saved SPI plans and small helpers for the SQL entry points.
//
// C-style on purpose: code here calls Postgres functions that can ereport,
// so it holds no C++ objects with destructors (see guard.h).
//
// A PlanSlot names one statement of the extension. Its plan is prepared on
// first use in a backend and kept (SPI_keepplan); Postgres' plan cache
// revalidates it after DDL, including DROP/CREATE EXTENSION.
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
}

namespace jobq::pg {

enum class PlanMode {
    kAuto,  // Postgres' plan cache decides (plan_cache_mode)
    // Batch statements over arrays (unnest, = ANY): a generic plan cannot
    // know the batch size or the queues, and picks nested loops that are
    // quadratic in the batch (measured: 1,000-job complete in 720 ms generic
    // vs a few ms custom). Planning per call costs far less.
    kCustom,
    // Hot statements whose best plan does not depend on the values, planned
    // once per backend: planning was half of a one-job claim's time. The
    // caller must keep the plan sane at any table size (see claim.cpp).
    kGeneric,
};

struct PlanSlot {
    const char *sql;
    int nargs;
    Oid argtypes[8];
    SPIPlanPtr plan;
    PlanMode mode = PlanMode::kAuto;
};

// Runs the slot's statement with values/nulls (nulls: ' ' or 'n' per arg).
// Returns SPI's result code; raises on SPI failure.
int ExecPlan(PlanSlot *slot, Datum *values, const char *nulls, bool read_only, long count = 0);

// Value of column `col` (1-based) of row `row` of SPI_tuptable; *isnull set.
Datum ResultValue(uint64 row, int col, bool *isnull);

// Arrays: element extraction without nulls (raises on a NULL element, naming
// `what`), and construction.
int BigintArrayElements(ArrayType *array, const char *what, int64 **out);
int DatumArrayElements(ArrayType *array, Oid elemtype, Datum **values, bool **nulls);
ArrayType *MakeTextArray(const char **items, int count);

// Materialized SRF: sets up fcinfo's tuplestore; PutRow appends one row.
void BeginMaterializedResult(FunctionCallInfo fcinfo);
void PutResultRow(FunctionCallInfo fcinfo, Datum *values, bool *nulls);

}  // namespace jobq::pg
