// The claim of one queue without SPI: the claim index walked in claim
// order, each due job updated in place with the table AM.
//
// Why: the SQL claim locks every candidate (FOR UPDATE SKIP LOCKED) and
// then updates it, two writes and two WAL records per job, inside an
// executor statement with a join and a RETURNING projection. Here each
// candidate is updated at once with table_tuple_update(wait = false),
// which has the same outcome as SKIP LOCKED: a job that another
// transaction is changing (TM_BeingModified) or has changed since our
// snapshot (TM_Updated, TM_Deleted) is skipped, and the job taken is
// written once. Two claimers can never both update one row version.
// Measured on a 1,000-job claim: 8.0 ms and 714 kB of WAL with the lock
// step against 6.4 ms and 656 kB without (docs/benchmarks.md, W3).
//
// Only for jobq.job exactly as jobq creates it (JobTableIsJobqs); else the
// caller runs the SQL claim, which applies a user's triggers and rules.
// Statement semantics as in job_insert.cpp: the table lock first, then the
// command counter and a fresh snapshot.
//
// C-style on purpose: everything here can ereport (see pg/guard.h).
#include "core/validate.h"
#include "pg/compat.h"
#include "pg/relation.h"
#include "pg/spi.h"
#include "pg/table_write.h"
#include "store/claim_direct.h"
#include "store/job_table.h"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

using jobq::pg::ColumnOf;
using jobq::pg::JobqRelid;

// 0-based column positions of jobq.job that the claim reads or sets.
struct JobColumns {
    int id, queue, state, payload, priority, run_at, attempt, max_attempts, lease_token,
        lease_expires_at, worker, created_at, attempted_at, progress, saved_state;
};

JobColumns ColumnsOf(Relation job) {
    auto at = [&](const char *name) { return ColumnOf(job, name) - 1; };
    return JobColumns{at("id"), at("queue"), at("state"), at("payload"), at("priority"),
                      at("run_at"), at("attempt"), at("max_attempts"), at("lease_token"),
                      at("lease_expires_at"), at("worker"), at("created_at"), at("attempted_at"),
                      at("progress"),
                      // -1 under the SQL of jobq 0.1.0, which has no saved_state
                      // (its claim returns ten columns; docs/contributing.md).
                      get_attnum(RelationGetRelid(job), "saved_state") - 1};
}

bool IsRunning(Datum state) {
    text *t = DatumGetTextPP(state);
    return VARSIZE_ANY_EXHDR(t) == 7 && memcmp(VARDATA_ANY(t), "running", 7) == 0;
}

}  // namespace

namespace jobq::store {

int ClaimDirect(FunctionCallInfo fcinfo, Datum queue_text, Datum worker, Datum lease, int limit) {
    PreventCommandIfReadOnly("UPDATE");
    PreventCommandIfParallelMode("UPDATE");
    Relation job = table_open(JobqRelid("job"), RowExclusiveLock);
    if (!JobTableIsJobqs(job)) {
        table_close(job, NoLock);
        return -1;
    }
    Relation claim_index = index_open(JobqRelid("job_claim_idx"), AccessShareLock);
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());
    Snapshot snapshot = GetActiveSnapshot();

    JobColumns c = ColumnsOf(job);
    const int updated[] = {c.state,  c.attempt,     c.lease_token, c.lease_expires_at,
                           c.worker, c.attempted_at};
    jobq::pg::TableWrite write = jobq::pg::BeginTableWrite(job, updated, 6);
    EState *estate = write.estate;
    CommandId cid = estate->es_output_cid;
    TupleDesc desc = RelationGetDescr(job);
    TupleTableSlot *old_slot = table_slot_create(job, nullptr);
    TupleTableSlot *new_slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);

    TimestampTz now = GetCurrentTransactionStartTimestamp();
    Datum lease_expires_at =
        DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now), lease);
    Datum running = CStringGetTextDatum("running");
    // Drawn at the first job: all jobs of the call share it.
    Datum token = 0;
    bool have_token = false;

    // The claim index is (queue, priority, run_at, id) WHERE state <>
    // 'running': with the queue fixed it yields waiting jobs in claim order.
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
                           claim_index->rd_indcollation[0], F_TEXTEQ, queue_text);
    IndexScanDesc scan = jobq::pg::IndexBeginScan(job, claim_index, snapshot, 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);

    int claimed = 0;
    while (claimed < limit && index_getnext_slot(scan, ForwardScanDirection, old_slot)) {
        slot_getallattrs(old_slot);
        if (DatumGetTimestampTz(old_slot->tts_values[c.run_at]) > now) continue;  // not due
        if (IsRunning(old_slot->tts_values[c.state])) continue;

        int32 attempt = DatumGetInt32(old_slot->tts_values[c.attempt]) + 1;
        int32 max_attempts = DatumGetInt32(old_slot->tts_values[c.max_attempts]);
        if (!jobq::IsValidLiveJobRow(
                jobq::LiveJobRow{"running", attempt, max_attempts, true, true}))
            ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION),
                            errmsg("new row for relation \"%s\" violates check constraint "
                                   "\"job_row_valid\"",
                                   RelationGetRelationName(job))));
        if (!have_token) {
            token = Int64GetDatum(nextval_internal(JobqRelid("lease_token_seq"), false));
            have_token = true;
        }

        ExecClearTuple(new_slot);
        memcpy(new_slot->tts_values, old_slot->tts_values, sizeof(Datum) * desc->natts);
        memcpy(new_slot->tts_isnull, old_slot->tts_isnull, sizeof(bool) * desc->natts);
        auto set = [&](int column, Datum value) {
            new_slot->tts_values[column] = value;
            new_slot->tts_isnull[column] = false;
        };
        set(c.state, running);
        set(c.attempt, Int32GetDatum(attempt));
        set(c.lease_token, token);
        set(c.lease_expires_at, lease_expires_at);
        set(c.worker, worker);
        set(c.attempted_at, TimestampTzGetDatum(now));
        ExecStoreVirtualTuple(new_slot);

        TM_FailureData failure;
        LockTupleMode lock_mode;
        TU_UpdateIndexes update_indexes;
        TM_Result result = jobq::pg::TableTupleUpdate(job, &old_slot->tts_tid, new_slot, cid,
                                                      snapshot, InvalidSnapshot, false, &failure,
                                                      &lock_mode, &update_indexes);
        if (result == TM_BeingModified || result == TM_Updated || result == TM_Deleted ||
            result == TM_SelfModified)
            continue;  // taken or being changed by someone else: skip, as SKIP LOCKED does
        if (result != TM_Ok) elog(ERROR, "jobq: unexpected result %d claiming a job", result);
        if (update_indexes != TU_None)
            list_free(jobq::pg::InsertIndexTuples(write.result_rel, new_slot, estate, true, false,
                                                  nullptr, NIL, update_indexes == TU_Summarizing));
        ResetPerTupleExprContext(estate);

        // The claim's columns: id, queue, payload, attempt, max_attempts,
        // lease_token, lease_expires_at, priority, run_at, created_at,
        // progress, saved_state (both NULL unless a resumed job left them).
        // The old version's data stays pinned in old_slot until the next fetch.
        Datum out[12] = {new_slot->tts_values[c.id],
                         new_slot->tts_values[c.queue],
                         new_slot->tts_values[c.payload],
                         Int32GetDatum(attempt),
                         Int32GetDatum(max_attempts),
                         token,
                         lease_expires_at,
                         Int32GetDatum(DatumGetInt16(new_slot->tts_values[c.priority])),
                         new_slot->tts_values[c.run_at],
                         new_slot->tts_values[c.created_at],
                         new_slot->tts_values[c.progress],
                         c.saved_state >= 0 ? new_slot->tts_values[c.saved_state] : 0};
        bool out_nulls[12] = {false};
        out_nulls[10] = new_slot->tts_isnull[c.progress];
        out_nulls[11] = c.saved_state < 0 || new_slot->tts_isnull[c.saved_state];
        jobq::pg::PutResultRow(fcinfo, out, out_nulls);
        ++claimed;
    }

    index_endscan(scan);
    ExecDropSingleTupleTableSlot(old_slot);
    jobq::pg::EndTableWrite(write);
    index_close(claim_index, NoLock);
    table_close(job, NoLock);
    PopActiveSnapshot();
    return claimed;
}

}  // namespace jobq::store
