// The keyless enqueue, straight into jobq.job without SPI.
//
// Why: through SPI a one-row enqueue paid for a second executor start-up
// (the INSERT ... SELECT join with jobq.queue), plan-cache revalidation and
// SPI's own bookkeeping, together more CPU than the row and its index
// entries (profile in docs/benchmarks.md). Here the queue's defaults come
// from a per-backend cache (queue_cache.cpp) and the job goes in through
// the executor's index insertion, checked with the C predicate of the
// table's CHECK constraint.
// If the table has any rule jobq did not put there (a trigger, another
// constraint), the insert takes ExecSimpleRelationInsert, the path logical
// replication applies rows with, which enforces them all.
//
// Row-level security never applied to enqueue's insert: the function runs
// as the extension's owner, a superuser (jobq.control), who bypasses it.
//
// Statement semantics follow SPI's non-read-only execution: the command
// counter is advanced and a fresh snapshot taken after the table lock, so
// a queue created earlier in the same statement is seen and one dropped
// while we waited for the lock is not (the drop's cache invalidation
// arrives before its lock is released). Locks are kept until the end of the
// transaction, as a statement keeps them.
//
// C-style on purpose: everything here can ereport (see pg/guard.h).
#include "core/validate.h"
#include "pg/relation.h"
#include "sql_api/enqueue.h"
#include "sql_api/queue_cache.h"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"
}

namespace {

using jobq::pg::ColumnOf;
using jobq::pg::JobqRelid;

// Fills the new row: the columns jobq sets, NULL in any other (a NOT NULL
// one then fails the insert loudly rather than taking a silent default).
void FillJobRow(TupleTableSlot *slot, Datum *by_column, const bool *set_column) {
    TupleDesc desc = slot->tts_tupleDescriptor;
    ExecClearTuple(slot);
    for (int i = 0; i < desc->natts; ++i) {
        slot->tts_values[i] = by_column[i];
        slot->tts_isnull[i] = !set_column[i];
    }
    ExecStoreVirtualTuple(slot);
}

// True when the table's only rules are NOT NULL columns and job_row_valid:
// no other CHECK, trigger, generated column or partition bound. Then the
// row can be checked here with the constraint's own C predicate
// (IsValidLiveJobRow) instead of by the executor, which parses the
// constraint's expression again for every statement.
bool OnlyJobqRules(Relation job, TupleTableSlot *slot, const jobq::LiveJobRow &row) {
    TupleConstr *constr = RelationGetDescr(job)->constr;
    if (job->trigdesc != nullptr || job->rd_rel->relispartition || constr == nullptr ||
        constr->has_generated_stored || constr->num_check != 1 ||
        strcmp(constr->check[0].ccname, "job_row_valid") != 0)
        return false;
    TupleDesc desc = slot->tts_tupleDescriptor;
    for (int i = 0; i < desc->natts; ++i)
        if (TupleDescAttr(desc, i)->attnotnull && slot->tts_isnull[i]) return false;
    return jobq::IsValidLiveJobRow(row);
}

void InsertRow(Relation job, EState *estate, TupleTableSlot *slot, const jobq::LiveJobRow &row) {
    ResultRelInfo *result_rel = makeNode(ResultRelInfo);
    InitResultRelInfo(result_rel, job, 1, nullptr, 0);
    // As in logical replication's apply: enough for triggers to find it.
    estate->es_opened_result_relations = lappend(estate->es_opened_result_relations, result_rel);
    ExecOpenIndices(result_rel, false);
    if (OnlyJobqRules(job, slot, row)) {
        simple_table_tuple_insert(job, slot);
        list_free(ExecInsertIndexTuples(result_rel, slot, estate, false, false, nullptr, NIL));
    } else {
        // Anything else (or a row that breaks a rule, to get the
        // executor's own error): the full path.
        AfterTriggerBeginQuery();
        ExecSimpleRelationInsert(result_rel, estate, slot);
        AfterTriggerEndQuery(estate);
    }
    ExecCloseIndices(result_rel);
}

}  // namespace

namespace jobq::sql {

InsertedJob InsertPlain(const EnqueueArgs &args, Datum queue_text, Datum payload) {
    // The executor's own checks for a data-modifying statement.
    PreventCommandIfReadOnly("INSERT");
    PreventCommandIfParallelMode("INSERT");
    // The table lock before the snapshot, as a statement takes them:
    // drop_queue holds off enqueues with a lock on jobq.job, and a waiter
    // must then see the queue gone, not insert into it.
    Relation job = table_open(JobqRelid("job"), RowExclusiveLock);
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());

    int32 queue_max_attempts = 0;
    if (!LookUpQueueDefaults(queue_text, args.queue, &queue_max_attempts))
        RaiseUnknownQueue(args.queue);

    TimestampTz now = GetCurrentTransactionStartTimestamp();
    TimestampTz run_at = args.run_at_null == 'n' ? now : DatumGetTimestampTz(args.run_at);
    const char *state = run_at > now ? "scheduled" : "available";
    int64 id = nextval_internal(JobqRelid("job_id_seq"), false);

    int natts = RelationGetDescr(job)->natts;
    Datum *by_column = static_cast<Datum *>(palloc0(sizeof(Datum) * natts));
    bool *set_column = static_cast<bool *>(palloc0(sizeof(bool) * natts));
    auto set = [&](const char *column, Datum value) {
        AttrNumber attnum = ColumnOf(job, column);
        by_column[attnum - 1] = value;
        set_column[attnum - 1] = true;
    };
    set("id", Int64GetDatum(id));
    set("queue", queue_text);
    set("state", CStringGetTextDatum(state));
    set("payload", payload);
    set("priority", Int16GetDatum(args.priority));
    set("run_at", TimestampTzGetDatum(run_at));
    set("attempt", Int32GetDatum(0));
    set("max_attempts",
        args.max_attempts_null == 'n' ? Int32GetDatum(queue_max_attempts) : args.max_attempts);
    set("created_at", TimestampTzGetDatum(now));

    EState *estate = CreateExecutorState();
    RangeTblEntry *rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(job);
    rte->relkind = job->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    ExecInitRangeTable(estate, list_make1(rte));
    estate->es_output_cid = GetCurrentCommandId(true);
    TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(job), &TTSOpsVirtual);
    FillJobRow(slot, by_column, set_column);
    int32 max_attempts = DatumGetInt32(by_column[ColumnOf(job, "max_attempts") - 1]);
    InsertRow(job, estate, slot, jobq::LiveJobRow{state, 0, max_attempts, false, false});
    ExecResetTupleTable(estate->es_tupleTable, false);
    FreeExecutorState(estate);
    table_close(job, NoLock);

    PopActiveSnapshot();
    return InsertedJob{id, run_at, true};
}

}  // namespace jobq::sql
