// complete without SPI: each job found by its primary key, deleted from
// jobq.job if the token still matches, and copied into jobq.archive with
// heap_multi_insert (pg/table_write.h). The ids of a batch claimed together
// are nearly consecutive, so they are found by one walk of their key range
// rather than a descent of the index per id: a 1,000-job complete took
// 3.7 ms instead of 5.4 (docs/benchmarks.md, W3).
//
// Why: the SQL complete (DELETE ... USING unnest ... RETURNING j.* feeding
// INSERT INTO jobq.archive) was planned per call, materialised its CTE,
// projected every row twice and wrote one WAL record per archive row. Here
// the archive rows go in per page (one WAL record each) and nothing is
// planned or projected.
//
// Fencing as in the SQL: a job is completed only while its lease_token is
// the caller's. A job changed after our snapshot (say a heartbeat, or the
// rescue) is re-read at its latest version, locked, and checked again,
// as the executor's EvalPlanQual does for a READ COMMITTED DELETE; in
// REPEATABLE READ or SERIALIZABLE that is a serialization failure, as in
// the SQL.
//
// Only for jobq.job and jobq.archive exactly as jobq creates them; else
// the caller runs the SQL, which applies a user's triggers and rules.
//
// C-style on purpose: everything here can ereport (see pg/guard.h).
#include "pg/compat.h"
#include "pg/relation.h"
#include "pg/spi.h"
#include "pg/table_write.h"
#include "store/complete_direct.h"
#include "store/job_table.h"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace {

using jobq::pg::ColumnOf;
using jobq::pg::JobqRelid;

// Where an archive column's value comes from.
enum class Source { kJobColumn, kCompleted, kResult, kFinishedAt };

struct ArchiveColumn {
    Source source;
    int job_index;  // 0-based, for kJobColumn
};

// Maps the archive's columns to their sources; false when the archive is
// not as jobq creates it (a trigger, rule, row-level security, another
// CHECK, a column jobq.job does not have, or a NOT NULL column that jobq.job
// or the result may leave NULL).
bool MapArchive(Relation archive, Relation job, ArchiveColumn *map) {
    if (!jobq::store::TableHasOnlyJobqRules(archive, "archive_state_finished")) return false;
    TupleDesc archive_desc = RelationGetDescr(archive);
    TupleDesc job_desc = RelationGetDescr(job);
    for (int i = 0; i < archive_desc->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(archive_desc, i);
        const char *name = NameStr(att->attname);
        map[i] = ArchiveColumn{Source::kJobColumn, -1};
        if (att->attisdropped) continue;
        if (strcmp(name, "state") == 0) {
            map[i].source = Source::kCompleted;
        } else if (strcmp(name, "result") == 0) {
            if (att->attnotnull) return false;
            map[i].source = Source::kResult;
        } else if (strcmp(name, "finished_at") == 0) {
            map[i].source = Source::kFinishedAt;
        } else {
            for (int j = 0; j < job_desc->natts && map[i].job_index < 0; ++j) {
                Form_pg_attribute job_att = TupleDescAttr(job_desc, j);
                if (!job_att->attisdropped && strcmp(NameStr(job_att->attname), name) == 0 &&
                    job_att->atttypid == att->atttypid && (job_att->attnotnull || !att->attnotnull))
                    map[i].job_index = j;
            }
            if (map[i].job_index < 0) return false;
        }
    }
    return true;
}

// Deletes the job in `slot` (found by our snapshot) if it still holds
// `token`, following a concurrent update to the job's latest version.
// True when deleted; `slot` then holds the deleted version.
bool DeleteIfHeld(Relation job, TupleTableSlot *slot, int token_index, int64 token, CommandId cid,
                  Snapshot snapshot) {
    for (;;) {
        bool isnull;
        Datum held = slot_getattr(slot, token_index + 1, &isnull);
        if (isnull || DatumGetInt64(held) != token) return false;
        ItemPointerData tid = slot->tts_tid;
        TM_FailureData failure;
        TM_Result result =
            table_tuple_delete(job, &tid, cid, snapshot, InvalidSnapshot, true, &failure, false);
        if (result == TM_Ok) return true;
        if (result == TM_SelfModified || result == TM_Deleted) return false;
        if (result != TM_Updated)
            elog(ERROR, "jobq: unexpected result %d completing a job", result);
        if (IsolationUsesXactSnapshot())
            ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                            errmsg("could not serialize access due to concurrent update")));
        // Changed since our snapshot: lock the latest version and check it.
        TM_Result locked =
            table_tuple_lock(job, &tid, snapshot, slot, cid, LockTupleExclusive, LockWaitBlock,
                             TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
        if (locked != TM_Ok) return false;  // deleted meanwhile
    }
}

// A caller's entry: job id and position in the arrays.
struct IdEntry {
    int64 id;
    int position;
};

int CompareIdEntries(const void *a, const void *b) {
    const IdEntry *x = static_cast<const IdEntry *>(a);
    const IdEntry *y = static_cast<const IdEntry *>(b);
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->position - y->position;
}

// First entry with this id in the sorted entries, or n.
int FirstEntryOf(const IdEntry *by_id, int n, int64 id) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (by_id[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

// Whether one walk of the key range [first id, last id] costs less than a
// descent per id: the range holds at most about twice as many ids as the
// call names (each id in the range is visited once, jobs of others too).
bool IdsAreDense(const IdEntry *by_id, int n) {
    uint64 span = static_cast<uint64>(by_id[n - 1].id) - static_cast<uint64>(by_id[0].id);
    return span < 2 * static_cast<uint64>(n);
}

}  // namespace

namespace jobq::store {

int CompleteDirect(FunctionCallInfo fcinfo, const int64 *ids, const int64 *tokens, int n,
                   const Datum *results, const bool *result_nulls) {
    PreventCommandIfReadOnly("DELETE");
    PreventCommandIfParallelMode("DELETE");
    // The order of the SQL statement's locks: the DELETE's table first.
    Relation job = table_open(JobqRelid("job"), RowExclusiveLock);
    Relation archive = table_open(JobqRelid("archive"), RowExclusiveLock);
    TupleDesc archive_desc = RelationGetDescr(archive);
    ArchiveColumn *map =
        static_cast<ArchiveColumn *>(palloc(sizeof(ArchiveColumn) * (archive_desc->natts + 1)));
    if (!JobTableIsJobqs(job) || !MapArchive(archive, job, map)) {
        table_close(archive, NoLock);
        table_close(job, NoLock);
        return -1;
    }
    Relation pkey = index_open(jobq::pg::RelationGetPrimaryKeyIndexCompat(job), AccessShareLock);
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());
    Snapshot snapshot = GetActiveSnapshot();

    jobq::pg::TableWrite write = jobq::pg::BeginTableWrite(archive);
    CommandId cid = write.estate->es_output_cid;
    TupleTableSlot **slots = jobq::pg::MakeInsertSlots(write, n);
    int rows = 0;

    int id_index = ColumnOf(job, "id") - 1;
    int token_index = ColumnOf(job, "lease_token") - 1;
    Datum completed = CStringGetTextDatum("completed");
    Datum finished_at = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    TupleTableSlot *job_slot = table_slot_create(job, nullptr);
    bool *done = static_cast<bool *>(palloc0(sizeof(bool) * (n + 1)));

    // Completes the job in job_slot for the caller's i-th entry, if that
    // entry's token still holds it. True when it did.
    auto complete_one = [&](int i) -> bool {
        if (!DeleteIfHeld(job, job_slot, token_index, tokens[i], cid, snapshot)) return false;
        // The archive row, materialised: job_slot moves on with the scan.
        slot_getallattrs(job_slot);
        TupleTableSlot *row = slots[rows];
        ExecClearTuple(row);
        for (int c = 0; c < archive_desc->natts; ++c) {
            row->tts_isnull[c] = false;
            switch (map[c].source) {
                case Source::kCompleted:
                    row->tts_values[c] = completed;
                    break;
                case Source::kFinishedAt:
                    row->tts_values[c] = finished_at;
                    break;
                case Source::kResult:
                    row->tts_values[c] = results != nullptr ? results[i] : 0;
                    row->tts_isnull[c] = results == nullptr || result_nulls[i];
                    break;
                case Source::kJobColumn:
                    if (map[c].job_index < 0) {
                        row->tts_isnull[c] = true;  // a dropped column
                    } else {
                        row->tts_values[c] = job_slot->tts_values[map[c].job_index];
                        row->tts_isnull[c] = job_slot->tts_isnull[map[c].job_index];
                    }
                    break;
            }
        }
        ExecStoreVirtualTuple(row);
        ExecMaterializeSlot(row);
        done[i] = true;
        if (++rows == jobq::pg::kInsertBatchRows) {
            jobq::pg::InsertSlots(write, slots, rows);
            rows = 0;
        }
        return true;
    };

    // The entries by id (then by position: the first of a repeated id is
    // tried first).
    IdEntry *by_id = static_cast<IdEntry *>(palloc(sizeof(IdEntry) * (n + 1)));
    for (int i = 0; i < n; ++i) by_id[i] = IdEntry{ids[i], i};
    qsort(by_id, n, sizeof(IdEntry), CompareIdEntries);

    // With the job of by_id[first].id in job_slot: its entries in order
    // until one holds it.
    auto complete_entries = [&](int first) {
        for (int k = first; k < n && by_id[k].id == by_id[first].id; ++k) {
            if (complete_one(by_id[k].position)) return;
        }
    };

    if (n > 0 && IdsAreDense(by_id, n)) {
        // One walk of the key range instead of a descent per id: a batch
        // claimed together has nearly consecutive ids.
        ScanKeyData keys[2];
        ScanKeyInit(&keys[0], 1, BTGreaterEqualStrategyNumber, F_INT8GE,
                    Int64GetDatum(by_id[0].id));
        ScanKeyInit(&keys[1], 1, BTLessEqualStrategyNumber, F_INT8LE,
                    Int64GetDatum(by_id[n - 1].id));
        IndexScanDesc scan = jobq::pg::IndexBeginScan(job, pkey, snapshot, 2, 0);
        index_rescan(scan, keys, 2, nullptr, 0);
        while (index_getnext_slot(scan, ForwardScanDirection, job_slot)) {
            bool isnull;
            int64 id = DatumGetInt64(slot_getattr(job_slot, id_index + 1, &isnull));
            int first = FirstEntryOf(by_id, n, id);
            if (first < n && by_id[first].id == id) complete_entries(first);
        }
        index_endscan(scan);
    } else {
        IndexScanDesc scan = jobq::pg::IndexBeginScan(job, pkey, snapshot, 1, 0);
        for (int k = 0; k < n; ++k) {
            if (k > 0 && by_id[k].id == by_id[k - 1].id) continue;  // tried with the first
            ScanKeyData key;
            ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(by_id[k].id));
            index_rescan(scan, &key, 1, nullptr, 0);
            if (index_getnext_slot(scan, ForwardScanDirection, job_slot)) complete_entries(k);
        }
        index_endscan(scan);
    }
    jobq::pg::InsertSlots(write, slots, rows);

    ExecDropSingleTupleTableSlot(job_slot);
    jobq::pg::EndTableWrite(write);
    index_close(pkey, NoLock);
    table_close(archive, NoLock);
    table_close(job, NoLock);
    PopActiveSnapshot();

    // In the caller's order.
    int n_done = 0;
    for (int i = 0; i < n; ++i) {
        if (!done[i]) continue;
        Datum id = Int64GetDatum(ids[i]);
        bool isnull = false;
        jobq::pg::PutResultRow(fcinfo, &id, &isnull);
        ++n_done;
    }
    return n_done;
}

}  // namespace jobq::store
