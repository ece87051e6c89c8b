-- Operations on single jobs and the read-side views.
--
-- Displayed states: a waiting job shows 'scheduled' while its run_at is in
-- the future and 'available' once due; 'retryable' marks a job waiting to
-- run again after a failure.

CREATE FUNCTION jobq._display_state(state text, run_at timestamptz)
RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN state IN ('available', 'scheduled') AND run_at > now() THEN 'scheduled'
        WHEN state IN ('available', 'scheduled') THEN 'available'
        ELSE state END
$$;

CREATE VIEW jobq.jobs AS
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

-- The archive tally's mark (see jobq.archive_tally): archive rows finished
-- before it are counted there, rows finished since are counted from the
-- archive.
CREATE FUNCTION jobq._tally_mark()
RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT m.counted_until FROM jobq.archive_tally_mark m), '-infinity')
$$;

CREATE VIEW jobq.queues AS
    SELECT name, paused, max_attempts, backoff_base, backoff_max, backoff_jitter, lease,
           retention, concurrency, handler, handler_timeout, owner, created_at
    FROM jobq.queue;

-- Per queue: live counts by displayed state, the age of the oldest due job,
-- and the last five minutes of finished work from the archive's
-- (queue, finished_at) index. Finished totals are over what retention
-- keeps, at the cost of the recent window rather than the whole archive:
-- completed and cancelled jobs from the archive tally (00_schema.sql) plus
-- the rows finished since its mark, dead jobs from their partial index.
CREATE VIEW jobq.queue_stats AS
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

-- job(id): one job, live or finished.
CREATE FUNCTION jobq.job(id bigint)
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

-- cancel(id): a waiting or running job is finished as 'cancelled'. A
-- running job's runner is told at commit by a notification on channel
-- jobq_cancel (payload: the job id), and learns it at its next heartbeat
-- if it missed that; its late settle is refused. Returns false if the job
-- had already finished.
CREATE FUNCTION jobq.cancel(id bigint)
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

-- retry(id): a dead or cancelled job runs again, at once, with its attempts
-- reset and its error history kept.
CREATE FUNCTION jobq.retry(id bigint)
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
