// Whether jobq's tables are exactly as jobq creates them, for the paths
// that write them without SQL (job_insert.cpp, claim_direct.cpp,
// complete_direct.cpp).
//
// C-style on purpose (see pg/guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/relcache.h"
}

namespace jobq::store {

// True when jobq.job has no trigger, rule, row-level security, partition
// bound or generated column, and job_row_valid is its only CHECK: then
// writing rows through the table AM and the executor's index insertion,
// checked with the C predicate of job_row_valid, does all a statement
// would. Otherwise the caller runs SQL, which applies the rest.
bool JobTableIsJobqs(Relation job);

// The same test for any of jobq's tables, whose only CHECK is `check_name`.
bool TableHasOnlyJobqRules(Relation rel, const char *check_name);

}  // namespace jobq::store
