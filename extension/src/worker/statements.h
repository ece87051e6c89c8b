// Every SQL statement the worker processes run, named in one place: the
// database worker (db_worker.cpp), the handler workers (handler_worker.cpp)
// and the vacuum process (vacuum.cpp).
//
// Each is a pg::PlanSlot (pg/spi.h), run with pg::ExecPlan inside
// BeginWork/EndWork (tx.h): prepared on first use in a process and kept,
// so the worker's ticks pay no parse and plan cost; Postgres' plan cache
// revalidates the plans after DDL, including DROP/CREATE EXTENSION. The
// worker runs with search_path = pg_catalog, pg_temp: every name here is
// schema-qualified or in pg_catalog.
#pragma once

#include "pg/spi.h"

namespace jobq::worker::stmt {

// --- database worker ---------------------------------------------------------

// ($1 text[] queues published by producers, $2 timestamptz cursor or NULL,
// $3 bool every due queue): NOTIFY jobq_wakeup once per unpaused queue
// among those, those with jobs due since the cursor, and (with $3) every
// queue with due jobs. Rows: (queue, has an in-database handler, notify).
extern pg::PlanSlot wake_queues;
// The earliest future run_at of a waiting job, or NULL.
extern pg::PlanSlot next_due;
// ($1 rescuer text, $2 batch int): returns expired leases, their count.
extern pg::PlanSlot rescue;
// How many unpaused queues have an in-database handler.
extern pg::PlanSlot count_handler_queues;
// ($1 batch int): deletes finished jobs past retention, their count.
extern pg::PlanSlot prune;
// Enqueues due ticks of periodic jobs: (enqueued, next_tick).
extern pg::PlanSlot run_schedules;

// --- handler workers ---------------------------------------------------------

// ($1 rescuer text, $2 batch int, $3 worker name text): returns the jobs
// an earlier incarnation of this handler worker held, their count.
extern pg::PlanSlot rescue_own;
// The unpaused queues with an in-database handler, as one text[] (or NULL).
extern pg::PlanSlot handler_queues;
// ($1 text[] queues, $2 worker name, $3 batch int): claims up to $3 jobs of
// each queue. Rows: (id, lease_token, payload text, owner oid or NULL,
// owner name, handler_timeout ms or 0, the handler's call statement,
// whether the handler returns jsonb).
extern pg::PlanSlot claim_handler_jobs;
extern pg::PlanSlot resolve_handler;
// ($1 id, $2 lease_token): locks the job while it is still so leased.
extern pg::PlanSlot lock_job;
// Fires deferred constraints while still the queue owner.
extern pg::PlanSlot set_constraints_immediate;
// ($1 id, $2 lease_token, $3 jsonb result or NULL): one row if completed.
extern pg::PlanSlot complete_job;
// ($1 id, $2 lease_token, $3 error text).
extern pg::PlanSlot fail_job;

// --- vacuum --------------------------------------------------------------------

// jobq.job's dead tuples as the statistics system counts them, or NULL.
extern pg::PlanSlot dead_tuples;
// Run through ExecVacuum, not SPI (VACUUM cannot run inside a transaction
// block, which SPI always is).
extern const char *const kVacuumJobTable;

// restore_guard.cpp, sql_version.cpp
extern pg::PlanSlot restore_table_present;
extern pg::PlanSlot restore_session;
extern pg::PlanSlot forget_restore_session;
extern pg::PlanSlot installed_version;

}  // namespace jobq::worker::stmt
