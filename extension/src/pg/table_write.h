// The executor state that writing a relation's rows outside a plan needs
// (job_insert.cpp, claim_direct.cpp, complete_direct.cpp): a range table
// entry, a result relation and its open indexes, for ExecInsertIndexTuples.
//
// C-style on purpose: both can ereport (see guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"
}

namespace jobq::pg {

struct TableWrite {
    EState *estate;  // es_output_cid is the current command id
    ResultRelInfo *result_rel;
};

// For `rel`, locked RowExclusiveLock by the caller. An update names the
// 0-based columns it changes (updated_columns, n_updated): btree's bottom-up
// deletion takes its "index unchanged" hint from them.
TableWrite BeginTableWrite(Relation rel, const int *updated_columns = nullptr,
                           int n_updated = 0);

// Closes the indexes and frees the state and its slots.
void EndTableWrite(const TableWrite &write);

}  // namespace jobq::pg
