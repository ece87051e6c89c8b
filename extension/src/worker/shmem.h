// Shared state of the background workers (one struct in shared memory).
//
// Vocabulary:
//   launcher   the one "jobq launcher" process; it finds the databases that
//              have the extension and keeps one database worker running in
//              each of them.
//   slot       the shared record of one database: its worker's pid and latch,
//              the wake-ups producers published for it, and its counters.
//   wake-up    "queue Q has a job due at T": published by committing
//              producers, consumed by the database worker, which NOTIFYs
//              runners once per queue per tick.
//
// All fields are protected by the one LWLock `lock`, held for a few hundred
// instructions at most (copying at most kMaxWakeups short names). Code here
// is C-style: no C++ objects with destructors.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
}

namespace jobq::worker {

// Queue names are at most 48 bytes (core/validate.h); 64 leaves room.
constexpr int kQueueNameSize = 64;
constexpr int kMaxWakeups = 64;         // distinct queues pending per database
constexpr int kMaxHandlerWorkers = 16;  // per database

enum SlotState : int {
    kSlotFree = 0,
    kSlotStarting,     // launcher registered a worker, not yet attached
    kSlotRunning,      // worker attached (pid, latch set)
    kSlotNoExtension,  // worker found no jobq extension and left
    kSlotExited,       // worker left for another reason; launcher restarts it
};

struct Wakeup {
    char queue[kQueueNameSize];
    TimestampTz due;  // earliest run_at published for the queue
};

struct HandlerSlot {
    pid_t pid;
    Latch *latch;
};

struct DbSlot {
    Oid dboid;
    int state;  // SlotState
    pid_t pid;  // database worker
    Latch *latch;
    TimestampTz started_at;
    TimestampTz state_changed_at;  // exit / no-extension time (probe back-off)
    TimestampTz blocked_until;     // DROP DATABASE in progress: do not restart
    bool stop_requested;
    // Wake-ups published by committed transactions, drained by the worker.
    // Bumped (under the lock) whenever published entries are consumed or
    // the slot changes hands, so a producer can check "my queue is already
    // pending" without the lock (seqlock style, see wakeup.cpp).
    uint64 wake_generation;
    int nwakeups;
    bool wake_all;              // a producer overflowed its list: wake every queue
    TimestampTz next_deadline;  // worker's next planned wake; later dues skip the latch
    // The worker sleeps until then, spacing its NOTIFY ticks, and takes every
    // wake-up published meanwhile: producers skip its latch (0: no spacing).
    TimestampTz quiet_until;
    Wakeup wakeups[kMaxWakeups];
    // In-database handler workers of this database.
    HandlerSlot handlers[kMaxHandlerWorkers];
    uint64 handler_generation;  // bumped by the database worker on each start
    // Dead tuples in jobq.job right after the last "jobq vacuum" (vacuum.cpp);
    // -1 while one runs or when it failed.
    int64 vacuum_left_dead;
    pid_t vacuum_pid;  // the running "jobq vacuum", stopped too by DROP DATABASE
    // Counters and settings the worker publishes for jobq.worker_status().
    TimestampTz last_tick;
    int64 rescue_interval_ms;
    uint64 wakeups_sent;
    uint64 jobs_rescued;
    uint64 jobs_pruned;
    uint64 periodic_enqueued;
    uint64 handler_completed;
    uint64 handler_failed;
    uint64 maintenance_errors;
};

struct SharedState {
    LWLock *lock;
    pid_t launcher_pid;
    Latch *launcher_latch;
    bool rescan_requested;  // CREATE EXTENSION committed somewhere: probe now
    Oid rescan_dboid;
    int nslots;
    DbSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

// NULL unless jobq is in shared_preload_libraries (then set in every backend).
extern SharedState *shared;

// The slot of database `dboid`, or NULL. Caller holds shared->lock.
DbSlot *FindSlot(Oid dboid);

void RequestSharedMemory();  // from shmem_request_hook
void InitSharedMemory();     // from shmem_startup_hook

}  // namespace jobq::worker
