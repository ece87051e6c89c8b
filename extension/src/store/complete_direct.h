// complete without SPI (complete_direct.cpp).
//
// C-style on purpose (see pg/guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace jobq::store {

// Completes the jobs ids[i] still leased under tokens[i], with results[i]
// (results may be null: no results), moving them to jobq.archive, and
// appends their ids to fcinfo's materialized result. Returns how many;
// -1, having changed nothing, when jobq.job or jobq.archive carries rules
// jobq did not put there (the caller runs the SQL complete then).
int CompleteDirect(FunctionCallInfo fcinfo, const int64 *ids, const int64 *tokens, int n,
                   const Datum *results, const bool *result_nulls);

}  // namespace jobq::store
