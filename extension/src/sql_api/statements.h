// Every SQL statement the SQL-callable functions run, named in one place
// (statements.cpp holds their text). Each is a pg::PlanSlot (pg/spi.h), run
// with pg::ExecPlan inside SPI_connect: prepared on first use in a backend
// and kept; Postgres' plan cache revalidates it after DDL. Values are
// always parameters; names are schema-qualified (the functions run with
// search_path = pg_catalog, pg_temp).
#pragma once

#include "pg/spi.h"

namespace jobq::sql::stmt {

// --- enqueue (enqueue.cpp) ---------------------------------------------------
// One job, for a jobq.job with rules of its user's or a unique key.
// ($1 queue, $2 payload, $3 priority, $4 run_at, $5 max_attempts,
//  $6 unique_key) -> (id, run_at).
extern pg::PlanSlot insert_plain;     // no key: a plain INSERT ... SELECT
extern pg::PlanSlot insert_keep;      // an unfinished job with the key wins
extern pg::PlanSlot insert_replace;   // a waiting job with the key is replaced
extern pg::PlanSlot insert_debounce;  // a waiting job with the key is pushed back
// ($1 queue, $2 unique_key) -> (id, run_at) of the job holding the key.
extern pg::PlanSlot find_by_key;
// ($1 queue, $2 unique_key): takes the key off a running job.
extern pg::PlanSlot detach_key;
// ($1 queue): one row if the queue exists.
extern pg::PlanSlot queue_exists;
// ($1 queue, $2 unique_key, $3 window) -> id of a job with the key that
// completed within the window.
extern pg::PlanSlot completed_in_window;
// ($1 id): deletes the job just inserted.
extern pg::PlanSlot withdraw_job;

// --- enqueue_many (enqueue_many.cpp) -----------------------------------------
// ($1 queue, $2 payloads, $3 priority, $4 run_at, $5 max_attempts) -> id,
// in payload order.
extern pg::PlanSlot insert_many;
// The same with ($6 unique_keys), keep mode -> (id, unique_key) of the
// jobs inserted.
extern pg::PlanSlot insert_many_keyed;

// --- claim (claim.cpp) ---------------------------------------------------------
// ($1 queues) -> (name, paused, concurrency, lease).
extern pg::PlanSlot queues_info;
// ($1 queue): locks a queue with a concurrency limit -> (concurrency, lease).
extern pg::PlanSlot lock_limited_queue;
// ($1 queue) -> its running jobs.
extern pg::PlanSlot count_running;
// ($1 queues or queue, $2 worker, $3 limit, $4 lease) -> the claim's rows.
extern pg::PlanSlot claim_jobs;
extern pg::PlanSlot claim_one_queue;
// The same under the SQL of jobq 0.1.0: ten columns, no progress or saved_state.
extern pg::PlanSlot claim_jobs_sql_0_1_0;
extern pg::PlanSlot claim_one_queue_sql_0_1_0;

// --- settle (settle.cpp) -------------------------------------------------------
// Each is fenced by (id, lease_token).
// ($1 ids, $2 tokens, $3 results) -> id of each job completed.
extern pg::PlanSlot complete_jobs;
// ($1 ids, $2 tokens, $3 errors, $4 retry_in, $5 discard)
// -> (id, new state, queue, run_at).
extern pg::PlanSlot fail_jobs;
// ($1 ids, $2 tokens, $3 lease) -> (id, lease_expires_at).
extern pg::PlanSlot heartbeat_jobs;
// ($1 id, $2 token, $3 delay) -> (queue, run_at).
extern pg::PlanSlot snooze_job;
// ($1 ids, $2 tokens) -> (id, queue, run_at).
extern pg::PlanSlot release_jobs;
// ($1 id, $2 token, $3 progress) -> id.
extern pg::PlanSlot set_progress_job;

}  // namespace jobq::sql::stmt
