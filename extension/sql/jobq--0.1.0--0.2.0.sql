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
    IF q.backoff_base IS NULL OR q.backoff_base <= interval '0' THEN
        RAISE EXCEPTION 'backoff_base must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.backoff_max IS NULL OR q.backoff_max < q.backoff_base THEN
        RAISE EXCEPTION 'backoff_max must be at least backoff_base' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.backoff_jitter IS NULL OR q.backoff_jitter < 0 OR q.backoff_jitter > 1 THEN
        RAISE EXCEPTION 'backoff_jitter must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.lease IS NULL OR q.lease <= interval '0' THEN
        RAISE EXCEPTION 'lease must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.retention IS NULL OR q.retention < interval '0' THEN
        RAISE EXCEPTION 'retention must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.concurrency IS NOT NULL AND q.concurrency <= 0 THEN
        RAISE EXCEPTION 'concurrency must be positive'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use NULL for no limit.';
    END IF;
    IF q.handler_timeout IS NOT NULL AND q.handler_timeout <= interval '0' THEN
        RAISE EXCEPTION 'handler_timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
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
