-- Jobs that pause and resume: a running job may save state to resume
-- from (save_state) and step out of running until a time (sleep) without
-- using up an attempt; the next claim hands back its progress and saved
-- state (jobq.claim's last two columns).
--
-- Vocabulary: *saved state* is jobq.job.saved_state, JSON the job's own
-- code defines; it survives sleeps, retries and lease rescues, and is
-- dropped when the job finishes. Like every settle call, both functions
-- are fenced by the claim's lease token: with a stale token (the job was
-- rescued, re-claimed, cancelled or settled elsewhere) they change nothing
-- and return false.

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

REVOKE ALL ON FUNCTION jobq._check_state_size(jsonb), jobq._require_arg(anyelement, text),
    jobq.save_state(bigint, bigint, jsonb), jobq.sleep(bigint, bigint, timestamptz, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq.save_state(bigint, bigint, jsonb),
    jobq.sleep(bigint, bigint, timestamptz, jsonb)
TO jobq_worker;
GRANT EXECUTE ON FUNCTION jobq._check_state_size(jsonb), jobq._require_arg(anyelement, text)
TO jobq_admin;
