// A queue's enqueue defaults (max_attempts), cached per backend, so a
// keyless enqueue does not read jobq.queue every time (the lookup was
// about 3% of a one-row enqueue's CPU; docs/benchmarks.md, W1).
//
// Invalidation: a statement trigger on jobq.queue (jobq._queue_changed,
// sql_api/queue_changed.cpp) queues a relcache invalidation of jobq.queue for any change to it.
// Postgres sends it when the change commits (after the change becomes
// visible, before its locks are released), and a lookup accepts pending
// invalidations before it trusts the cache. A miss reads the row with the
// latest snapshot, taken after accepting: any change that snapshot cannot
// see commits later, so its invalidation is still to come and will evict
// what was read. Hence a lookup always sees every change whose commit it
// could have seen, whatever the caller's isolation level (a REPEATABLE READ
// transaction gets the queue's current defaults, not those of its
// snapshot). In the changing transaction the command-counter increment
// before each enqueue applies the change at once, and an abort replays the
// invalidation, so nothing read from an uncommitted change outlives it.
// Relcache resets (DROP EXTENSION among them) empty the cache too. Missing
// queues are never cached: a new queue is found by the read.
//
// C-style on purpose: everything here can ereport (see pg/guard.h).
#include "store/queue_cache.h"

#include "pg/compat.h"
#include "pg/relation.h"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace {

constexpr Size kQueueKeySize = 64;  // names are at most 48 bytes (queue_name_valid)

struct CachedQueue {
    char name[kQueueKeySize];  // the hash key
    int32 max_attempts;
};

HTAB *cache = nullptr;
Oid cached_relid = InvalidOid;  // the jobq.queue the entries were read from
bool callback_registered = false;

void Forget() {
    if (cache != nullptr) hash_destroy(cache);
    cache = nullptr;
    cached_relid = InvalidOid;
}

void OnRelcacheInvalidation(Datum, Oid relid) {
    if (relid == InvalidOid || relid == cached_relid) Forget();
}

// Reads the queue's row with the latest snapshot, taken after the locks
// and after accepting invalidations; false when it is missing.
bool ReadQueue(Oid queue_relid, Datum queue_text, int32 *max_attempts) {
    Relation queue = table_open(queue_relid, AccessShareLock);
    Relation pkey = index_open(jobq::pg::RelationGetPrimaryKeyIndexCompat(queue), AccessShareLock);
    AcceptInvalidationMessages();
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, pkey->rd_indcollation[0],
                           F_TEXTEQ, queue_text);
    TupleTableSlot *slot = table_slot_create(queue, nullptr);
    IndexScanDesc scan = jobq::pg::IndexBeginScan(queue, pkey, snapshot, 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    if (found) {
        bool isnull;
        AttrNumber column = jobq::pg::ColumnOf(queue, "max_attempts");
        *max_attempts = DatumGetInt32(slot_getattr(slot, column, &isnull));
    }
    index_endscan(scan);
    UnregisterSnapshot(snapshot);
    ExecDropSingleTupleTableSlot(slot);
    index_close(pkey, NoLock);
    table_close(queue, NoLock);
    return found;
}

}  // namespace

namespace jobq::store {

bool LookUpQueueDefaults(Datum queue_text, const char *queue, int32 *max_attempts) {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(OnRelcacheInvalidation, PointerGetDatum(nullptr));
        callback_registered = true;
    }
    AcceptInvalidationMessages();
    Oid queue_relid = jobq::pg::JobqRelid("queue");
    if (queue_relid != cached_relid) Forget();
    bool cacheable = strlen(queue) < kQueueKeySize;
    if (cache != nullptr && cacheable) {
        auto *entry = static_cast<CachedQueue *>(hash_search(cache, queue, HASH_FIND, nullptr));
        if (entry != nullptr) {
            *max_attempts = entry->max_attempts;
            return true;
        }
    }
    // Reading may accept invalidations and empty the cache: add after it.
    if (!ReadQueue(queue_relid, queue_text, max_attempts)) return false;
    if (!cacheable) return true;
    if (cache == nullptr) {
        HASHCTL ctl;
        ctl.keysize = kQueueKeySize;
        ctl.entrysize = sizeof(CachedQueue);
        ctl.hcxt = CacheMemoryContext;
        cache =
            hash_create("jobq queue defaults", 16, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
        cached_relid = queue_relid;
    }
    auto *entry = static_cast<CachedQueue *>(hash_search(cache, queue, HASH_ENTER, nullptr));
    entry->max_attempts = *max_attempts;
    return true;
}

void InvalidateQueueCaches(Relation queue) { CacheInvalidateRelcache(queue); }

}  // namespace jobq::store
