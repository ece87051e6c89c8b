// The worker's statements (see statements.h).
#include "worker/statements.h"

extern "C" {
#include "catalog/pg_type.h"
}

namespace jobq::worker::stmt {

// --- database worker ---------------------------------------------------------

pg::PlanSlot wake_queues = {
    "WITH names AS ("
    "  SELECT unnest($1::text[]) AS q"
    "  UNION SELECT jobq._due_queues($2)"
    "  UNION SELECT jobq._due_queues(NULL) WHERE $3"
    ") SELECT n.q, q.handler IS NOT NULL, pg_catalog.pg_notify('jobq_wakeup', n.q) "
    "FROM names n JOIN jobq.queue q ON q.name = n.q WHERE NOT q.paused",
    3,
    {TEXTARRAYOID, TIMESTAMPTZOID, BOOLOID},
    nullptr};

pg::PlanSlot next_due = {"SELECT jobq._next_due()", 0, {}, nullptr};

pg::PlanSlot rescue = {"SELECT jobq._rescue($1, $2)", 2, {TEXTOID, INT4OID}, nullptr};

pg::PlanSlot count_handler_queues = {
    "SELECT count(*) FROM jobq.queue WHERE handler IS NOT NULL AND NOT paused", 0, {}, nullptr};

pg::PlanSlot prune = {"SELECT jobq._prune($1)", 1, {INT4OID}, nullptr};

pg::PlanSlot run_schedules = {
    "SELECT enqueued, next_tick FROM jobq._run_schedules()", 0, {}, nullptr};

// --- handler workers ---------------------------------------------------------

pg::PlanSlot rescue_own = {
    "SELECT jobq._rescue($1, $2, $3)", 3, {TEXTOID, INT4OID, TEXTOID}, nullptr};

pg::PlanSlot handler_queues = {
    "SELECT array_agg(name ORDER BY name) FROM jobq.queue WHERE handler IS NOT NULL AND NOT "
    "paused",
    0,
    {},
    nullptr};

// One claim per queue: a single-queue claim walks the claim index in order,
// while one claim over several queues sorts their whole backlog (PostgreSQL
// 15 cannot merge index scans over "queue = ANY").
pg::PlanSlot claim_handler_jobs = {
    "SELECT c.id, c.lease_token, c.payload::text, r.oid, q.owner,"
    "  coalesce((extract(epoch FROM q.handler_timeout) * 1000)::bigint, 0),"
    "  q.name, q.handler::text "
    "FROM pg_catalog.unnest($1) AS hq(name) "
    "CROSS JOIN LATERAL jobq.claim(ARRAY[hq.name], $2, $3) c "
    "JOIN jobq.queue q ON q.name = c.queue "
    "LEFT JOIN pg_catalog.pg_roles r ON r.rolname = q.owner "
    "ORDER BY c.priority, c.run_at, c.id",
    3,
    {TEXTARRAYOID, TEXTOID, INT4OID},
    nullptr};

// The handler's call and whether it returns jsonb, from the signature the
// queue stores (text): no row when the function is gone.
pg::PlanSlot resolve_handler = {
    "SELECT pg_catalog.format('SELECT %I.%I($1::jsonb)', n.nspname, p.proname),"
    "  p.prorettype = 'jsonb'::regtype "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE p.oid = pg_catalog.to_regprocedure($1)",
    1,
    {TEXTOID},
    nullptr};

pg::PlanSlot lock_job = {
    "SELECT 1 FROM jobq.job WHERE id = $1 AND lease_token = $2 AND state = 'running' "
    "FOR UPDATE",
    2,
    {INT8OID, INT8OID},
    nullptr};

pg::PlanSlot set_constraints_immediate = {"SET CONSTRAINTS ALL IMMEDIATE", 0, {}, nullptr};

pg::PlanSlot complete_job = {
    "SELECT 1 FROM jobq.complete(ARRAY[$1], ARRAY[$2], ARRAY[$3]::jsonb[])",
    3,
    {INT8OID, INT8OID, JSONBOID},
    nullptr};

pg::PlanSlot fail_job = {"SELECT jobq.fail($1, $2, $3)", 3, {INT8OID, INT8OID, TEXTOID}, nullptr};

// --- vacuum --------------------------------------------------------------------

pg::PlanSlot dead_tuples = {
    "SELECT pg_catalog.pg_stat_get_dead_tuples(c.oid) FROM pg_catalog.pg_class c "
    "WHERE c.oid = pg_catalog.to_regclass('jobq.job')",
    0,
    {},
    nullptr};

const char *const kVacuumJobTable = "VACUUM (SKIP_LOCKED) jobq.job";

// --- restore guard (restore_guard.cpp) and start-up checks (sql_version.cpp) --

// 1 when jobq._restore_session exists (it does not under the SQL of 0.1.0).
pg::PlanSlot restore_table_present = {
    "SELECT CASE WHEN pg_catalog.to_regclass('jobq._restore_session') IS NULL THEN 0::int8 "
    "ELSE 1::int8 END",
    0,
    {},
    nullptr};

// The restore session: its pid, application_name, whether it is still
// connected, and whether sessions of the same application that connected
// since it started (up to $1) are (pg_restore -j's workers).
pg::PlanSlot restore_session = {
    "SELECT r.pid, r.application_name,"
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
    "          WHERE a.pid = r.pid AND a.backend_start = r.backend_start),"
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
    "          WHERE a.datid = d.oid AND a.pid <> pg_catalog.pg_backend_pid()"
    "            AND r.application_name <> '' AND a.application_name = r.application_name"
    "            AND a.backend_start >= r.backend_start AND a.backend_start <= $1) "
    "FROM jobq._restore_session r"
    "  JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database() "
    "ORDER BY r.backend_start DESC LIMIT 1",
    1,
    {TIMESTAMPTZOID},
    nullptr};

pg::PlanSlot forget_restore_session = {"DELETE FROM jobq._restore_session", 0, {}, nullptr};

pg::PlanSlot installed_version = {
    "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'jobq'", 0, {}, nullptr};

}  // namespace jobq::worker::stmt
