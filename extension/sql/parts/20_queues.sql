-- Queue management. SECURITY INVOKER on purpose: these run with the
-- caller's own rights (jobq_admin has the table privileges they need), so
-- a queue's owner is the role that really created it.

CREATE FUNCTION jobq._check_queue(q jobq.queue)
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

-- The queue row, locked, or an error naming the queue.
CREATE FUNCTION jobq._queue_for_update(queue_name text)
RETURNS jobq.queue LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q jobq.queue;
BEGIN
    PERFORM jobq._check_queue_name(queue_name);
    SELECT * INTO q FROM jobq.queue WHERE name = queue_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN q;
END
$$;

CREATE FUNCTION jobq.create_queue(
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
CREATE FUNCTION jobq.alter_queue(
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

-- Refuses while the queue has unfinished jobs unless force => true; then
-- its live jobs, its kept history and the queue go together.
CREATE FUNCTION jobq.drop_queue(name text, force boolean DEFAULT false)
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

-- pause/resume: a paused queue is claimed from by nobody; enqueue still works.
CREATE FUNCTION jobq._set_paused(queue_name text, pause boolean)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q jobq.queue;
BEGIN
    q := jobq._queue_for_update(queue_name);
    UPDATE jobq.queue t SET paused = pause WHERE t.name = q.name;
    IF NOT pause THEN
        PERFORM jobq._note_wakeup(q.name, now());
    END IF;
END
$$;

CREATE FUNCTION jobq.pause(name text)
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobq._set_paused(name, true) $$;

CREATE FUNCTION jobq.resume(name text)
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobq._set_paused(name, false) $$;
