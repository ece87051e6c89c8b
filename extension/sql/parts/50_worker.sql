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

GRANT EXECUTE ON FUNCTION jobq._note_wakeup(text, timestamptz) TO jobq_admin;
GRANT EXECUTE ON FUNCTION jobq._check_handler(regprocedure) TO jobq_admin;

-- Last statement of the worker's part: start this database's worker.
SELECT jobq._worker_poke();
