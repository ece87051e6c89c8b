-- The hot path, written in C++ (extension/src/sql_api/). Producer and
-- worker functions run with the extension owner's rights so their roles
-- need no table privileges, and with search_path pinned so no planted
-- function or operator in another schema (or pg_temp) is ever resolved.
-- Worker functions are SECURITY DEFINER. enqueue and enqueue_many are not:
-- their common path checks no privilege and resolves no name, and the
-- wrapper's search_path switch cost 4-5% of a one-row enqueue; the parts
-- of them that run SQL take the owner's rights and the pinned path
-- themselves (pg/owner_rights.h). EXECUTE on them is the gate either way.

CREATE FUNCTION jobq._append_error(errors jsonb, attempt integer, error text)
RETURNS jsonb LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Errors are kept as a bounded list: the last 20 attempts.
    SELECT CASE WHEN pg_catalog.jsonb_array_length(e) > 20 THEN e - 0 ELSE e END
    FROM (SELECT coalesce(errors, '[]'::jsonb) || pg_catalog.jsonb_build_array(
                 pg_catalog.jsonb_build_object(
                     'attempt', attempt, 'at', pg_catalog.now(),
                     'error', pg_catalog.left(coalesce(error, 'unknown error'), 2000)))
          AS e) AS s
$$;

CREATE FUNCTION jobq.backoff(attempt integer, base interval, max interval, jitter double precision)
RETURNS interval LANGUAGE C VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'jobq_backoff';

CREATE FUNCTION jobq._check_queue_name(name text)
RETURNS void LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'jobq_check_queue_name';

-- The bounds of an interval setting (core/validate.h), shared by the queue
-- options and the calls' interval arguments: docs/api.md lists them.
CREATE FUNCTION jobq._check_interval(name text, value interval)
RETURNS void LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'jobq_check_interval';

CREATE FUNCTION jobq.enqueue(
    queue text,
    payload jsonb,
    run_at timestamptz DEFAULT NULL,
    priority integer DEFAULT 0,
    max_attempts integer DEFAULT NULL,
    unique_key text DEFAULT NULL,
    unique_mode text DEFAULT 'keep',
    debounce interval DEFAULT NULL,
    unique_window interval DEFAULT NULL)
RETURNS bigint LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_enqueue';

CREATE FUNCTION jobq.enqueue_many(
    queue text,
    payloads jsonb[],
    run_at timestamptz DEFAULT NULL,
    priority integer DEFAULT 0,
    max_attempts integer DEFAULT NULL,
    unique_keys text[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_enqueue_many';

CREATE FUNCTION jobq.claim(
    queues text[],
    worker text,
    max_jobs integer DEFAULT 1,
    lease interval DEFAULT NULL)
RETURNS TABLE (id bigint, queue text, payload jsonb, attempt integer, max_attempts integer,
               lease_token bigint, lease_expires_at timestamptz, priority integer,
               run_at timestamptz, created_at timestamptz, progress jsonb, saved_state jsonb)
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Its plans are generic (built once per backend); see claim.cpp.
SET enable_seqscan = off
AS 'MODULE_PATHNAME', 'jobq_claim';

CREATE FUNCTION jobq.complete(ids bigint[], tokens bigint[], results jsonb[] DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_complete';

CREATE FUNCTION jobq.fail(id bigint, token bigint, error text,
                          retry_in interval DEFAULT NULL, discard boolean DEFAULT false)
RETURNS text LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_fail';

CREATE FUNCTION jobq.fail_many(ids bigint[], tokens bigint[], errors text[],
                               retry_in interval[] DEFAULT NULL, discard boolean[] DEFAULT NULL)
RETURNS TABLE (id bigint, state text) LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_fail_many';

CREATE FUNCTION jobq.heartbeat(ids bigint[], tokens bigint[], lease interval DEFAULT NULL)
RETURNS TABLE (id bigint, lease_expires_at timestamptz) LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_heartbeat';

CREATE FUNCTION jobq.snooze(id bigint, token bigint, delay interval)
RETURNS boolean LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_snooze';

CREATE FUNCTION jobq.set_progress(id bigint, token bigint, progress jsonb)
RETURNS boolean LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_set_progress';

CREATE FUNCTION jobq.release(ids bigint[], tokens bigint[])
RETURNS SETOF bigint LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'jobq_release';
