-- The background worker's SQL: wake-ups, handler checks, lease rescue,
-- retention, periodic jobs, and the worker's status. The worker calls the
-- maintenance functions here through SPI, one short transaction each; they
-- are plain SQL so an operator can run them by hand too.

-- Notes a wake-up for `queue` at commit (see extension/src/worker/wakeup.h).
-- Used by PL/pgSQL paths that make a job due (retry, resume).
CREATE FUNCTION jobq._note_wakeup(queue text, run_at timestamptz DEFAULT now())
RETURNS void LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_note_wakeup_sql';

-- At commit, asks the launcher to start this database's worker now.
CREATE FUNCTION jobq._worker_poke()
RETURNS void LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_worker_poke';

-- In-database handlers: a function fn(jsonb) the queue's owner may execute.
-- Its jsonb result (if it returns jsonb) becomes the job's result.
CREATE FUNCTION jobq._check_handler(handler regprocedure)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    IF handler IS NULL THEN
        RETURN;
    END IF;
    SELECT pr.prokind, pr.proretset, pr.pronargs, pr.proargtypes INTO p
    FROM pg_catalog.pg_proc pr WHERE pr.oid = handler;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'handler function with OID % does not exist', handler::oid
            USING ERRCODE = 'undefined_function';
    END IF;
    IF p.prokind <> 'f' THEN
        RAISE EXCEPTION 'handler % is not a plain function', handler
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Procedures, aggregates and window functions cannot be handlers.';
    END IF;
    IF p.pronargs <> 1 OR p.proargtypes[0] <> 'jsonb'::regtype THEN
        RAISE EXCEPTION 'handler % must take exactly one argument of type jsonb', handler
            USING ERRCODE = 'invalid_function_definition',
                  HINT = 'Declare it as fn(payload jsonb).';
    END IF;
    IF p.proretset THEN
        RAISE EXCEPTION 'handler % must not return a set', handler
            USING ERRCODE = 'invalid_function_definition';
    END IF;
    IF NOT pg_catalog.has_function_privilege(current_user, handler, 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied for handler %', handler
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The handler runs as the queue''s owner, who needs EXECUTE on it.';
    END IF;
END
$$;

-- Jobs waiting for a future run_at (scheduled, snoozed, retrying): the
-- worker finds what comes due next without scanning the queue. Immediate
-- enqueues ('available') are not in this index, so the hot path pays nothing.
CREATE INDEX job_due_idx ON jobq.job (run_at) WHERE state IN ('scheduled', 'retryable');

-- Queues with jobs that came due in (since, now()], for the worker's
-- wake-up tick; or, with since NULL, every unpaused queue that has a due
-- job (startup reconciliation and wake-up overflow).
CREATE FUNCTION jobq._due_queues(since timestamptz)
RETURNS SETOF text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT j.queue FROM jobq.job j
    WHERE since IS NOT NULL AND j.state IN ('scheduled', 'retryable')
      AND j.run_at > since AND j.run_at <= now()
    UNION
    SELECT q.name FROM jobq.queue q
    WHERE since IS NULL AND NOT q.paused
      AND EXISTS (SELECT 1 FROM jobq.job j
                  WHERE j.queue = q.name AND j.state <> 'running' AND j.run_at <= now())
$$;

-- The earliest run_at still in the future, or NULL.
CREATE FUNCTION jobq._next_due()
RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.run_at FROM jobq.job j
    WHERE j.state IN ('scheduled', 'retryable') AND j.run_at > now()
    ORDER BY j.run_at LIMIT 1
$$;

-- The archive tally (jobq.archive_tally, read by jobq.queue_stats; its
-- mark is jobq._tally_mark() in 40_operations.sql) ------------------------

-- Takes `jobs` deleted archive rows of (queue, state) finished at
-- `finished_at` off the tally; call it after the DELETE, in the same
-- transaction. The lock orders it with _tally_advance: either the advance
-- counted before the delete committed (and the new mark is read here), or
-- it starts after this transaction commits and never sees the rows.
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

-- Moves the mark forward, adding the archive rows finished between the old
-- and the new mark to the tally (queue by queue, through the archive's
-- (queue, finished_at) index). The new mark is older than every open
-- transaction (a transaction's archive rows carry its start time as
-- finished_at, so none it may still commit can fall behind the mark), and
-- a minute older than now (the start time of a transaction that has just
-- begun may not be visible in pg_stat_activity yet). It does not move
-- while a prepared transaction is pending (its start time is not known),
-- or for a caller who cannot see every session's transaction start.
-- Returns the mark.
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

-- Counts the tally again from the whole archive: after completed or
-- cancelled jobs were deleted from jobq.archive by hand. Returns the mark.
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

-- Lease rescue. Running jobs whose lease expired (or, with held_by, every
-- running job claimed under that worker name: a handler worker that
-- restarted holds nothing) go back to 'retryable' with the queue's backoff,
-- or to the archive as 'dead' when the attempt counted at claim was the
-- last. Fenced like every settle call: the rows are locked with SKIP LOCKED
-- (a job being settled right now is left alone), and both writes require
-- the lease token read under that lock, so a job completed, cancelled or
-- re-claimed meanwhile is never touched. Queue by queue, each in its own
-- subtransaction: one queue whose rescue fails (say, settings edited past
-- their bounds behind alter_queue's back) gets a warning each turn and
-- never holds up another queue's. Returns the number rescued.
CREATE FUNCTION jobq._rescue(rescuer text, max_jobs integer DEFAULT 1000,
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

-- Retention: deletes up to max_jobs finished jobs (completed or cancelled)
-- older than their queue's retention, oldest first, through the archive's
-- (queue, finished_at) index. Dead jobs stay until an operator retries or
-- deletes them. Returns the number deleted; the worker calls it again while
-- it returns a full batch, one short transaction each. Queue by queue,
-- each in its own subtransaction: a queue whose pruning fails gets a
-- warning and never stops another queue's retention. Each turn first
-- advances the archive tally of jobq.queue_stats, and takes what it
-- deletes off the tally.
CREATE FUNCTION jobq._prune(max_jobs integer DEFAULT 1000)
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

-- Periodic jobs -----------------------------------------------------------
--
-- A schedule enqueues one job per tick of its cron expression, evaluated in
-- its time zone. Exactly once per tick: the enqueue and the advance of
-- next_tick commit in the same transaction, so a crash or restart either
-- did both or neither. Missed ticks (server down, worker stopped) are
-- coalesced: one job for the first missed tick, then the schedule resumes
-- at the next tick after now. Each job carries the unique key
-- "jobq.schedule:<name>:<tick in UTC>".

CREATE FUNCTION jobq._check_cron(cron text)
RETURNS void LANGUAGE C IMMUTABLE
AS 'MODULE_PATHNAME', 'jobq_check_cron';

CREATE FUNCTION jobq._cron_next_local(cron text, after timestamp)
RETURNS timestamp LANGUAGE C IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'jobq_cron_next_local';

-- The first tick strictly after `after`, or NULL if the expression never
-- fires. Wall-clock semantics across daylight-saving changes: a local time
-- skipped by a spring-forward runs at the jump, a repeated hour runs once.
CREATE FUNCTION jobq._cron_next(cron text, timezone text, after timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    local_time timestamp := after AT TIME ZONE timezone;
    result timestamptz;
BEGIN
    FOR i IN 1..1000 LOOP
        local_time := jobq._cron_next_local(cron, local_time);
        IF local_time IS NULL THEN
            RETURN NULL;
        END IF;
        result := local_time AT TIME ZONE timezone;
        IF result > after THEN
            RETURN result;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TABLE jobq.periodic (
    name         text PRIMARY KEY,
    cron         text NOT NULL,
    queue        text NOT NULL REFERENCES jobq.queue (name) ON DELETE CASCADE,
    payload      jsonb NOT NULL DEFAULT '{}',
    timezone     text NOT NULL DEFAULT 'UTC',
    priority     integer NOT NULL DEFAULT 0,
    max_attempts integer,
    next_tick    timestamptz NOT NULL,
    last_tick    timestamptz,
    last_run_at  timestamptz,
    last_job_id  bigint,
    last_error   text,
    owner        name NOT NULL DEFAULT current_user,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT periodic_name_valid CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$')
);
CREATE INDEX periodic_next_tick_idx ON jobq.periodic (next_tick);
SELECT pg_catalog.pg_extension_config_dump('jobq.periodic', '');

-- schedule(name, cron, queue, ...) creates or replaces a periodic job and
-- returns its next run. Replacing restarts the schedule from now().
CREATE FUNCTION jobq.schedule(
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

CREATE FUNCTION jobq.unschedule(name text, if_exists boolean DEFAULT false)
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

CREATE VIEW jobq.schedules AS
    SELECT p.name, p.cron, p.timezone, p.queue, p.payload, p.priority, p.max_attempts,
           p.next_tick AS next_run, p.last_tick, p.last_run_at AS last_run, p.last_job_id,
           p.last_error, p.owner, p.created_at
    FROM jobq.periodic p;

-- Called by the worker: enqueues every due tick, each schedule in its own
-- subtransaction (one failing schedule records last_error and skips its
-- tick without holding up the others). Returns how many jobs were enqueued
-- and when the next tick of any schedule is.
CREATE FUNCTION jobq._run_schedules(OUT enqueued integer, OUT next_tick timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    nxt timestamptz;
    job_id bigint;
    err text;
BEGIN
    enqueued := 0;
    FOR s IN SELECT * FROM jobq.periodic p WHERE p.next_tick <= now()
             ORDER BY p.next_tick FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            nxt := jobq._cron_next(s.cron, s.timezone, s.next_tick);
            IF nxt IS NOT NULL AND nxt <= now() THEN
                -- Missed ticks: coalesced into this one run.
                nxt := jobq._cron_next(s.cron, s.timezone, now());
            END IF;
            job_id := jobq.enqueue(s.queue, s.payload, priority => s.priority,
                                   max_attempts => s.max_attempts,
                                   unique_key => pg_catalog.format('jobq.schedule:%s:%s', s.name,
                                       pg_catalog.to_char(s.next_tick AT TIME ZONE 'UTC',
                                                          'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
            UPDATE jobq.periodic p
            SET last_tick = s.next_tick, last_run_at = now(), last_job_id = job_id,
                last_error = NULL, next_tick = coalesce(nxt, 'infinity')
            WHERE p.name = s.name;
            enqueued := enqueued + 1;
        EXCEPTION WHEN OTHERS THEN
            err := SQLERRM;
            RAISE WARNING 'jobq: periodic job "%" could not enqueue its tick at %: %',
                s.name, s.next_tick, err;
            BEGIN
                nxt := coalesce(jobq._cron_next(s.cron, s.timezone, now()), 'infinity');
            EXCEPTION WHEN OTHERS THEN
                -- The schedule itself is broken (e.g. edited behind
                -- jobq.schedule()'s back): park it until it is replaced.
                nxt := 'infinity';
            END;
            UPDATE jobq.periodic p SET last_error = err, next_tick = nxt WHERE p.name = s.name;
        END;
    END LOOP;
    SELECT min(p.next_tick) INTO next_tick FROM jobq.periodic p;
END
$$;

-- Worker status ----------------------------------------------------------

CREATE FUNCTION jobq.worker_status(
    OUT running boolean, OUT status text, OUT pid integer, OUT launcher_pid integer,
    OUT started_at timestamptz, OUT last_tick timestamptz, OUT handler_workers integer,
    OUT wakeups_sent bigint, OUT jobs_rescued bigint, OUT jobs_pruned bigint,
    OUT periodic_enqueued bigint, OUT handler_completed bigint, OUT handler_failed bigint,
    OUT step_errors bigint, OUT rescue_interval_ms bigint)
RETURNS record LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'jobq_worker_status';

CREATE VIEW jobq.worker AS SELECT * FROM jobq.worker_status();

GRANT EXECUTE ON FUNCTION jobq._note_wakeup(text, timestamptz) TO jobq_admin;
GRANT EXECUTE ON FUNCTION jobq._check_handler(regprocedure) TO jobq_admin;
GRANT EXECUTE ON FUNCTION jobq._rescue(text, integer, text), jobq._prune(integer) TO jobq_admin;
GRANT EXECUTE ON FUNCTION jobq._tally_forget(text, text, timestamptz, bigint),
    jobq._tally_advance(), jobq._tally_rebuild()
TO jobq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobq.archive_tally, jobq.archive_tally_mark TO jobq_admin;
GRANT EXECUTE ON FUNCTION
    jobq.schedule(text, text, text, jsonb, text, integer, integer),
    jobq.unschedule(text, boolean),
    jobq._check_cron(text),
    jobq._cron_next_local(text, timestamp),
    jobq._cron_next(text, text, timestamptz)
TO jobq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobq.periodic TO jobq_admin;
GRANT SELECT ON jobq.schedules, jobq.worker TO jobq_monitor;
GRANT EXECUTE ON FUNCTION jobq.worker_status() TO jobq_monitor;
GRANT EXECUTE ON FUNCTION jobq._cron_next(text, text, timestamptz), jobq._cron_next_local(text, timestamp)
TO jobq_monitor;

-- Last statement of the worker's part: start this database's worker.
SELECT jobq._worker_poke();
