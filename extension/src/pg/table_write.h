// The executor state that writing a relation's rows outside a plan needs
// (job_insert.cpp, claim_direct.cpp, complete_direct.cpp): a range table
// entry, a result relation and its open indexes, for ExecInsertIndexTuples.
//
// C-style on purpose: both can ereport (see guard.h).
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/tuptable.h"
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
TableWrite BeginTableWrite(Relation rel, const int *updated_columns = nullptr, int n_updated = 0);

// Closes the indexes and frees the state and its slots.
void EndTableWrite(const TableWrite &write);

// Rows per InsertSlots call: bounds the slots held at once (COPY buffers
// 1,000 rows too).
constexpr int kInsertBatchRows = 1000;

// Virtual slots for inserting up to n rows (at most kInsertBatchRows, at
// least 1) into the write's relation. They share an unreferenced copy of
// its descriptor: slots of the relation's own pin it each in the resource
// owner, which perf put at a fifth of a 1,000-job complete.
TupleTableSlot **MakeInsertSlots(const TableWrite &write, int n);

// Inserts the rows stored in slots[0..rows) (heap_multi_insert for more
// than one: one WAL record per heap page, not per row), then their index
// entries, and clears the slots.
void InsertSlots(const TableWrite &write, TupleTableSlot **slots, int rows);

}  // namespace jobq::pg
