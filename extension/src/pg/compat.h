// Every difference between the PostgreSQL major versions jobq builds against
// (15, 16, 17, 18) lives here, and only here: the rest of the code calls the
// wrappers below and has no PG_VERSION_NUM test of its own.
//
// Vocabulary: a "compat wrapper" is an inline function in jobq::pg named
// after the Postgres function it stands for (IndexBeginScan for
// index_beginscan, TableTupleUpdate for table_tuple_update,
// InsertIndexTuples for ExecInsertIndexTuples; a Compat suffix where the
// Postgres name is already CamelCase). It takes the shape jobq needs, which
// is the newest one where the new argument matters (TU_UpdateIndexes) and
// the old one where jobq always passes the same value (18's index-scan
// instrumentation). InitSingleRangeTable stands for the range-table set-up
// around ExecInitRangeTable.
//
// Tested on 15, 17 and 18. 16 is covered from its release notes and
// sources (TU_UpdateIndexes, RTEPermissionInfo, ExecInsertIndexTuples'
// onlySummarizing and varatt.h all arrived in 16) but not tested: no Debian
// release reachable here packages it.
//
// C-style on purpose: the wrapped functions can ereport (see guard.h).
#pragma once

extern "C" {
#include "postgres.h"
}

// The Makefile stops other majors first; this is for builds that bypass it.
#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "jobq supports PostgreSQL 15, 16, 17 and 18, not this server's major version"
#endif

extern "C" {
#include "access/genam.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

#if PG_VERSION_NUM >= 160000
// 16 moved the varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR...) out of
// postgres.h.
extern "C" {
#include "varatt.h"
}
#endif

#if PG_VERSION_NUM < 160000
// PostgreSQL 16 replaced table_tuple_update's `bool *update_indexes` with
// this enum (TU_Summarizing: only BRIN-like summarizing indexes need entries).
enum TU_UpdateIndexes { TU_None, TU_All, TU_Summarizing };
#endif

namespace jobq::pg {

// table_tuple_update with 16's TU_UpdateIndexes.
inline TM_Result TableTupleUpdate(Relation rel, ItemPointer otid, TupleTableSlot *slot,
                                  CommandId cid, Snapshot snapshot, Snapshot crosscheck, bool wait,
                                  TM_FailureData *tmfd, LockTupleMode *lockmode,
                                  TU_UpdateIndexes *update_indexes) {
#if PG_VERSION_NUM >= 160000
    return table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck, wait, tmfd, lockmode,
                              update_indexes);
#else
    bool all = false;
    TM_Result result =
        table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck, wait, tmfd, lockmode, &all);
    *update_indexes = all ? TU_All : TU_None;
    return result;
#endif
}

// ExecInsertIndexTuples with 16's only_summarizing (before 16 an update
// either needed every index or none, so the flag is always false there).
inline List *InsertIndexTuples(ResultRelInfo *result_rel, TupleTableSlot *slot, EState *estate,
                               bool update, bool no_dup_err, bool *spec_conflict,
                               List *arbiter_indexes, bool only_summarizing) {
#if PG_VERSION_NUM >= 160000
    return ExecInsertIndexTuples(result_rel, slot, estate, update, no_dup_err, spec_conflict,
                                 arbiter_indexes, only_summarizing);
#else
    return ExecInsertIndexTuples(result_rel, slot, estate, update, no_dup_err, spec_conflict,
                                 arbiter_indexes);
#endif
}

// Makes `rel` range table entry 1 of `estate`, with `updated_cols` (offset
// by FirstLowInvalidHeapAttributeNumber) as the columns an update changes:
// ExecInsertIndexTuples reads them back for btree's "index unchanged" hint.
// 16 moved updatedCols from RangeTblEntry to RTEPermissionInfo (and gave
// ExecInitRangeTable the list of them); 18 added the unpruned relids.
inline void InitSingleRangeTable(EState *estate, Relation rel, LOCKMODE lockmode,
                                 Bitmapset *updated_cols) {
    RangeTblEntry *rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(rel);
    rte->relkind = rel->rd_rel->relkind;
    rte->rellockmode = lockmode;
#if PG_VERSION_NUM >= 160000
    RTEPermissionInfo *perm = makeNode(RTEPermissionInfo);
    perm->relid = rte->relid;
    perm->updatedCols = updated_cols;
    rte->perminfoindex = 1;
#if PG_VERSION_NUM >= 180000
    ExecInitRangeTable(estate, list_make1(rte), list_make1(perm), bms_make_singleton(1));
#else
    ExecInitRangeTable(estate, list_make1(rte), list_make1(perm));
#endif
#else
    rte->updatedCols = updated_cols;
    ExecInitRangeTable(estate, list_make1(rte));
#endif
}

// index_beginscan without 18's instrumentation argument.
inline IndexScanDesc IndexBeginScan(Relation heap, Relation index, Snapshot snapshot, int nkeys,
                                    int norderbys) {
#if PG_VERSION_NUM >= 180000
    return index_beginscan(heap, index, snapshot, nullptr, nkeys, norderbys);
#else
    return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

// RelationGetPrimaryKeyIndex without 18's deferrable_ok (jobq's primary
// keys are never deferrable).
inline Oid RelationGetPrimaryKeyIndexCompat(Relation rel) {
#if PG_VERSION_NUM >= 180000
    return RelationGetPrimaryKeyIndex(rel, false);
#else
    return RelationGetPrimaryKeyIndex(rel);
#endif
}

}  // namespace jobq::pg
