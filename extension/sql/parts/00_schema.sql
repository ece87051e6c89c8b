-- jobq schema: the tables every other part builds on.
--
-- Layout (why): live jobs (waiting or running) sit in the small "hot" table
-- jobq.job; a job that finishes (completed, cancelled, dead) is moved to
-- jobq.archive in the same statement that settles it. Claims therefore scan
-- only live rows, unique keys deduplicate exactly the unfinished jobs (the
-- unique index lives on the hot table), and retention pruning never touches
-- the hot table.

\echo Use "CREATE EXTENSION jobq" to load this file. \quit

CREATE TABLE jobq.queue (
    name            text PRIMARY KEY,
    max_attempts    integer NOT NULL DEFAULT 25,
    backoff_base    interval NOT NULL DEFAULT '1 second',
    backoff_max     interval NOT NULL DEFAULT '1 hour',
    backoff_jitter  double precision NOT NULL DEFAULT 0.1,
    lease           interval NOT NULL DEFAULT '5 minutes',
    retention       interval NOT NULL DEFAULT '7 days',
    concurrency     integer,
    -- The in-database handler's signature, schema-qualified
    -- ('app.apply_credit(jsonb)'), resolved when its jobs run. Text, not
    -- regprocedure: pg_upgrade refuses reg* columns (OIDs change), and a
    -- dump restores the name, not a stale OID.
    handler         text,
    handler_timeout interval,
    paused          boolean NOT NULL DEFAULT false,
    owner           name NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queue_name_valid CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,47}$'),
    CONSTRAINT queue_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 1000),
    CONSTRAINT queue_backoff_base_positive CHECK (backoff_base > interval '0'),
    CONSTRAINT queue_backoff_max_ge_base CHECK (backoff_max >= backoff_base),
    CONSTRAINT queue_backoff_jitter_range CHECK (backoff_jitter >= 0 AND backoff_jitter <= 1),
    CONSTRAINT queue_lease_positive CHECK (lease > interval '0'),
    CONSTRAINT queue_retention_nonnegative CHECK (retention >= interval '0'),
    CONSTRAINT queue_concurrency_positive CHECK (concurrency IS NULL OR concurrency > 0),
    CONSTRAINT queue_handler_timeout_positive CHECK (handler_timeout IS NULL OR handler_timeout > interval '0')
);

-- enqueue caches each queue's defaults per backend
-- (extension/src/store/queue_cache.cpp, extension/src/sql_api/queue_changed.cpp); any change to jobq.queue
-- invalidates those caches when it commits.
CREATE FUNCTION jobq._queue_changed() RETURNS trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'jobq_queue_changed';
CREATE TRIGGER queue_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jobq.queue
    FOR EACH STATEMENT EXECUTE FUNCTION jobq._queue_changed();

CREATE SEQUENCE jobq.job_id_seq AS bigint;
CREATE SEQUENCE jobq.lease_token_seq AS bigint;

-- The invariant of a live job (core/validate.h IsValidLiveJobRow): state
-- is available, scheduled, retryable or running; a lease (token and
-- expiry) exactly when running; 0 <= attempt <= max_attempts; max_attempts
-- between 1 and 1000.
CREATE FUNCTION jobq._job_row_valid(state text, attempt integer, max_attempts integer,
                                    lease_token bigint, lease_expires_at timestamptz)
RETURNS boolean LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'jobq_job_row_valid';

-- Live jobs. state 'scheduled' means run_at was in the future at enqueue;
-- claim takes any non-running job whose run_at has passed.
CREATE TABLE jobq.job (
    id               bigint PRIMARY KEY DEFAULT nextval('jobq.job_id_seq'),
    queue            text NOT NULL,
    state            text NOT NULL,
    payload          jsonb NOT NULL,
    priority         smallint NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    unique_key       text,
    lease_token      bigint,
    lease_expires_at timestamptz,
    worker           text,
    progress         jsonb,
    errors           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempted_at     timestamptz,
    -- What a running job saved to resume from (jobq.sleep, jobq.save_state);
    -- claim hands it back. Kept across retries, dropped when the job finishes.
    saved_state      jsonb,
    -- One C predicate instead of four SQL constraints: the executor parses
    -- constraint expressions again for every statement, and for a
    -- single-row enqueue that parse was a third of its CPU.
    CONSTRAINT job_row_valid
        CHECK (jobq._job_row_valid(state, attempt, max_attempts, lease_token, lease_expires_at))
) WITH (fillfactor = 90,
        autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05,
        autovacuum_analyze_scale_factor = 0.02,
        autovacuum_vacuum_cost_delay = 0);
ALTER SEQUENCE jobq.job_id_seq OWNED BY jobq.job.id;

-- Claim order: priority, run_at, id within a queue, over waiting jobs only.
CREATE INDEX job_claim_idx ON jobq.job (queue, priority, run_at, id) WHERE state <> 'running';
-- Lease rescue scans only running jobs.
CREATE INDEX job_lease_idx ON jobq.job (lease_expires_at) WHERE state = 'running';
-- Unique keys deduplicate while the job is unfinished (it is in this table).
CREATE UNIQUE INDEX job_unique_idx ON jobq.job (queue, unique_key) WHERE unique_key IS NOT NULL;

-- Finished jobs, kept per their queue's retention (dead jobs until an
-- operator retries or deletes them).
CREATE TABLE jobq.archive (
    id               bigint PRIMARY KEY,
    queue            text NOT NULL,
    state            text NOT NULL,
    payload          jsonb NOT NULL,
    priority         smallint NOT NULL,
    run_at           timestamptz NOT NULL,
    attempt          integer NOT NULL,
    max_attempts     integer NOT NULL,
    unique_key       text,
    worker           text,
    progress         jsonb,
    errors           jsonb,
    result           jsonb,
    created_at       timestamptz NOT NULL,
    attempted_at     timestamptz,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT archive_state_finished CHECK (state IN ('completed', 'cancelled', 'dead'))
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05,
        autovacuum_vacuum_cost_delay = 0);

CREATE INDEX archive_queue_finished_idx ON jobq.archive (queue, finished_at);
-- enqueue(..., unique_window): the latest completion of a key.
CREATE INDEX archive_unique_idx ON jobq.archive (queue, unique_key, finished_at)
    WHERE unique_key IS NOT NULL;

-- Dead jobs wait for an operator; jobq.queue_stats counts them per queue
-- from this index, at the cost of the dead jobs alone.
CREATE INDEX archive_dead_idx ON jobq.archive (queue) WHERE state = 'dead';

-- Counts of the completed and cancelled jobs kept in jobq.archive, so that
-- jobq.queue_stats need not read the whole archive: `jobs` archive rows of
-- (queue, state) finished before jobq.archive_tally_mark.counted_until.
-- Rows finished since then are counted from the archive's (queue,
-- finished_at) index when the view is read. The worker advances the mark
-- each retention turn (jobq._tally_advance), and every jobq function that
-- deletes such rows (retention, retry, drop_queue) takes them off here.
-- Deleting completed or cancelled jobs by hand leaves the counts high until
-- jobq._tally_rebuild() is run.
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

SELECT pg_catalog.pg_extension_config_dump('jobq.queue', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.archive_tally', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.archive_tally_mark', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.job', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.archive', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jobq.lease_token_seq', '');
