// The keyless enqueue and enqueue_many, straight into jobq.job without SPI.
//
// Why: through SPI a one-row enqueue paid for a second executor start-up
// (the INSERT ... SELECT join with jobq.queue), plan-cache revalidation and
// SPI's own bookkeeping, together more CPU than the row and its index
// entries (profile in docs/benchmarks.md). Here the queue's defaults come
// from a per-backend cache (queue_cache.cpp) and the jobs go in through
// the table AM (heap_multi_insert for batches: one WAL record per page,
// not per row) and the executor's index insertion, checked with the C
// predicate of the table's CHECK constraint.
//
// Only for the table exactly as jobq creates it: if jobq.job carries
// anything else (a trigger, a rule, another constraint or NOT NULL column,
// a generated column), InsertJobs declines and the caller runs a planned
// INSERT, which applies all of it.
//
// Privileges: this path runs as the caller (enqueue is not SECURITY
// DEFINER, see pg/owner_rights.h) and checks none, as table AM calls do
// not; EXECUTE on enqueue is the gate. It resolves no name by search_path.
// A table with row-level security enabled takes the planned INSERT, run
// with the owner's rights like everything else that runs SQL.
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
#include "pg/table_write.h"
#include "store/job_insert.h"
#include "store/job_table.h"
#include "store/queue_cache.h"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

using jobq::pg::ColumnOf;
using jobq::pg::JobqRelid;
using jobq::store::JobTableIsJobqs;

// True when every NOT NULL column, and every column with a default, is
// among those jobq sets (a default someone added elsewhere is the planned
// INSERT's to apply).
bool RowCoversTable(Relation job, const bool *set_column) {
    TupleDesc desc = RelationGetDescr(job);
    for (int i = 0; i < desc->natts; ++i)
        if (TupleDescAttr(desc, i)->attnotnull && !set_column[i]) return false;
    for (int i = 0; i < desc->constr->num_defval; ++i)
        if (!set_column[desc->constr->defval[i].adnum - 1]) return false;
    return true;
}

// Inserts n rows made of the template (by_column, set_column) with each
// its id from `sequence` (into ids[]) and its payload, then their index
// entries.
void InsertRows(Relation job, const Datum *by_column, const bool *set_column, int id_index,
                int payload_index, Oid sequence, const Datum *payloads, int n, int64 *ids) {
    using jobq::pg::kInsertBatchRows;
    TupleDesc desc = RelationGetDescr(job);
    jobq::pg::TableWrite write = jobq::pg::BeginTableWrite(job);
    TupleTableSlot **slots = jobq::pg::MakeInsertSlots(write, n);
    for (int start = 0; start < n; start += kInsertBatchRows) {
        int rows = n - start < kInsertBatchRows ? n - start : kInsertBatchRows;
        for (int i = 0; i < rows; ++i) {
            ids[start + i] = nextval_internal(sequence, false);
            TupleTableSlot *slot = slots[i];
            ExecClearTuple(slot);
            for (int c = 0; c < desc->natts; ++c) {
                slot->tts_values[c] = by_column[c];
                slot->tts_isnull[c] = !set_column[c];
            }
            slot->tts_values[id_index] = Int64GetDatum(ids[start + i]);
            slot->tts_values[payload_index] = payloads[start + i];
            ExecStoreVirtualTuple(slot);
        }
        jobq::pg::InsertSlots(write, slots, rows);
    }
    jobq::pg::EndTableWrite(write);
}

}  // namespace

namespace jobq::store {

InsertResult InsertJobs(const NewJobs &jobs, const Datum *payloads, int n, int64 *ids) {
    // The executor's own checks for a data-modifying statement.
    PreventCommandIfReadOnly("INSERT");
    PreventCommandIfParallelMode("INSERT");
    // The table lock before the snapshot, as a statement takes them:
    // drop_queue holds off enqueues with a lock on jobq.job, and a waiter
    // must then see the queue gone, not insert into it.
    Relation job = table_open(JobqRelid("job"), RowExclusiveLock);
    if (!JobTableIsJobqs(job)) {
        table_close(job, NoLock);
        return InsertResult::kDeclined;
    }
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());

    int32 queue_max_attempts = 0;
    if (!LookUpQueueDefaults(jobs.queue_text, jobs.queue, &queue_max_attempts)) {
        PopActiveSnapshot();
        table_close(job, NoLock);
        return InsertResult::kNoQueue;
    }

    TimestampTz now = GetCurrentTransactionStartTimestamp();
    TimestampTz run_at = jobs.run_at;
    const char *state = run_at > now ? "scheduled" : "available";
    int32 max_attempts = jobs.has_max_attempts ? jobs.max_attempts : queue_max_attempts;

    // The columns jobq sets, the same in every row but id and payload; any
    // other column is NULL.
    TupleDesc desc = RelationGetDescr(job);
    Datum *by_column = static_cast<Datum *>(palloc0(sizeof(Datum) * desc->natts));
    bool *set_column = static_cast<bool *>(palloc0(sizeof(bool) * desc->natts));
    auto set = [&](const char *column, Datum value) {
        AttrNumber attnum = ColumnOf(job, column);
        by_column[attnum - 1] = value;
        set_column[attnum - 1] = true;
        return attnum - 1;
    };
    int id_index = set("id", 0);
    int payload_index = set("payload", 0);
    set("queue", jobs.queue_text);
    set("state", CStringGetTextDatum(state));
    set("priority", Int16GetDatum(jobs.priority));
    set("run_at", TimestampTzGetDatum(run_at));
    set("attempt", Int32GetDatum(0));
    set("max_attempts", Int32GetDatum(max_attempts));
    set("created_at", TimestampTzGetDatum(now));
    // The table's rules, checked here: the executor would parse the CHECK
    // constraint's expression again for every statement. Rows that break
    // one go to the planned INSERT, for the executor's own error.
    if (!RowCoversTable(job, set_column) ||
        !jobq::IsValidLiveJobRow(jobq::LiveJobRow{state, 0, max_attempts, false, false})) {
        PopActiveSnapshot();
        table_close(job, NoLock);
        return InsertResult::kDeclined;
    }

    Oid sequence = JobqRelid("job_id_seq");
    if (n > 0)
        InsertRows(job, by_column, set_column, id_index, payload_index, sequence, payloads, n, ids);
    table_close(job, NoLock);
    PopActiveSnapshot();
    return InsertResult::kInserted;
}

}  // namespace jobq::store
