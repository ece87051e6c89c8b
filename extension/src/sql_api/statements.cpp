// The SQL-callable functions' statements (see statements.h).
#include "sql_api/statements.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace jobq::sql::stmt {

using pg::PlanMode;
using pg::PlanSlot;

// --- enqueue (enqueue.cpp) ---------------------------------------------------

#define JOBQ_INSERT_SELECT                                                                \
    "INSERT INTO jobq.job AS j (queue, state, payload, priority, run_at, max_attempts, "  \
    "unique_key) "                                                                        \
    "SELECT q.name, CASE WHEN $4 > now() THEN 'scheduled' ELSE 'available' END, $2, $3, " \
    "coalesce($4, now()), coalesce($5, q.max_attempts), $6 "                              \
    "FROM jobq.queue q WHERE q.name = $1 "
#define JOBQ_INSERT_JOB \
    JOBQ_INSERT_SELECT "ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL "

#define JOBQ_INSERT_ARGS \
    6, { TEXTOID, JSONBOID, INT2OID, TIMESTAMPTZOID, INT4OID, TEXTOID }

// Keyless jobs normally take InsertDirect (store/job_insert.cpp); this planned
// INSERT is for a jobq.job that carries rules of its user's (triggers,
// rules, constraints), which only the executor applies. Without a key
// nothing can conflict, so no ON CONFLICT (and none of its speculative
// insertion's cost).
PlanSlot insert_plain = {JOBQ_INSERT_SELECT "RETURNING id, run_at", JOBQ_INSERT_ARGS, nullptr};
PlanSlot insert_keep = {JOBQ_INSERT_JOB "DO NOTHING RETURNING id, run_at", JOBQ_INSERT_ARGS,
                        nullptr};
PlanSlot insert_replace = {
    JOBQ_INSERT_JOB
    "DO UPDATE SET payload = EXCLUDED.payload, priority = EXCLUDED.priority, "
    "run_at = EXCLUDED.run_at, state = EXCLUDED.state, "
    "max_attempts = greatest(EXCLUDED.max_attempts, j.attempt + 1) "
    "WHERE j.state <> 'running' RETURNING id, run_at",
    JOBQ_INSERT_ARGS, nullptr};
PlanSlot insert_debounce = {JOBQ_INSERT_JOB
                            "DO UPDATE SET payload = EXCLUDED.payload, run_at = EXCLUDED.run_at, "
                            "state = EXCLUDED.state "
                            "WHERE j.state <> 'running' RETURNING id, run_at",
                            JOBQ_INSERT_ARGS, nullptr};
PlanSlot find_by_key = {"SELECT id, run_at FROM jobq.job WHERE queue = $1 AND unique_key = $2",
                        2,
                        {TEXTOID, TEXTOID},
                        nullptr};
PlanSlot detach_key = {
    "UPDATE jobq.job SET unique_key = NULL "
    "WHERE queue = $1 AND unique_key = $2 AND state = 'running'",
    2,
    {TEXTOID, TEXTOID},
    nullptr};
PlanSlot queue_exists = {"SELECT 1 FROM jobq.queue WHERE name = $1", 1, {TEXTOID}, nullptr};
PlanSlot completed_in_window = {
    "SELECT id FROM jobq.archive WHERE queue = $1 AND unique_key = $2 AND state = 'completed' "
    "AND finished_at > now() - $3 ORDER BY finished_at DESC LIMIT 1",
    3,
    {TEXTOID, TEXTOID, INTERVALOID},
    nullptr};
PlanSlot withdraw_job = {"DELETE FROM jobq.job WHERE id = $1", 1, {INT8OID}, nullptr};

// --- enqueue_many (enqueue_many.cpp) -----------------------------------------

#define JOBQ_INSERT_MANY(key_column, key_value, from_payloads)                                 \
    "INSERT INTO jobq.job (queue, state, payload, priority, run_at, max_attempts" key_column   \
    ") SELECT q.name, CASE WHEN $4 > now() THEN 'scheduled' ELSE 'available' END, p.payload, " \
    "$3, coalesce($4, now()), coalesce($5, q.max_attempts)" key_value                          \
    " FROM jobq.queue q, " from_payloads " WHERE q.name = $1 ORDER BY p.n "

PlanSlot insert_many = {
    JOBQ_INSERT_MANY("", "", "unnest($2) WITH ORDINALITY AS p(payload, n)") "RETURNING id",
    5,
    {TEXTOID, JSONBARRAYOID, INT2OID, TIMESTAMPTZOID, INT4OID},
    nullptr,
    PlanMode::kCustom};

PlanSlot insert_many_keyed = {
    JOBQ_INSERT_MANY(", unique_key", ", p.key",
                     "unnest($2, $6) WITH ORDINALITY AS p(payload, key, n)")
    "ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING "
    "RETURNING id, unique_key",
    6, {TEXTOID, JSONBARRAYOID, INT2OID, TIMESTAMPTZOID, INT4OID, TEXTARRAYOID}, nullptr,
    PlanMode::kCustom};

// --- claim (claim.cpp) ---------------------------------------------------------

PlanSlot queues_info = {
    "SELECT name, paused, concurrency, lease FROM jobq.queue WHERE name = ANY($1)",
    1,
    {TEXTARRAYOID},
    nullptr};

// Lock first, count second: the count must be a separate statement so that,
// under READ COMMITTED, its snapshot is taken after the lock wait and sees
// the jobs the previous lock holder claimed.
PlanSlot lock_limited_queue = {
    "SELECT concurrency, lease FROM jobq.queue WHERE name = $1 AND NOT paused FOR NO KEY UPDATE",
    1,
    {TEXTOID},
    nullptr};
PlanSlot count_running = {
    "SELECT count(*) FROM jobq.job WHERE queue = $1 AND state = 'running'", 1, {TEXTOID}, nullptr};

// The claim statement around a queue filter ($1 is the queue or queues).
#define JOBQ_CLAIM_SQL(queue_filter)                                                 \
    "WITH candidate AS MATERIALIZED ("                                               \
    "  SELECT id FROM jobq.job"                                                      \
    "  WHERE " queue_filter                                                          \
    " AND state <> 'running' AND run_at <= now()"                                    \
    "  ORDER BY priority, run_at, id"                                                \
    "  LIMIT $3"                                                                     \
    "  FOR UPDATE SKIP LOCKED"                                                       \
    "), token AS MATERIALIZED (SELECT nextval('jobq.lease_token_seq') AS value) "    \
    "UPDATE jobq.job j SET state = 'running', attempt = j.attempt + 1,"              \
    "  lease_token = token.value, lease_expires_at = now() + coalesce($4, q.lease)," \
    "  worker = $2, attempted_at = now() "                                           \
    "FROM token, jobq.queue q "                                                      \
    "WHERE j.id = ANY (ARRAY(SELECT id FROM candidate)) AND q.name = j.queue "       \
    "RETURNING j.id, j.queue, j.payload, j.attempt, j.max_attempts, j.lease_token,"  \
    "  j.lease_expires_at, j.priority::integer, j.run_at, j.created_at"
#define JOBQ_CLAIM_RESUME_COLUMNS ", j.progress, j.saved_state"

PlanSlot claim_jobs = {JOBQ_CLAIM_SQL("queue = ANY($1)") JOBQ_CLAIM_RESUME_COLUMNS,
                       4,
                       {TEXTARRAYOID, TEXTOID, INT4OID, INTERVALOID},
                       nullptr,
                       PlanMode::kGeneric};

// The same for one queue: "queue = $1" lets the claim index deliver rows in
// claim order and stop at the limit (with "= ANY" it must sort every due job).
PlanSlot claim_one_queue = {JOBQ_CLAIM_SQL("queue = $1") JOBQ_CLAIM_RESUME_COLUMNS,
                            4,
                            {TEXTOID, TEXTOID, INT4OID, INTERVALOID},
                            nullptr,
                            PlanMode::kGeneric};

// Under the SQL of jobq 0.1.0 (until ALTER EXTENSION jobq UPDATE): jobq.job
// has no saved_state and jobq.claim returns the first ten columns only.
PlanSlot claim_jobs_sql_0_1_0 = {JOBQ_CLAIM_SQL("queue = ANY($1)"),
                                 4,
                                 {TEXTARRAYOID, TEXTOID, INT4OID, INTERVALOID},
                                 nullptr,
                                 PlanMode::kGeneric};
PlanSlot claim_one_queue_sql_0_1_0 = {JOBQ_CLAIM_SQL("queue = $1"),
                                      4,
                                      {TEXTOID, TEXTOID, INT4OID, INTERVALOID},
                                      nullptr,
                                      PlanMode::kGeneric};

// --- settle (settle.cpp) -------------------------------------------------------

#define JOBQ_ARCHIVE_COLUMNS                                                           \
    "id, queue, state, payload, priority, run_at, attempt, max_attempts, unique_key, " \
    "worker, progress, errors, result, created_at, attempted_at, finished_at"

PlanSlot complete_jobs = {
    "WITH done AS ("
    "  DELETE FROM jobq.job j USING unnest($1::bigint[], $2::bigint[], $3::jsonb[]) "
    "    AS s(id, token, result)"
    "  WHERE j.id = ANY($1) AND j.id = s.id AND j.lease_token = s.token"
    "  RETURNING j.*, s.result AS job_result"
    ") INSERT INTO jobq.archive (" JOBQ_ARCHIVE_COLUMNS
    ") "
    "SELECT id, queue, 'completed', payload, priority, run_at, attempt, max_attempts, "
    "  unique_key, worker, progress, errors, job_result, created_at, attempted_at, now() "
    "FROM done RETURNING id",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, JSONBARRAYOID},
    nullptr,
    PlanMode::kCustom};

PlanSlot fail_jobs = {
    "WITH input AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::interval[], "
    "    $5::boolean[]) AS s(id, token, error, retry_in, discard)"
    "), dead AS ("
    "  DELETE FROM jobq.job j USING input s"
    "  WHERE j.id = ANY($1) AND j.id = s.id AND j.lease_token = s.token"
    "    AND (coalesce(s.discard, false) OR j.attempt >= j.max_attempts)"
    "  RETURNING j.*, s.error AS error_text"
    "), archived AS ("
    "  INSERT INTO jobq.archive (" JOBQ_ARCHIVE_COLUMNS
    ") "
    "  SELECT id, queue, 'dead', payload, priority, run_at, attempt, max_attempts, unique_key,"
    "    worker, progress, jobq._append_error(errors, attempt, error_text), NULL, created_at,"
    "    attempted_at, now() FROM dead"
    "  RETURNING id, queue, run_at"
    "), retried AS ("
    "  UPDATE jobq.job j SET state = 'retryable', lease_token = NULL, lease_expires_at = NULL,"
    "    run_at = now() + coalesce(s.retry_in,"
    "      jobq.backoff(j.attempt, q.backoff_base, q.backoff_max, q.backoff_jitter)),"
    "    errors = jobq._append_error(j.errors, j.attempt, s.error)"
    "  FROM input s, jobq.queue q"
    "  WHERE j.id = ANY($1) AND j.id = s.id AND j.lease_token = s.token"
    "    AND q.name = j.queue AND NOT (coalesce(s.discard, false) OR j.attempt >= j.max_attempts)"
    "  RETURNING j.id, j.queue, j.run_at"
    ") SELECT id, 'dead'::text, queue, run_at FROM archived "
    "UNION ALL SELECT id, 'retryable'::text, queue, run_at FROM retried",
    5,
    {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INTERVALARRAYOID, BOOLARRAYOID},
    nullptr,
    PlanMode::kCustom};

PlanSlot heartbeat_jobs = {
    "UPDATE jobq.job j SET lease_expires_at = now() + coalesce($3, q.lease) "
    "FROM unnest($1::bigint[], $2::bigint[]) AS s(id, token), jobq.queue q "
    "WHERE j.id = ANY($1) AND j.id = s.id AND j.lease_token = s.token AND q.name = j.queue "
    "RETURNING j.id, j.lease_expires_at",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, INTERVALOID},
    nullptr,
    PlanMode::kCustom};

// Snooze and release give back the attempt the claim counted.
PlanSlot snooze_job = {
    "UPDATE jobq.job SET state = 'scheduled', run_at = now() + $3, attempt = attempt - 1, "
    "  lease_token = NULL, lease_expires_at = NULL "
    "WHERE id = $1 AND lease_token = $2 AND state = 'running' RETURNING queue, run_at",
    3,
    {INT8OID, INT8OID, INTERVALOID},
    nullptr};

PlanSlot release_jobs = {
    "UPDATE jobq.job j SET state = 'available', attempt = j.attempt - 1, "
    "  lease_token = NULL, lease_expires_at = NULL "
    "FROM unnest($1::bigint[], $2::bigint[]) AS s(id, token) "
    "WHERE j.id = ANY($1) AND j.id = s.id AND j.lease_token = s.token "
    "RETURNING j.id, j.queue, j.run_at",
    2,
    {INT8ARRAYOID, INT8ARRAYOID},
    nullptr,
    PlanMode::kCustom};

PlanSlot set_progress_job = {
    "UPDATE jobq.job SET progress = $3 "
    "WHERE id = $1 AND lease_token = $2 AND state = 'running' RETURNING id",
    3,
    {INT8OID, INT8OID, JSONBOID},
    nullptr};

}  // namespace jobq::sql::stmt
