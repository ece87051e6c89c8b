-- Restore guard (extension/src/worker/restore_guard.h): when a dump is
-- restored, CREATE EXTENSION jobq runs first and the dump's rows, and the
-- setval of its sequences, come after. The background worker must not act
-- on the half-restored tables (a restored schedule would enqueue jobs with
-- ids the restore brings in again), so the session that creates the
-- extension the way dump scripts do (check_function_bodies = off) is
-- recorded here, and the worker waits until it and its helpers
-- (pg_restore -j's workers) have disconnected. Not dumped (no
-- pg_extension_config_dump): a restored database records its own restore.

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

INSERT INTO jobq._restore_session (pid, backend_start, application_name)
SELECT a.pid, a.backend_start, coalesce(a.application_name, '')
FROM pg_catalog.pg_stat_activity a
WHERE a.pid = pg_catalog.pg_backend_pid() AND jobq._created_by_restore();
