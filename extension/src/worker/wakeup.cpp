// Wake-ups off the commit path.
//
// jobq_note_wakeup() runs inside the producer's transaction and only writes
// backend-local arrays (trivial globals, no allocation). At COMMIT the
// XactCallback copies the queue names into the database's shared slot under
// one short LWLock and sets the worker's latch; at ABORT (or a rolled-back
// savepoint) they are forgotten. Nothing here can raise an error: the commit
// callback runs after the commit record is written, where an ERROR would be
// turned into a PANIC-worthy inconsistency.
#include "worker/wakeup.h"

#include <cstring>

#include "worker/gucs.h"
#include "worker/shmem.h"

extern "C" {
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace {

using jobq::worker::DbSlot;
using jobq::worker::kQueueNameSize;
using jobq::worker::shared;

constexpr int kLocalMax = 16;

struct LocalWake {
    char queue[kQueueNameSize];
    TimestampTz due;
    int level;  // transaction nest level that noted it
};

LocalWake local_wakes[kLocalMax];
int n_local = 0;
int overflow_level = 0;  // > 0: more than kLocalMax queues noted at this level
bool poke_launcher = false;
bool callbacks_registered = false;

void ResetLocal() {
    n_local = 0;
    overflow_level = 0;
    poke_launcher = false;
}

int cached_slot = -1;  // index of this database's slot, a hint

// Lock-free fast path: true if every queue this transaction noted is
// already pending, due now, in this database's slot. Then the worker has
// not consumed those entries yet, so it will NOTIFY after our commit, and
// whoever published them has set its latch: there is nothing to do. The
// slot's wake_generation changes whenever entries are consumed or the slot
// changes hands; reading it before and after the scan (seqlock style)
// rejects a torn view, and any doubt falls back to the locked path.
bool AlreadyPending(TimestampTz now) {
    if (overflow_level > 0 || cached_slot < 0 || cached_slot >= shared->nslots) return false;
    volatile DbSlot *slot = &shared->slots[cached_slot];
    uint64 generation = slot->wake_generation;
    pg_read_barrier();
    if (slot->dboid != MyDatabaseId || slot->state != jobq::worker::kSlotRunning) return false;
    int n = slot->nwakeups;
    if (n < 0 || n > jobq::worker::kMaxWakeups) return false;
    pg_read_barrier();
    for (int i = 0; i < n_local; ++i) {
        const LocalWake &w = local_wakes[i];
        if (w.due > now) return false;  // future dues are merged under the lock
        bool found = false;
        for (int j = 0; j < n && !found; ++j)
            found = slot->wakeups[j].due <= now &&
                    strncmp(const_cast<const char *>(slot->wakeups[j].queue), w.queue,
                            kQueueNameSize) == 0;
        if (!found) return false;
    }
    pg_read_barrier();
    return slot->wake_generation == generation && slot->dboid == MyDatabaseId;
}

void Publish() {
    TimestampTz now = GetCurrentTimestamp();
    if (AlreadyPending(now)) return;
    Latch *latch = nullptr;
    bool set_latch = false;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    DbSlot *slot = jobq::worker::FindSlot(MyDatabaseId);
    cached_slot = slot != nullptr ? static_cast<int>(slot - shared->slots) : -1;
    if (slot != nullptr && slot->state == jobq::worker::kSlotRunning && slot->latch != nullptr) {
        latch = slot->latch;
        if (overflow_level > 0) {
            slot->wake_all = true;
            set_latch = true;
        }
        for (int i = 0; i < n_local; ++i) {
            const LocalWake &w = local_wakes[i];
            int j = 0;
            for (; j < slot->nwakeups; ++j)
                if (strcmp(slot->wakeups[j].queue, w.queue) == 0) break;
            if (j < slot->nwakeups) {
                if (w.due < slot->wakeups[j].due) slot->wakeups[j].due = w.due;
            } else if (slot->nwakeups < jobq::worker::kMaxWakeups) {
                memcpy(slot->wakeups[j].queue, w.queue, kQueueNameSize);
                slot->wakeups[j].due = w.due;
                pg_write_barrier();  // the entry before the count (AlreadyPending)
                slot->nwakeups++;
            } else {
                slot->wake_all = true;
            }
            // While the worker spaces its ticks (quiet_until), it wakes
            // then and takes this entry without a signal.
            bool spacing = now < slot->quiet_until;
            if (!spacing && (w.due <= now || w.due < slot->next_deadline)) set_latch = true;
        }
    }
    LWLockRelease(shared->lock);
    if (set_latch) SetLatch(latch);
}

void PokeLauncher() {
    Latch *latch = nullptr;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->rescan_requested = true;
    shared->rescan_dboid = MyDatabaseId;
    latch = shared->launcher_latch;
    LWLockRelease(shared->lock);
    if (latch != nullptr) SetLatch(latch);
}

void OnXactEvent(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_COMMIT:
            if (n_local > 0 || overflow_level > 0) Publish();
            if (poke_launcher) PokeLauncher();
            ResetLocal();
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PREPARE:  // not visible yet; runners' polling covers 2PC
            ResetLocal();
            break;
        default:
            break;
    }
}

void OnSubXactEvent(SubXactEvent event, SubTransactionId, SubTransactionId, void *) {
    int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        int kept = 0;
        for (int i = 0; i < n_local; ++i)
            if (local_wakes[i].level < level) local_wakes[kept++] = local_wakes[i];
        n_local = kept;
        if (overflow_level >= level) overflow_level = 0;
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (int i = 0; i < n_local; ++i)
            if (local_wakes[i].level >= level) local_wakes[i].level = level - 1;
        if (overflow_level >= level) overflow_level = level - 1;
    }
}

bool EnsureCallbacks() {
    if (shared == nullptr) return false;
    if (!callbacks_registered) {
        RegisterXactCallback(OnXactEvent, nullptr);
        RegisterSubXactCallback(OnSubXactEvent, nullptr);
        callbacks_registered = true;
    }
    return true;
}

}  // namespace

extern "C" void jobq_note_wakeup(const char *queue_name, TimestampTz run_at) {
    if (queue_name == nullptr || !jobq::worker::wakeups_enabled || !EnsureCallbacks()) return;
    size_t len = strnlen(queue_name, kQueueNameSize);
    if (len >= static_cast<size_t>(kQueueNameSize)) return;  // not a valid queue name
    for (int i = 0; i < n_local; ++i) {
        if (strcmp(local_wakes[i].queue, queue_name) == 0) {
            if (run_at < local_wakes[i].due) local_wakes[i].due = run_at;
            return;
        }
    }
    if (n_local == kLocalMax) {
        if (overflow_level == 0) overflow_level = GetCurrentTransactionNestLevel();
        return;
    }
    LocalWake &w = local_wakes[n_local++];
    memcpy(w.queue, queue_name, len + 1);
    w.due = run_at;
    w.level = GetCurrentTransactionNestLevel();
}

extern "C" {

PG_FUNCTION_INFO_V1(jobq_note_wakeup_sql);
PG_FUNCTION_INFO_V1(jobq_worker_poke);

// jobq._note_wakeup(queue text, run_at timestamptz DEFAULT now()) RETURNS void
Datum jobq_note_wakeup_sql(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_VOID();
    char *queue = text_to_cstring(PG_GETARG_TEXT_PP(0));
    TimestampTz run_at =
        PG_ARGISNULL(1) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(1);
    jobq_note_wakeup(queue, run_at);
    PG_RETURN_VOID();
}

// jobq._worker_poke() RETURNS void: at commit, asks the launcher to look for
// the extension in this database now (called by the extension script).
Datum jobq_worker_poke(PG_FUNCTION_ARGS) {
    if (EnsureCallbacks()) poke_launcher = true;
    PG_RETURN_VOID();
}

}  // extern "C"
