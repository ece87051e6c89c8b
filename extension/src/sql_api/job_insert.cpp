// The keyless enqueue, straight into jobq.job without SPI.
//
// Why: through SPI a one-row enqueue paid for a second executor start-up
// (the INSERT ... SELECT join with jobq.queue), plan-cache revalidation and
// SPI's own bookkeeping, together more CPU than the row and its index
// entries (profile in docs/benchmarks.md). Here the queue's defaults come
// from a per-backend cache (queue_cache.cpp) and the job goes in through
// the executor's index insertion, checked with the C predicate of the
// table's CHECK constraint.
//
// Only for the table exactly as jobq creates it: if jobq.job carries
// anything else (a trigger, a rule, another constraint or NOT NULL column,
// a generated column), InsertPlain declines and the caller runs a planned
// INSERT, which applies all of it. Row-level security never applied to
// enqueue's insert: the function runs as the extension's owner, a superuser
// (jobq.control), who bypasses it.
//
// Statement semantics follow SPI's non-read-only execution: the command
// counter is advanced and a fresh snapshot taken after the table lock, so
// a queue created earlier in the same statement is seen and one dropped
// while we waited for the lock is not (the drop's cache invalidation
// arrives before its lock is released). Locks are kept until the end of
// the transaction, as a statement keeps them.
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
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

using jobq::pg::ColumnOf;
using jobq::pg::JobqRelid;

// True when jobq.job is as jobq creates it: no trigger, rule, partition
// bound or generated column, and job_row_valid its only CHECK.
bool TableIsJobqs(Relation job) {
    TupleConstr *constr = RelationGetDescr(job)->constr;
    return job->trigdesc == nullptr && job->rd_rules == nullptr && !job->rd_rel->relispartition &&
           constr != nullptr && !constr->has_generated_stored && constr->num_check == 1 &&
           strcmp(constr->check[0].ccname, "job_row_valid") == 0;
}

// True when every NOT NULL column is among those jobq sets.
bool NotNullColumnsSet(Relation job, const bool *set_column) {
    TupleDesc desc = RelationGetDescr(job);
    for (int i = 0; i < desc->natts; ++i)
        if (TupleDescAttr(desc, i)->attnotnull && !set_column[i]) return false;
    return true;
}

void InsertRow(Relation job, Datum *by_column, const bool *set_column) {
    EState *estate = CreateExecutorState();
    RangeTblEntry *rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(job);
    rte->relkind = job->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    ExecInitRangeTable(estate, list_make1(rte));
    estate->es_output_cid = GetCurrentCommandId(true);

    TupleDesc desc = RelationGetDescr(job);
    TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);
    ExecClearTuple(slot);
    for (int i = 0; i < desc->natts; ++i) {
        slot->tts_values[i] = by_column[i];
        slot->tts_isnull[i] = !set_column[i];
    }
    ExecStoreVirtualTuple(slot);

    ResultRelInfo *result_rel = makeNode(ResultRelInfo);
    InitResultRelInfo(result_rel, job, 1, nullptr, 0);
    ExecOpenIndices(result_rel, false);
    simple_table_tuple_insert(job, slot);
    list_free(ExecInsertIndexTuples(result_rel, slot, estate, false, false, nullptr, NIL));
    ExecCloseIndices(result_rel);
    ExecResetTupleTable(estate->es_tupleTable, false);
    FreeExecutorState(estate);
}

}  // namespace

namespace jobq::sql {

bool InsertPlain(const EnqueueArgs &args, Datum queue_text, Datum payload, InsertedJob *out) {
    // The executor's own checks for a data-modifying statement.
    PreventCommandIfReadOnly("INSERT");
    PreventCommandIfParallelMode("INSERT");
    // The table lock before the snapshot, as a statement takes them:
    // drop_queue holds off enqueues with a lock on jobq.job, and a waiter
    // must then see the queue gone, not insert into it.
    Relation job = table_open(JobqRelid("job"), RowExclusiveLock);
    if (!TableIsJobqs(job)) {
        table_close(job, NoLock);
        return false;
    }
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());

    int32 queue_max_attempts = 0;
    if (!LookUpQueueDefaults(queue_text, args.queue, &queue_max_attempts))
        RaiseUnknownQueue(args.queue);

    TimestampTz now = GetCurrentTransactionStartTimestamp();
    TimestampTz run_at = args.run_at_null == 'n' ? now : DatumGetTimestampTz(args.run_at);
    const char *state = run_at > now ? "scheduled" : "available";
    int32 max_attempts = args.max_attempts_null == 'n' ? queue_max_attempts
                                                        : DatumGetInt32(args.max_attempts);

    // The new row: the columns jobq sets; any other is NULL.
    int natts = RelationGetDescr(job)->natts;
    Datum *by_column = static_cast<Datum *>(palloc0(sizeof(Datum) * natts));
    bool *set_column = static_cast<bool *>(palloc0(sizeof(bool) * natts));
    auto set = [&](const char *column, Datum value) {
        AttrNumber attnum = ColumnOf(job, column);
        by_column[attnum - 1] = value;
        set_column[attnum - 1] = true;
    };
    set("id", 0);  // from the sequence below, once the row is known to fit
    set("queue", queue_text);
    set("state", CStringGetTextDatum(state));
    set("payload", payload);
    set("priority", Int16GetDatum(args.priority));
    set("run_at", TimestampTzGetDatum(run_at));
    set("attempt", Int32GetDatum(0));
    set("max_attempts", Int32GetDatum(max_attempts));
    set("created_at", TimestampTzGetDatum(now));
    // The table's rules, checked here: the executor would parse the CHECK
    // constraint's expression again for every statement. A row that breaks
    // one goes to the planned INSERT, for the executor's own error.
    if (!NotNullColumnsSet(job, set_column) ||
        !jobq::IsValidLiveJobRow(jobq::LiveJobRow{state, 0, max_attempts, false, false})) {
        PopActiveSnapshot();
        table_close(job, NoLock);
        return false;
    }
    int64 id = nextval_internal(JobqRelid("job_id_seq"), false);
    set("id", Int64GetDatum(id));
    InsertRow(job, by_column, set_column);
    table_close(job, NoLock);

    PopActiveSnapshot();
    *out = InsertedJob{id, run_at, true};
    return true;
}

}  // namespace jobq::sql
