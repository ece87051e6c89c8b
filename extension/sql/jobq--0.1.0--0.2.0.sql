-- jobq 0.1.0 -> 0.2.0: every change to the SQL between the two releases.
-- test/t/extension_upgrade.pl updates a filled 0.1.0 install with this
-- script and requires the same catalog as a fresh 0.2.0 install
-- (docs/contributing.md).

\echo Use "ALTER EXTENSION jobq UPDATE" to load this file. \quit

-- jobq.queue.handler: regprocedure -> text (the handler's schema-qualified
-- signature). pg_upgrade refuses reg* columns in user tables, and a dump
-- restores the name rather than an OID. The view over the column is
-- recreated around the change; the old values are written with the
-- search_path pinned, so every signature comes out schema-qualified.
DROP VIEW jobq.queues;
CREATE FUNCTION jobq._upgrade_0_2_0_handler(handler regprocedure)
RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT handler::text $$;
ALTER TABLE jobq.queue ALTER COLUMN handler TYPE text USING jobq._upgrade_0_2_0_handler(handler);
DROP FUNCTION jobq._upgrade_0_2_0_handler(regprocedure);

CREATE VIEW jobq.queues AS
    SELECT name, paused, max_attempts, backoff_base, backoff_max, backoff_jitter, lease,
           retention, concurrency, handler, handler_timeout, owner, created_at
    FROM jobq.queue;
GRANT SELECT ON jobq.queues TO jobq_monitor;

-- Bounds checking: every interval setting and interval argument within the
-- bounds of core/validate.h (docs/api.md).
CREATE FUNCTION jobq._check_interval(name text, value interval)
RETURNS void LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'jobq_check_interval';

CREATE OR REPLACE FUNCTION jobq._check_queue(q jobq.queue)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    handler_fn regprocedure;
BEGIN
    PERFORM jobq._check_queue_name(q.name);
    IF q.max_attempts IS NULL OR q.max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Every interval within its bounds: a value past them would overflow
    -- timestamp arithmetic in claim, fail or retention later.
    PERFORM jobq._check_interval('backoff_base', q.backoff_base);
    PERFORM jobq._check_interval('backoff_max', q.backoff_max);
    IF q.backoff_max < q.backoff_base THEN
        RAISE EXCEPTION 'backoff_max must be at least backoff_base' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.backoff_jitter IS NULL OR q.backoff_jitter < 0 OR q.backoff_jitter > 1 THEN
        RAISE EXCEPTION 'backoff_jitter must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM jobq._check_interval('lease', q.lease);
    PERFORM jobq._check_interval('retention', q.retention);
    IF q.concurrency IS NOT NULL AND q.concurrency <= 0 THEN
        RAISE EXCEPTION 'concurrency must be positive'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use NULL for no limit.';
    END IF;
    IF q.handler_timeout IS NOT NULL THEN
        PERFORM jobq._check_interval('handler_timeout', q.handler_timeout);
    END IF;
    IF q.handler IS NOT NULL THEN
        handler_fn := pg_catalog.to_regprocedure(q.handler);
        IF handler_fn IS NULL THEN
            RAISE EXCEPTION 'handler function % does not exist', q.handler
                USING ERRCODE = 'undefined_function',
                      HINT = 'Give the handler as ''schema.fn(jsonb)''::regprocedure.';
        END IF;
        PERFORM jobq._check_handler(handler_fn);
        -- Handlers run as the queue's owner; never let that be a superuser.
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = q.owner AND r.rolsuper) THEN
            RAISE EXCEPTION 'in-database handlers cannot run as superuser "%"', q.owner
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Create the queue as (or SET ROLE to) the role the handler should run as.';
        END IF;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION jobq.create_queue(
    name text,
    max_attempts integer DEFAULT 25,
    backoff_base interval DEFAULT '1 second',
    backoff_max interval DEFAULT '1 hour',
    backoff_jitter double precision DEFAULT 0.1,
    lease interval DEFAULT '5 minutes',
    retention interval DEFAULT '7 days',
    concurrency integer DEFAULT NULL,
    handler regprocedure DEFAULT NULL,
    handler_timeout interval DEFAULT NULL,
    if_not_exists boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q jobq.queue;
BEGIN
    q.name := name;
    q.max_attempts := max_attempts;
    q.backoff_base := backoff_base;
    q.backoff_max := backoff_max;
    q.backoff_jitter := backoff_jitter;
    q.lease := lease;
    q.retention := retention;
    q.concurrency := concurrency;
    -- Stored as its schema-qualified signature (search_path is pinned here).
    q.handler := handler::text;
    q.handler_timeout := handler_timeout;
    q.owner := current_user;
    PERFORM jobq._check_queue(q);
    INSERT INTO jobq.queue AS t (name, max_attempts, backoff_base, backoff_max, backoff_jitter,
                                 lease, retention, concurrency, handler, handler_timeout, owner)
    VALUES (q.name, q.max_attempts, q.backoff_base, q.backoff_max, q.backoff_jitter,
            q.lease, q.retention, q.concurrency, q.handler, q.handler_timeout, current_user)
    ON CONFLICT ON CONSTRAINT queue_pkey DO NOTHING;
    IF NOT FOUND AND NOT if_not_exists THEN
        RAISE EXCEPTION 'queue "%" already exists', q.name USING ERRCODE = 'duplicate_object';
    END IF;
END
$$;

-- NULL leaves a setting as it is; concurrency => 0 removes the limit and
-- drop_handler => true removes the in-database handler.
CREATE OR REPLACE FUNCTION jobq.alter_queue(
    name text,
    max_attempts integer DEFAULT NULL,
    backoff_base interval DEFAULT NULL,
    backoff_max interval DEFAULT NULL,
    backoff_jitter double precision DEFAULT NULL,
    lease interval DEFAULT NULL,
    retention interval DEFAULT NULL,
    concurrency integer DEFAULT NULL,
    handler regprocedure DEFAULT NULL,
    handler_timeout interval DEFAULT NULL,
    drop_handler boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q jobq.queue;
BEGIN
    q := jobq._queue_for_update(name);
    q.max_attempts := coalesce(max_attempts, q.max_attempts);
    q.backoff_base := coalesce(backoff_base, q.backoff_base);
    q.backoff_max := coalesce(backoff_max, q.backoff_max);
    q.backoff_jitter := coalesce(backoff_jitter, q.backoff_jitter);
    q.lease := coalesce(lease, q.lease);
    q.retention := coalesce(retention, q.retention);
    q.concurrency := CASE WHEN concurrency = 0 THEN NULL ELSE coalesce(concurrency, q.concurrency) END;
    q.handler := CASE WHEN drop_handler THEN NULL ELSE coalesce(handler::text, q.handler) END;
    q.handler_timeout := coalesce(handler_timeout, q.handler_timeout);
    IF drop_handler AND handler IS NOT NULL THEN
        RAISE EXCEPTION 'handler and drop_handler cannot be given together'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM jobq._check_queue(q);
    UPDATE jobq.queue AS t
    SET max_attempts = q.max_attempts, backoff_base = q.backoff_base,
        backoff_max = q.backoff_max, backoff_jitter = q.backoff_jitter, lease = q.lease,
        retention = q.retention, concurrency = q.concurrency, handler = q.handler,
        handler_timeout = q.handler_timeout
    WHERE t.name = q.name;
END
$$;

-- 0.1.0 took intervals the bounds now refuse (a lease of 30 days, say).
-- Such a queue keeps its options, but alter_queue refuses every change to
-- it until the option is brought within bounds in the same call: say so
-- now, option by option, rather than at the next alter_queue.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT t.name, o.option, o.value
             FROM jobq.queue t,
                  LATERAL (VALUES ('backoff_base', t.backoff_base), ('backoff_max', t.backoff_max),
                                  ('lease', t.lease), ('retention', t.retention),
                                  ('handler_timeout', t.handler_timeout)) o(option, value)
             WHERE o.value IS NOT NULL
             ORDER BY t.name, o.option LOOP
        BEGIN
            PERFORM jobq._check_interval(r.option, r.value);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE WARNING 'jobq queue "%": %', r.name, SQLERRM
                USING DETAIL = pg_catalog.format('jobq 0.2.0 bounds the interval options of queues '
                                                 || '(docs/api.md); the queue keeps %s = %s.',
                                                 r.option, r.value),
                      HINT = pg_catalog.format('Change it with jobq.alter_queue(%L, %s => ...); until '
                                               || 'then alter_queue refuses the queue''s other changes.',
                                               r.name, r.option);
        END;
    END LOOP;
END
$$;

-- drop_queue takes the queue's rows off the archive tally too (below).
CREATE OR REPLACE FUNCTION jobq.drop_queue(name text, force boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q jobq.queue;
    live bigint;
BEGIN
    q := jobq._queue_for_update(name);
    -- Waits for in-flight enqueues to commit and holds off new ones, so no
    -- job is inserted into the queue while it is dropped.
    LOCK TABLE jobq.job IN SHARE ROW EXCLUSIVE MODE;
    SELECT count(*) INTO live FROM jobq.job j WHERE j.queue = q.name;
    IF live > 0 AND NOT force THEN
        RAISE EXCEPTION 'queue "%" has % unfinished jobs', q.name, live
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for them to finish, cancel them, or use force => true.';
    END IF;
    DELETE FROM jobq.job j WHERE j.queue = q.name;
    DELETE FROM jobq.archive a WHERE a.queue = q.name;
    -- After the archive rows, under the lock jobq._tally_advance orders with.
    LOCK TABLE jobq.archive_tally IN ROW EXCLUSIVE MODE;
    DELETE FROM jobq.archive_tally t WHERE t.queue = q.name;
    DELETE FROM jobq.queue t WHERE t.name = q.name;
END
$$;

-- The archive tally of jobq.queue_stats (00_schema.sql). An updated
-- install starts as a fresh one does: no mark, so the view counts every
-- archived job from the archive itself, and the worker's first retention
-- turn (jobq._tally_advance) tallies the jobs archived before the update.
-- The update itself does not scan the archive.
CREATE INDEX archive_dead_idx ON jobq.archive (queue) WHERE state = 'dead';

CREATE TABLE jobq.archive_tally (
    queue text NOT NULL,
    state text NOT NULL,
    jobs  bigint NOT NULL,
    PRIMARY KEY (queue, state),
    CONSTRAINT archive_tally_state CHECK (state IN ('completed', 'cancelled'))
);
-- At most one row. No row (a new install): nothing is tallied yet, and the
-- view counts every row from the archive until the worker first advances
-- the mark. (No row is inserted here, so a restored dump brings its own.)
CREATE TABLE jobq.archive_tally_mark (
    single        boolean PRIMARY KEY DEFAULT true CHECK (single),
    counted_until timestamptz NOT NULL
);

SELECT pg_catalog.pg_extension_config_dump('jobq.archive_tally', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.archive_tally_mark', '');

CREATE FUNCTION jobq._tally_mark()
RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT m.counted_until FROM jobq.archive_tally_mark m), '-infinity')
$$;

-- queue_stats: finished counts from the tally, dead jobs from archive_dead_idx.
CREATE OR REPLACE VIEW jobq.queue_stats AS
    SELECT q.name AS queue, q.paused,
           coalesce(live.available, 0) AS available,
           coalesce(live.scheduled, 0) AS scheduled,
           coalesce(live.running, 0) AS running,
           coalesce(live.retryable, 0) AS retryable,
           coalesce(fin.completed, 0) AS completed,
           coalesce(fin.cancelled, 0) AS cancelled,
           coalesce(fin.dead, 0) AS dead,
           live.oldest_waiting_age,
           coalesce(recent.completed_5m, 0) AS completed_5m,
           coalesce(recent.dead_5m, 0) + coalesce(live.failed_5m, 0) AS failed_5m,
           recent.mean_run_time_5m,
           CASE WHEN coalesce(recent.completed_5m, 0) + coalesce(recent.dead_5m, 0)
                     + coalesce(live.failed_5m, 0) = 0 THEN NULL
                ELSE round((coalesce(recent.dead_5m, 0) + coalesce(live.failed_5m, 0))::numeric
                           / (coalesce(recent.completed_5m, 0) + coalesce(recent.dead_5m, 0)
                              + coalesce(live.failed_5m, 0)), 4) END AS failure_rate_5m
    FROM jobq.queue q
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE j.state IN ('available', 'scheduled') AND j.run_at <= now()) AS available,
               count(*) FILTER (WHERE j.state IN ('available', 'scheduled') AND j.run_at > now()) AS scheduled,
               count(*) FILTER (WHERE j.state = 'running') AS running,
               count(*) FILTER (WHERE j.state = 'retryable') AS retryable,
               now() - min(j.run_at) FILTER (WHERE j.state <> 'running' AND j.run_at <= now()) AS oldest_waiting_age,
               count(*) FILTER (WHERE j.errors IS NOT NULL
                                  AND (j.errors -> -1 ->> 'at')::timestamptz > now() - interval '5 minutes') AS failed_5m
        FROM jobq.job j WHERE j.queue = q.name) live ON true
    LEFT JOIN LATERAL (
        SELECT (SELECT count(*) FROM jobq.archive a WHERE a.queue = q.name AND a.state = 'dead') AS dead,
               coalesce(tally.completed, 0) + since.completed AS completed,
               coalesce(tally.cancelled, 0) + since.cancelled AS cancelled
        FROM (SELECT sum(t.jobs) FILTER (WHERE t.state = 'completed')::bigint AS completed,
                     sum(t.jobs) FILTER (WHERE t.state = 'cancelled')::bigint AS cancelled
              FROM jobq.archive_tally t WHERE t.queue = q.name) tally,
             (SELECT count(*) FILTER (WHERE a.state = 'completed') AS completed,
                     count(*) FILTER (WHERE a.state = 'cancelled') AS cancelled
              FROM jobq.archive a
              WHERE a.queue = q.name AND a.finished_at >= jobq._tally_mark()) since) fin ON true
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.state = 'completed') AS completed_5m,
               count(*) FILTER (WHERE a.state = 'dead') AS dead_5m,
               avg(a.finished_at - a.attempted_at) FILTER (WHERE a.state = 'completed') AS mean_run_time_5m
        FROM jobq.archive a
        WHERE a.queue = q.name AND a.finished_at > now() - interval '5 minutes') recent ON true;


-- Saved state (60_resume.sql): a new last column of jobq.job, as in a
-- fresh install (ADD COLUMN appends; the part keeps it last). jobq.jobs
-- gains it as its last column, which CREATE OR REPLACE VIEW may append:
-- the view keeps its grants, its comment and jobq.job(bigint), which
-- returns its rows.
ALTER TABLE jobq.job ADD COLUMN saved_state jsonb;

CREATE OR REPLACE VIEW jobq.jobs AS
    SELECT j.id, j.queue, jobq._display_state(j.state, j.run_at) AS state, j.attempt,
           j.max_attempts, j.priority, j.payload, j.run_at, j.created_at, j.attempted_at,
           NULL::timestamptz AS finished_at, j.unique_key, j.worker, j.lease_expires_at,
           j.progress, j.errors, NULL::jsonb AS result, j.saved_state
    FROM jobq.job j
    UNION ALL
    SELECT a.id, a.queue, a.state, a.attempt, a.max_attempts, a.priority, a.payload, a.run_at,
           a.created_at, a.attempted_at, a.finished_at, a.unique_key, a.worker,
           NULL::timestamptz, a.progress, a.errors, a.result, NULL::jsonb
    FROM jobq.archive a;

-- job, cancel, retry: a NULL id is an error; retry takes the job off the
-- tally. cancel notifies channel jobq_cancel (payload: the job id) at
-- commit when the job was running, so its runner stops it at once.
CREATE OR REPLACE FUNCTION jobq.job(id bigint)
RETURNS SETOF jobq.jobs LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT * FROM jobq.jobs j WHERE j.id = $1;
END
$$;

CREATE OR REPLACE FUNCTION jobq.cancel(id bigint)
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was text;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    WITH gone AS (
        DELETE FROM jobq.job j WHERE j.id = $1 RETURNING j.*
    ), archived AS (
        INSERT INTO jobq.archive (id, queue, state, payload, priority, run_at, attempt,
                                  max_attempts, unique_key, worker, progress, errors, result,
                                  created_at, attempted_at, finished_at)
        SELECT g.id, g.queue, 'cancelled', g.payload, g.priority, g.run_at, g.attempt,
               g.max_attempts, g.unique_key, g.worker, g.progress, g.errors, NULL, g.created_at,
               g.attempted_at, now()
        FROM gone g
    )
    SELECT g.state INTO was FROM gone g;
    IF FOUND THEN
        -- Only a running job has a handler to stop; NOTIFY is sent at commit.
        IF was = 'running' THEN
            PERFORM pg_catalog.pg_notify('jobq_cancel', $1::text);
        END IF;
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM jobq.archive a WHERE a.id = $1) THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION 'job % does not exist', $1 USING ERRCODE = 'undefined_object';
END
$$;

CREATE OR REPLACE FUNCTION jobq.retry(id bigint)
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
    st text;
    fin timestamptz;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.queue, a.state, a.finished_at INTO q, st, fin FROM jobq.archive a WHERE a.id = $1 FOR UPDATE;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM jobq.job j WHERE j.id = $1) THEN
            RAISE EXCEPTION 'job % has not finished', $1
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Only dead or cancelled jobs can be retried.';
        END IF;
        RAISE EXCEPTION 'job % does not exist', $1 USING ERRCODE = 'undefined_object';
    END IF;
    IF st = 'completed' THEN
        RAISE EXCEPTION 'job % has completed', $1
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only dead or cancelled jobs can be retried; enqueue a new job instead.';
    END IF;
    BEGIN
        WITH back AS (
            DELETE FROM jobq.archive a WHERE a.id = $1 RETURNING a.*
        )
        INSERT INTO jobq.job (id, queue, state, payload, priority, run_at, attempt, max_attempts,
                              unique_key, progress, errors, created_at)
        SELECT b.id, b.queue, 'available', b.payload, b.priority, now(), 0, b.max_attempts,
               b.unique_key, b.progress, b.errors, b.created_at
        FROM back b;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'job % cannot be retried: another unfinished job has its unique key', $1
            USING ERRCODE = 'unique_violation';
    END;
    PERFORM jobq._tally_forget(q, st, fin, 1);
    PERFORM jobq._note_wakeup(q, now());
    RETURN true;
END
$$;

CREATE FUNCTION jobq._tally_forget(queue text, state text, finished_at timestamptz, jobs bigint)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF state NOT IN ('completed', 'cancelled') OR jobs = 0 THEN
        RETURN;
    END IF;
    LOCK TABLE jobq.archive_tally IN ROW EXCLUSIVE MODE;
    IF finished_at < jobq._tally_mark() THEN
        UPDATE jobq.archive_tally t SET jobs = t.jobs - _tally_forget.jobs
        WHERE t.queue = _tally_forget.queue AND t.state = _tally_forget.state;
    END IF;
END
$$;

CREATE FUNCTION jobq._tally_advance()
RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_mark timestamptz;
    new_mark timestamptz;
    q text;
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts) THEN
        RETURN jobq._tally_mark();
    END IF;
    LOCK TABLE jobq.archive_tally IN EXCLUSIVE MODE;
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    SELECT least(now() - interval '1 minute', min(a.xact_start)) INTO new_mark
    FROM pg_catalog.pg_stat_activity a
    WHERE a.xact_start IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid();
    old_mark := jobq._tally_mark();
    IF new_mark <= old_mark THEN
        RETURN old_mark;
    END IF;
    FOR q IN SELECT t.name FROM jobq.queue t ORDER BY t.name LOOP
        INSERT INTO jobq.archive_tally AS t (queue, state, jobs)
        SELECT q, a.state, count(*) FROM jobq.archive a
        WHERE a.queue = q AND a.finished_at >= old_mark AND a.finished_at < new_mark
          AND a.state IN ('completed', 'cancelled')
        GROUP BY a.state
        ON CONFLICT ON CONSTRAINT archive_tally_pkey DO UPDATE SET jobs = t.jobs + excluded.jobs;
    END LOOP;
    INSERT INTO jobq.archive_tally_mark AS m (counted_until) VALUES (new_mark)
    ON CONFLICT ON CONSTRAINT archive_tally_mark_pkey DO UPDATE SET counted_until = excluded.counted_until;
    RETURN new_mark;
END
$$;

CREATE FUNCTION jobq._tally_rebuild()
RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    LOCK TABLE jobq.archive_tally IN EXCLUSIVE MODE;
    DELETE FROM jobq.archive_tally;
    DELETE FROM jobq.archive_tally_mark;
    RETURN jobq._tally_advance();
END
$$;

-- Lease rescue and retention queue by queue, each in its own
-- subtransaction; retention advances the tally and takes its deletions off.
CREATE OR REPLACE FUNCTION jobq._rescue(rescuer text, max_jobs integer DEFAULT 1000,
                             held_by text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reason text := CASE WHEN held_by IS NULL
                        THEN pg_catalog.format('lease expired (rescued by worker %s)', rescuer)
                        ELSE pg_catalog.format('worker %s stopped while running the job (rescued by worker %s)',
                                               held_by, rescuer) END;
    horizon timestamptz := CASE WHEN held_by IS NULL THEN now() ELSE 'infinity' END;
    qname text;
    n bigint := 0;
    n_dead bigint;
    n_retry bigint;
BEGIN
    FOR qname IN SELECT DISTINCT j.queue FROM jobq.job j
                 WHERE j.state = 'running' AND j.lease_expires_at < horizon
                   AND (held_by IS NULL OR j.worker = held_by)
                 ORDER BY j.queue LOOP
        EXIT WHEN n >= max_jobs;
        BEGIN
            WITH expired AS MATERIALIZED (
                SELECT j.id, j.lease_token FROM jobq.job j
                WHERE j.state = 'running' AND j.lease_expires_at < horizon AND j.queue = qname
                  AND (held_by IS NULL OR j.worker = held_by)
                ORDER BY j.lease_expires_at
                LIMIT max_jobs - n
                FOR UPDATE SKIP LOCKED
            ), dead AS (
                DELETE FROM jobq.job j USING expired e
                WHERE j.id = e.id AND j.lease_token = e.lease_token AND j.state = 'running'
                  AND j.attempt >= j.max_attempts
                RETURNING j.*
            ), archived AS (
                INSERT INTO jobq.archive (id, queue, state, payload, priority, run_at, attempt,
                                          max_attempts, unique_key, worker, progress, errors,
                                          result, created_at, attempted_at, finished_at)
                SELECT d.id, d.queue, 'dead', d.payload, d.priority, d.run_at, d.attempt,
                       d.max_attempts, d.unique_key, d.worker, d.progress,
                       jobq._append_error(d.errors, d.attempt, reason), NULL, d.created_at,
                       d.attempted_at, now()
                FROM dead d
                RETURNING 1
            ), retried AS (
                UPDATE jobq.job j
                SET state = 'retryable', lease_token = NULL, lease_expires_at = NULL,
                    run_at = now() + jobq.backoff(j.attempt, q.backoff_base, q.backoff_max,
                                                  q.backoff_jitter),
                    errors = jobq._append_error(j.errors, j.attempt, reason)
                FROM expired e, jobq.queue q
                WHERE j.id = e.id AND j.lease_token = e.lease_token AND j.state = 'running'
                  AND j.attempt < j.max_attempts AND q.name = j.queue
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM retried)
            INTO n_dead, n_retry;
            n := n + n_dead + n_retry;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'jobq: lease rescue skipped queue "%": %', qname, SQLERRM
                USING DETAIL = pg_catalog.format('SQLSTATE %s. Other queues are rescued as usual.',
                                                 SQLSTATE);
        END;
    END LOOP;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION jobq._prune(max_jobs integer DEFAULT 1000)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
    n bigint := 0;
    k bigint;
    mark timestamptz;
BEGIN
    -- Locks the tally until commit: the decrements below read its mark,
    -- which no advance moves meanwhile.
    PERFORM jobq._tally_advance();
    LOCK TABLE jobq.archive_tally IN ROW EXCLUSIVE MODE;
    mark := jobq._tally_mark();
    FOR q IN SELECT t.name, t.retention FROM jobq.queue t ORDER BY t.name LOOP
        EXIT WHEN n >= max_jobs;
        BEGIN
            WITH gone AS (
                DELETE FROM jobq.archive a
                WHERE a.id IN (SELECT a2.id FROM jobq.archive a2
                               WHERE a2.queue = q.name AND a2.finished_at < now() - q.retention
                                 AND a2.state <> 'dead'
                               ORDER BY a2.finished_at
                               LIMIT max_jobs - n
                               FOR UPDATE SKIP LOCKED)
                RETURNING a.state, a.finished_at
            ), tallied AS (
                UPDATE jobq.archive_tally t SET jobs = t.jobs - g.jobs
                FROM (SELECT gone.state, count(*) AS jobs FROM gone
                      WHERE gone.finished_at < mark GROUP BY gone.state) g
                WHERE t.queue = q.name AND t.state = g.state
            )
            SELECT count(*) INTO k FROM gone;
            n := n + k;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'jobq: retention skipped queue "%": %', q.name, SQLERRM
                USING DETAIL = pg_catalog.format('SQLSTATE %s. Other queues are pruned as usual.',
                                                 SQLSTATE);
        END;
    END LOOP;
    RETURN n;
END
$$;

-- schedule and unschedule: a NULL name is an error of its own.
CREATE OR REPLACE FUNCTION jobq.schedule(
    name text,
    cron text,
    queue text,
    payload jsonb DEFAULT '{}',
    timezone text DEFAULT 'UTC',
    priority integer DEFAULT 0,
    max_attempts integer DEFAULT NULL)
RETURNS timestamptz LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    next_run timestamptz;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'schedule name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$' THEN
        RAISE EXCEPTION 'invalid schedule name "%"', name
            USING ERRCODE = 'invalid_name',
                  DETAIL = 'Schedule names are 1 to 100 letters, digits, ''_'', ''.'', '':'' or ''-'', starting with a letter or digit.';
    END IF;
    PERFORM jobq._check_cron(cron);
    IF queue IS NULL THEN
        RAISE EXCEPTION 'queue must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM jobq._check_queue_name(queue);
    IF NOT EXISTS (SELECT 1 FROM jobq.queue q WHERE q.name = schedule.queue) THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue USING ERRCODE = 'undefined_object';
    END IF;
    IF payload IS NULL THEN
        RAISE EXCEPTION 'payload must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF timezone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = timezone)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = timezone) THEN
        RAISE EXCEPTION 'time zone "%" not recognized', timezone
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a name from pg_timezone_names, such as ''UTC'' or ''Europe/Berlin''.';
    END IF;
    IF priority IS NULL OR priority NOT BETWEEN -32768 AND 32767 THEN
        RAISE EXCEPTION 'priority must be between -32768 and 32767' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NOT NULL AND max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    next_run := jobq._cron_next(cron, timezone, now());
    IF next_run IS NULL THEN
        RAISE EXCEPTION 'cron expression "%" never fires', cron
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'No time in the next ten years matches it.';
    END IF;
    INSERT INTO jobq.periodic AS p (name, cron, queue, payload, timezone, priority, max_attempts,
                                    next_tick, owner)
    VALUES (name, cron, queue, payload, timezone, priority, max_attempts, next_run, current_user)
    ON CONFLICT ON CONSTRAINT periodic_pkey DO UPDATE
    SET cron = excluded.cron, queue = excluded.queue, payload = excluded.payload,
        timezone = excluded.timezone, priority = excluded.priority,
        max_attempts = excluded.max_attempts, next_tick = excluded.next_tick,
        owner = excluded.owner, last_error = NULL;
    PERFORM jobq._note_wakeup('jobq.schedule', next_run);
    RETURN next_run;
END
$$;

CREATE OR REPLACE FUNCTION jobq.unschedule(name text, if_exists boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'schedule name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM jobq.periodic p WHERE p.name = unschedule.name;
    IF FOUND THEN
        RETURN true;
    END IF;
    IF if_exists THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'undefined_object';
END
$$;

-- Restore guard (extension/src/worker/restore_guard.h). An updated install
-- was not created by a restore: the table starts empty.
CREATE TABLE jobq._restore_session (
    pid              integer NOT NULL,
    backend_start    timestamptz NOT NULL,
    application_name text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Whether this CREATE EXTENSION jobq started with check_function_bodies =
-- off (the script itself always runs with it off, so only the library's
-- utility hook saw the session's setting).
CREATE FUNCTION jobq._created_by_restore()
RETURNS boolean LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_created_by_restore';
REVOKE ALL ON TABLE jobq._restore_session FROM PUBLIC;
REVOKE ALL ON FUNCTION jobq._created_by_restore() FROM PUBLIC;

-- claim returns two more columns, the job's progress and saved state
-- (60_resume.sql). A changed result type needs DROP + CREATE; nothing in
-- the extension depends on claim. Its grant and REVOKE are given again
-- below, its comment with the others.
DROP FUNCTION jobq.claim(text[], text, integer, interval);
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

-- Jobs that pause and resume (60_resume.sql): save_state and sleep, and
-- their checks.
-- The size rule of payloads (jobq.max_payload_size) for saved state.
CREATE FUNCTION jobq._check_state_size(state jsonb)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bytes integer := pg_catalog.octet_length(state::text);
    -- pg_settings gives the setting in bytes (current_setting adds a unit).
    max_bytes integer := coalesce(
        (SELECT s.setting::integer FROM pg_catalog.pg_settings s
         WHERE s.name = 'jobq.max_payload_size'), 1048576);
BEGIN
    IF bytes > max_bytes THEN
        RAISE EXCEPTION 'saved state is too large (% bytes)', bytes
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = pg_catalog.format('The limit is %s bytes, set by jobq.max_payload_size.',
                                             max_bytes),
                  HINT = 'Store large data in a table and save its key.';
    END IF;
END
$$;

CREATE FUNCTION jobq._require_arg(value anyelement, name text)
RETURNS void LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', name USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;

-- save_state(id, token, state): records the state a running job would
-- resume from, without leaving running. True when applied.
CREATE FUNCTION jobq.save_state(id bigint, token bigint, state jsonb)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM jobq._require_arg($1, 'id');
    PERFORM jobq._require_arg($2, 'token');
    PERFORM jobq._require_arg($3, 'state');
    PERFORM jobq._check_state_size($3);
    UPDATE jobq.job j SET saved_state = $3
    WHERE j.id = $1 AND j.lease_token = $2 AND j.state = 'running';
    RETURN FOUND;
END
$$;

-- sleep(id, token, until, state): the running job leaves running until
-- `until` (at once if it has passed), its claim's attempt given back, its
-- lease released; `state` (when not NULL) replaces the saved state. True
-- when applied.
CREATE FUNCTION jobq.sleep(id bigint, token bigint, until timestamptz, state jsonb DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text;
BEGIN
    PERFORM jobq._require_arg($1, 'id');
    PERFORM jobq._require_arg($2, 'token');
    PERFORM jobq._require_arg($3, 'until');
    IF NOT pg_catalog.isfinite($3) THEN
        RAISE EXCEPTION 'until must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 IS NOT NULL THEN
        PERFORM jobq._check_state_size($4);
    END IF;
    UPDATE jobq.job j
    SET state = CASE WHEN $3 > now() THEN 'scheduled' ELSE 'available' END,
        run_at = GREATEST($3, now()), attempt = j.attempt - 1,
        lease_token = NULL, lease_expires_at = NULL,
        saved_state = coalesce($4, j.saved_state)
    WHERE j.id = $1 AND j.lease_token = $2 AND j.state = 'running'
    RETURNING j.queue INTO q;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM jobq._note_wakeup(q, GREATEST($3, now()));
    RETURN true;
END
$$;

-- Privileges of the new objects, as 90_grants.sql and 50_worker.sql give
-- them in a fresh install (PUBLIC gets nothing in schema jobq).
REVOKE ALL ON TABLE jobq.archive_tally, jobq.archive_tally_mark FROM PUBLIC;
REVOKE ALL ON FUNCTION jobq._check_interval(text, interval), jobq._tally_mark(),
    jobq._tally_forget(text, text, timestamptz, bigint), jobq._tally_advance(),
    jobq._tally_rebuild()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq._check_interval(text, interval) TO jobq_admin;
GRANT EXECUTE ON FUNCTION jobq._tally_mark() TO jobq_monitor;
GRANT SELECT ON jobq.archive_tally_mark TO jobq_monitor;
GRANT EXECUTE ON FUNCTION jobq._tally_forget(text, text, timestamptz, bigint),
    jobq._tally_advance(), jobq._tally_rebuild()
TO jobq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobq.archive_tally, jobq.archive_tally_mark TO jobq_admin;

REVOKE ALL ON FUNCTION jobq.claim(text[], text, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq.claim(text[], text, integer, interval) TO jobq_worker;
REVOKE ALL ON FUNCTION jobq._check_state_size(jsonb), jobq._require_arg(anyelement, text),
    jobq.save_state(bigint, bigint, jsonb), jobq.sleep(bigint, bigint, timestamptz, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq.save_state(bigint, bigint, jsonb),
    jobq.sleep(bigint, bigint, timestamptz, jsonb)
TO jobq_worker;
GRANT EXECUTE ON FUNCTION jobq._check_state_size(jsonb), jobq._require_arg(anyelement, text)
TO jobq_admin;

-- Comments on every object (95_comments.sql, new in 0.2.0), including the
-- recreated view jobq.queues.
-- Tables and sequences
COMMENT ON TABLE jobq.queue IS
    'Queues and their options; change them with jobq.create_queue/alter_queue/drop_queue, read them in jobq.queues.';
COMMENT ON TABLE jobq.job IS
    'Live jobs (waiting or running); a job moves to jobq.archive when it finishes. Read through jobq.jobs.';
COMMENT ON TABLE jobq.archive IS
    'Finished jobs (completed, cancelled, dead), kept per their queue''s retention; dead jobs until retried or deleted.';
COMMENT ON TABLE jobq.periodic IS
    'Periodic jobs (cron schedules); change them with jobq.schedule/unschedule, read them in jobq.schedules.';
COMMENT ON TABLE jobq.archive_tally IS
    'Counts of completed and cancelled jobs in jobq.archive finished before the mark, per queue, for jobq.queue_stats.';
COMMENT ON TABLE jobq.archive_tally_mark IS
    'The mark of jobq.archive_tally (at most one row; none: nothing tallied yet).';
COMMENT ON SEQUENCE jobq.job_id_seq IS 'Job ids, shared by jobq.job and jobq.archive.';
COMMENT ON SEQUENCE jobq.lease_token_seq IS 'Lease tokens handed out by jobq.claim; every settle call is fenced by one.';
COMMENT ON TABLE jobq._restore_session IS
    'Internal: the session restoring a dump that created jobq; the background worker waits until it and its helpers have gone.';

-- Views
COMMENT ON VIEW jobq.jobs IS
    'Every job still kept, live or finished, with its displayed state (available, scheduled, running, retryable, completed, cancelled, dead).';
COMMENT ON VIEW jobq.queues IS 'Queues and their options.';
COMMENT ON VIEW jobq.queue_stats IS
    'Per queue: live counts by state, finished jobs kept in history, age of the oldest due job, and the last five minutes of throughput.';
COMMENT ON VIEW jobq.schedules IS 'Periodic jobs: cron, time zone, queue, next and last run, last error.';
COMMENT ON VIEW jobq.worker IS 'This database''s background worker: running, status, counters (jobq.worker_status()).';

-- Queues
COMMENT ON FUNCTION jobq.create_queue(text, integer, interval, interval, double precision, interval,
                                      interval, integer, regprocedure, interval, boolean) IS
    'Creates a queue with its retry, lease, retention, concurrency and handler options (docs/api.md).';
COMMENT ON FUNCTION jobq.alter_queue(text, integer, interval, interval, double precision, interval,
                                     interval, integer, regprocedure, interval, boolean) IS
    'Changes the options given (NULL keeps one; concurrency => 0 removes the limit; drop_handler => true removes the handler).';
COMMENT ON FUNCTION jobq.drop_queue(text, boolean) IS
    'Drops a queue; refuses while it has unfinished jobs unless force => true, which drops its jobs and history too.';
COMMENT ON FUNCTION jobq.pause(text) IS 'Pauses a queue: nobody claims from it; enqueue still works.';
COMMENT ON FUNCTION jobq.resume(text) IS 'Resumes a paused queue and wakes its runners.';

-- Producers
COMMENT ON FUNCTION jobq.enqueue(text, jsonb, timestamptz, integer, integer, text, text, interval, interval) IS
    'Enqueues one job in the caller''s transaction and returns its id; unique_key deduplicates (modes keep, replace, debounce).';
COMMENT ON FUNCTION jobq.enqueue_many(text, jsonb[], timestamptz, integer, integer, text[]) IS
    'Enqueues a batch of payloads in one statement; returns their ids in payload order.';

-- Worker protocol
COMMENT ON FUNCTION jobq.claim(text[], text, integer, interval) IS
    'Claims up to max_jobs due jobs from the queues given, each with a lease token that every settle call must present.';
COMMENT ON FUNCTION jobq.complete(bigint[], bigint[], jsonb[]) IS
    'Completes jobs held under the given lease tokens; returns the ids completed (a stale token completes nothing).';
COMMENT ON FUNCTION jobq.fail(bigint, bigint, text, interval, boolean) IS
    'Fails one attempt: retryable after retry_in or the queue''s backoff, or dead; returns the new state, NULL if the token is stale.';
COMMENT ON FUNCTION jobq.fail_many(bigint[], bigint[], text[], interval[], boolean[]) IS
    'Fails a batch of attempts; returns (id, new state) for each job still held.';
COMMENT ON FUNCTION jobq.heartbeat(bigint[], bigint[], interval) IS
    'Extends the leases of running jobs; ids missing from the result are no longer held (cancelled or rescued).';
COMMENT ON FUNCTION jobq.snooze(bigint, bigint, interval) IS
    'Puts a running job back to wait for delay, giving back the attempt; true if applied.';
COMMENT ON FUNCTION jobq.set_progress(bigint, bigint, jsonb) IS 'Records a running job''s progress; true if applied.';
COMMENT ON FUNCTION jobq.release(bigint[], bigint[]) IS
    'Gives running jobs back unrun (e.g. at shutdown), attempts not counted; returns the ids released.';

-- Operations and monitoring
COMMENT ON FUNCTION jobq.job(bigint) IS 'One job, live or finished, as a row of jobq.jobs.';
COMMENT ON FUNCTION jobq.cancel(bigint) IS
    'Finishes a waiting or running job as cancelled; false if it had already finished.';
COMMENT ON FUNCTION jobq.retry(bigint) IS
    'Runs a dead or cancelled job again at once, attempts reset, error history kept.';
COMMENT ON FUNCTION jobq.backoff(integer, interval, interval, double precision) IS
    'The retry delay after an attempt: min(max, base * 2^(attempt-1)), shortened by up to jitter at random.';
COMMENT ON FUNCTION jobq.schedule(text, text, text, jsonb, text, integer, integer) IS
    'Creates or replaces a periodic job (cron expression in a time zone); returns its next run.';
COMMENT ON FUNCTION jobq.unschedule(text, boolean) IS 'Removes a periodic job; true if it existed.';
COMMENT ON FUNCTION jobq.worker_status() IS 'This database''s background worker: status and counters (see the view jobq.worker).';

-- Internal
COMMENT ON FUNCTION jobq._queue_changed() IS 'Internal: trigger that invalidates every session''s cached queue settings at commit.';
COMMENT ON FUNCTION jobq._job_row_valid(text, integer, integer, bigint, timestamptz) IS
    'Internal: the invariant of a live job, jobq.job''s CHECK constraint.';
COMMENT ON FUNCTION jobq._append_error(jsonb, integer, text) IS 'Internal: appends an attempt''s error to a job''s bounded error list.';
COMMENT ON FUNCTION jobq._check_queue_name(text) IS 'Internal: raises unless the text is a valid queue name.';
COMMENT ON FUNCTION jobq._check_interval(text, interval) IS
    'Internal: raises unless the interval is within the bounds of the named setting (docs/api.md).';
COMMENT ON FUNCTION jobq._check_queue(jobq.queue) IS 'Internal: raises unless every option of the queue row is valid.';
COMMENT ON FUNCTION jobq._queue_for_update(text) IS 'Internal: the queue row, locked, or an error naming the queue.';
COMMENT ON FUNCTION jobq._set_paused(text, boolean) IS 'Internal: body of pause and resume.';
COMMENT ON FUNCTION jobq._display_state(text, timestamptz) IS
    'Internal: a live job''s displayed state (scheduled until its run_at, then available).';
COMMENT ON FUNCTION jobq._note_wakeup(text, timestamptz) IS 'Internal: notes a wake-up for the queue at commit.';
COMMENT ON FUNCTION jobq._worker_poke() IS 'Internal: asks the launcher to start this database''s worker at commit.';
COMMENT ON FUNCTION jobq._check_handler(regprocedure) IS 'Internal: raises unless the function can be an in-database handler.';
COMMENT ON FUNCTION jobq._due_queues(timestamptz) IS 'Internal (worker): queues with jobs that came due since the given time.';
COMMENT ON FUNCTION jobq._next_due() IS 'Internal (worker): the earliest future run_at of a waiting job.';
COMMENT ON FUNCTION jobq._rescue(text, integer, text) IS
    'Internal (worker): returns jobs whose lease expired to retryable or dead, queue by queue; returns the number rescued.';
COMMENT ON FUNCTION jobq._prune(integer) IS
    'Internal (worker): deletes finished jobs past their queue''s retention, queue by queue; returns the number deleted.';
COMMENT ON FUNCTION jobq._check_cron(text) IS 'Internal: raises unless the text is a valid cron expression.';
COMMENT ON FUNCTION jobq._cron_next_local(text, timestamp) IS 'Internal: the next local time matching a cron expression.';
COMMENT ON FUNCTION jobq._cron_next(text, text, timestamptz) IS
    'Internal: the first tick of a cron expression in a time zone after a time, or NULL.';
COMMENT ON FUNCTION jobq._run_schedules() IS 'Internal (worker): enqueues every due tick of the periodic jobs.';
COMMENT ON FUNCTION jobq._created_by_restore() IS
    'Internal: whether this CREATE EXTENSION jobq runs as dump scripts run it (check_function_bodies = off).';
COMMENT ON FUNCTION jobq._tally_mark() IS 'Internal: the mark of jobq.archive_tally (-infinity before the first advance).';
COMMENT ON FUNCTION jobq._tally_forget(text, text, timestamptz, bigint) IS
    'Internal: takes deleted archive rows off jobq.archive_tally.';
COMMENT ON FUNCTION jobq._tally_advance() IS
    'Internal (worker): moves the mark of jobq.archive_tally forward, tallying the rows finished meanwhile.';
COMMENT ON FUNCTION jobq._tally_rebuild() IS
    'Counts jobq.archive_tally again from the whole archive, after finished jobs were deleted by hand.';

-- Jobs that pause and resume (60_resume.sql)
COMMENT ON COLUMN jobq.job.saved_state IS
    'State a running job saved to resume from (jobq.sleep, jobq.save_state); returned by jobq.claim';
COMMENT ON FUNCTION jobq._check_state_size(jsonb) IS
    'Raises program_limit_exceeded when saved state exceeds jobq.max_payload_size';
COMMENT ON FUNCTION jobq._require_arg(anyelement, text) IS
    'Raises null_value_not_allowed naming the argument when the value is NULL';
COMMENT ON FUNCTION jobq.save_state(bigint, bigint, jsonb) IS
    'Records the state a running job resumes from, fenced by its lease token';
COMMENT ON FUNCTION jobq.sleep(bigint, bigint, timestamptz, jsonb) IS
    'Takes a running job out of running until a time, attempt given back, state saved';
