#include "pg/table_write.h"

#include "pg/compat.h"

extern "C" {
#include "access/sysattr.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "utils/rel.h"
}

namespace jobq::pg {

TableWrite BeginTableWrite(Relation rel, const int *updated_columns, int n_updated) {
    EState *estate = CreateExecutorState();
    Bitmapset *updated_cols = nullptr;
    for (int i = 0; i < n_updated; ++i)
        updated_cols = bms_add_member(updated_cols,
                                      updated_columns[i] + 1 - FirstLowInvalidHeapAttributeNumber);
    InitSingleRangeTable(estate, rel, RowExclusiveLock, updated_cols);
    estate->es_output_cid = GetCurrentCommandId(true);
    ResultRelInfo *result_rel = makeNode(ResultRelInfo);
    InitResultRelInfo(result_rel, rel, 1, nullptr, 0);
    ExecOpenIndices(result_rel, false);
    return TableWrite{estate, result_rel};
}

void EndTableWrite(const TableWrite &write) {
    ExecCloseIndices(write.result_rel);
    ExecResetTupleTable(write.estate->es_tupleTable, false);
    FreeExecutorState(write.estate);
}

TupleTableSlot **MakeInsertSlots(const TableWrite &write, int n) {
    int count = n < 1 ? 1 : (n < kInsertBatchRows ? n : kInsertBatchRows);
    TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(write.result_rel->ri_RelationDesc));
    auto **slots = static_cast<TupleTableSlot **>(palloc(sizeof(TupleTableSlot *) * count));
    for (int i = 0; i < count; ++i)
        slots[i] = ExecInitExtraTupleSlot(write.estate, desc, &TTSOpsVirtual);
    return slots;
}

void InsertSlots(const TableWrite &write, TupleTableSlot **slots, int rows) {
    Relation rel = write.result_rel->ri_RelationDesc;
    if (rows == 1)
        simple_table_tuple_insert(rel, slots[0]);
    else if (rows > 1)
        table_multi_insert(rel, slots, rows, write.estate->es_output_cid, 0, nullptr);
    for (int i = 0; i < rows; ++i) {
        list_free(InsertIndexTuples(write.result_rel, slots[i], write.estate, false, false, nullptr,
                                    NIL, false));
        ResetPerTupleExprContext(write.estate);
        ExecClearTuple(slots[i]);
    }
}

}  // namespace jobq::pg
