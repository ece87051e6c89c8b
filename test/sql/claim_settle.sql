-- The worker protocol: claim order and limits, leases and tokens, settle
-- calls fenced by the token, retries with backoff, dead after max_attempts.
\set VERBOSITY terse
SELECT jobq.create_queue('work', max_attempts => 2, backoff_base => '1 hour',
                         backoff_max => '2 hours', backoff_jitter => 0, lease => '1 minute');
SELECT jobq.enqueue('work', '{"n": "low"}', priority => 5) AS low \gset
SELECT jobq.enqueue('work', '{"n": "high"}', priority => -5) AS high \gset
SELECT jobq.enqueue('work', '{"n": "mid"}') AS mid \gset
SELECT jobq.enqueue('work', '{"n": "future"}', run_at => now() + interval '1 day') AS future \gset

-- claim: priority first, never more than max_jobs, attempt counted, lease set
SELECT payload ->> 'n' AS n, attempt, lease_expires_at > now() + interval '59 seconds' AS leased
FROM jobq.claim('{work}', 'w1', 2) ORDER BY priority;
SELECT id, lease_token AS tok FROM jobq.jobs j JOIN jobq.job USING (id) WHERE id = :high \gset
-- the future job is not claimable; one due job is left
SELECT payload ->> 'n' AS n FROM jobq.claim('{work}', 'w2', 10, lease => '5 minutes');
SELECT count(*) AS nothing_left FROM jobq.claim('{work}', 'w3', 10);
SELECT state, worker FROM jobq.jobs WHERE id = :low;

-- complete with a stale token changes nothing; with the right one it applies
SELECT count(*) AS applied FROM jobq.complete(ARRAY[:high]::bigint[], ARRAY[:tok + 1000]::bigint[]);
SELECT state FROM jobq.jobs WHERE id = :high;
SELECT array_agg(c) = ARRAY[:high]::bigint[] AS applied
FROM jobq.complete(ARRAY[:high]::bigint[], ARRAY[:tok]::bigint[], ARRAY['{"ok": true}']::jsonb[]) c;
SELECT state, result, finished_at IS NOT NULL AS finished FROM jobq.jobs WHERE id = :high;
-- completing again is harmless and reports nothing applied
SELECT count(*) AS applied FROM jobq.complete(ARRAY[:high]::bigint[], ARRAY[:tok]::bigint[]);

-- heartbeat extends the lease; stale tokens and finished jobs are left out
SELECT lease_token AS mid_tok FROM jobq.job WHERE id = :mid \gset
SELECT id = :mid AS extended, lease_expires_at > now() + interval '9 minutes' AS long_lease
FROM jobq.heartbeat(ARRAY[:mid, :high]::bigint[], ARRAY[:mid_tok, :tok]::bigint[], '10 minutes');
SELECT count(*) AS stale FROM jobq.heartbeat(ARRAY[:mid]::bigint[], ARRAY[0]::bigint[]);

-- set_progress
SELECT jobq.set_progress(:mid, :mid_tok, '{"pct": 50}') AS applied;
SELECT jobq.set_progress(:mid, 0, '{"pct": 99}') AS applied;
SELECT progress FROM jobq.jobs WHERE id = :mid;

-- fail: retryable with backoff (1 hour at attempt 1, no jitter), error kept
SELECT jobq.fail(:mid, :mid_tok, 'smtp timeout') AS state;
SELECT state, attempt, run_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS backoff,
       errors -> 0 ->> 'error' AS error, (errors -> 0 ->> 'attempt')::int AS at_attempt
FROM jobq.jobs WHERE id = :mid;
SELECT jobq.fail(:mid, :mid_tok, 'again') IS NULL AS stale_fail_ignored;
-- explicit retry_in, then the last attempt fails: dead, errors kept
UPDATE jobq.job SET run_at = now() WHERE id = :mid;
SELECT attempt FROM jobq.claim('{work}', 'w1', 1);
SELECT lease_token AS mid_tok FROM jobq.job WHERE id = :mid \gset
SELECT jobq.fail(:mid, :mid_tok, 'still down', retry_in => '1 second') AS state;
SELECT state, attempt, jsonb_array_length(errors) AS errors, errors -> 1 ->> 'error' AS last_error
FROM jobq.jobs WHERE id = :mid;

-- discard goes straight to dead
SELECT lease_token AS low_tok FROM jobq.job WHERE id = :low \gset
SELECT jobq.fail(:low, :low_tok, 'bad payload', discard => true) AS state;
SELECT state, attempt FROM jobq.jobs WHERE id = :low;

-- fail_many and complete batch several jobs in one call
SELECT array_agg(id) AS batch FROM jobq.enqueue_many('work', ARRAY['{"b": 1}', '{"b": 2}', '{"b": 3}']::jsonb[]) id \gset
SELECT count(*) AS claimed FROM jobq.claim('{work}', 'w1', 3);
SELECT lease_token AS btok FROM jobq.job WHERE id = (:'batch'::bigint[])[1] \gset
SELECT state, count(*) FROM jobq.fail_many((:'batch'::bigint[])[1:2], ARRAY[:btok, :btok]::bigint[],
                                           ARRAY['e1', 'e2'], ARRAY['1 minute', NULL]::interval[],
                                           ARRAY[false, true]) GROUP BY state ORDER BY state;
SELECT payload ->> 'b' AS b, state FROM jobq.jobs WHERE id = ANY(:'batch'::bigint[]) ORDER BY id;

-- snooze gives the attempt back and waits
SELECT jobq.snooze((:'batch'::bigint[])[3], :btok, '1 hour') AS snoozed;
SELECT state, attempt FROM jobq.jobs WHERE id = (:'batch'::bigint[])[3];
SELECT jobq.snooze((:'batch'::bigint[])[3], :btok, '1 hour') AS snoozed_twice;

-- release hands running jobs back unstarted
SELECT jobq.enqueue('work', '{"r": 1}') AS r \gset
SELECT lease_token AS rtok FROM jobq.claim('{work}', 'w1', 1) \gset
SELECT array_agg(x) = ARRAY[:r]::bigint[] AS released FROM jobq.release(ARRAY[:r]::bigint[], ARRAY[:rtok]::bigint[]) x;
SELECT state, attempt FROM jobq.jobs WHERE id = :r;

-- paused queues are not claimed from; enqueue still works
SELECT jobq.pause('work');
SELECT jobq.enqueue('work', '{"while": "paused"}') > 0 AS enqueued;
SELECT count(*) AS claimed_while_paused FROM jobq.claim('{work}', 'w1', 10);
SELECT jobq.resume('work');
SELECT count(*) > 0 AS claimed_after_resume FROM jobq.claim('{work}', 'w1', 10);

-- a concurrency limit caps running jobs across claims
SELECT jobq.create_queue('limited', concurrency => 2);
SELECT count(*) FROM jobq.enqueue_many('limited', ARRAY['{}', '{}', '{}', '{}']::jsonb[]);
SELECT count(*) AS first FROM jobq.claim('{limited}', 'w1', 10);
SELECT count(*) AS second FROM jobq.claim('{limited}', 'w2', 10);
SELECT count(*) AS running FROM jobq.jobs WHERE queue = 'limited' AND state = 'running';

-- claim across queues
SELECT jobq.create_queue('a');
SELECT jobq.create_queue('b');
SELECT jobq.enqueue('a', '{}') > 0 AS a, jobq.enqueue('b', '{}') > 0 AS b;
SELECT queue, count(*) FROM jobq.claim('{a,b}', 'w1', 10) GROUP BY queue ORDER BY queue;

-- bad input
SELECT * FROM jobq.claim('{work}', 'w1', 0);
SELECT * FROM jobq.claim('{work}', 'w1', 10001);
SELECT * FROM jobq.claim('{work}', 'w1', NULL);
SELECT * FROM jobq.claim('{work}', 'w1', 1, lease => '-1 second');
SELECT * FROM jobq.claim('{work}', 'w1', 1, lease => '0 seconds');
SELECT * FROM jobq.claim('{}', 'w1', 1);
SELECT * FROM jobq.claim('{work}', NULL, 1);
SELECT * FROM jobq.claim('{work}', '', 1);
SELECT * FROM jobq.claim('{work}', repeat('w', 1000), 1);
SELECT * FROM jobq.claim(NULL, 'w1', 1);
SELECT * FROM jobq.claim('{nope}', 'w1', 1);
SELECT * FROM jobq.claim('{"Bad Name"}', 'w1', 1);
SELECT * FROM jobq.complete(ARRAY[1, 2]::bigint[], ARRAY[1]::bigint[]);
SELECT * FROM jobq.complete(ARRAY[1]::bigint[], ARRAY[1]::bigint[], ARRAY['{}', '{}']::jsonb[]);
SELECT * FROM jobq.complete(ARRAY[NULL]::bigint[], ARRAY[1]::bigint[]);
SELECT * FROM jobq.complete(NULL, ARRAY[1]::bigint[]);
SELECT jobq.fail(1, 1, 'x', retry_in => '-1 second');
SELECT * FROM jobq.fail_many(ARRAY[1]::bigint[], ARRAY[1]::bigint[], ARRAY['a', 'b']);
SELECT * FROM jobq.heartbeat(ARRAY[1]::bigint[], ARRAY[1]::bigint[], '-1 minute');
SELECT jobq.snooze(1, 1, '-1 minute');
SELECT jobq.snooze(1, 1, NULL);

-- The live-job invariant holds even for direct writes by a superuser
-- (jobq.job's CHECK constraint job_row_valid): each is refused and changes
-- nothing.
SELECT jobq.create_queue('invariant');
SELECT jobq.enqueue('invariant', '{"n": 1}') > 0 AS enqueued;
UPDATE jobq.job SET state = 'running' WHERE queue = 'invariant';
UPDATE jobq.job SET lease_token = 1, lease_expires_at = now() WHERE queue = 'invariant';
UPDATE jobq.job SET state = 'completed' WHERE queue = 'invariant';
UPDATE jobq.job SET attempt = max_attempts + 1 WHERE queue = 'invariant';
UPDATE jobq.job SET attempt = -1 WHERE queue = 'invariant';
UPDATE jobq.job SET max_attempts = 0 WHERE queue = 'invariant';
UPDATE jobq.job SET max_attempts = 1001 WHERE queue = 'invariant';
UPDATE jobq.job SET state = NULL WHERE queue = 'invariant';
SELECT state, attempt, max_attempts, lease_token IS NULL AS no_token
FROM jobq.job WHERE queue = 'invariant';
-- and a legal transition passes
UPDATE jobq.job SET state = 'running', attempt = 1, lease_token = 1,
                    lease_expires_at = now() + interval '1 minute'
WHERE queue = 'invariant';
SELECT state FROM jobq.job WHERE queue = 'invariant';

-- Claim plans are built once per backend (generic plans) from the
-- statistics of that moment. This session's date from the first claims
-- above, on a table of a few rows; with a backlog now, a claim must still
-- find its jobs through the indexes, never by reading the whole table.
SELECT jobq.create_queue('backlog');
SELECT count(*) AS enqueued FROM jobq.enqueue_many('backlog',
    (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 5000) g));
BEGIN;
SELECT seq_scan AS seq_before, idx_scan AS idx_before
FROM pg_stat_xact_user_tables WHERE relid = 'jobq.job'::regclass \gset
SELECT count(*) AS claimed FROM jobq.claim('{backlog}', 'w', 10);
SELECT count(*) AS claimed FROM jobq.claim('{backlog,invariant}', 'w', 10);
SELECT seq_scan - :seq_before AS whole_table_reads, idx_scan > :idx_before AS used_index
FROM pg_stat_xact_user_tables WHERE relid = 'jobq.job'::regclass;
COMMIT;

-- A one-queue claim updates jobq.job directly; with a trigger of the
-- user's on jobq.job it takes SQL, which fires it. Either way: the queue's
-- lease unless the call names one, the attempt counted, one token per call,
-- due jobs only, and nothing in a read-only transaction.
SELECT jobq.create_queue('direct', lease => '10 minutes');
SELECT count(*) AS enqueued FROM jobq.enqueue_many('direct',
    ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}', '{"n": 5}']::jsonb[]);
SELECT jobq.enqueue('direct', '{"n": "later"}', run_at => now() + interval '1 hour') > 0 AS later;
BEGIN READ ONLY;
SELECT count(*) FROM jobq.claim('{direct}', 'wd', 1);
ROLLBACK;
SELECT count(*) AS claimed, count(DISTINCT lease_token) AS tokens,
       bool_and(lease_expires_at = now() + interval '10 minutes') AS queue_lease,
       bool_and(attempt = 1) AS counted, min(payload ->> 'n') AS first
FROM jobq.claim('{direct}', 'wd', 2);
CREATE TABLE public.claim_seen (id bigint, old_state text, new_state text);
CREATE FUNCTION public.note_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.claim_seen VALUES (NEW.id, OLD.state, NEW.state);
    RETURN NEW;
END $$;
CREATE TRIGGER note_claim BEFORE UPDATE ON jobq.job
    FOR EACH ROW EXECUTE FUNCTION public.note_claim();
SELECT count(*) AS claimed, count(DISTINCT lease_token) AS tokens,
       bool_and(lease_expires_at = now() + interval '30 seconds') AS given_lease,
       bool_and(attempt = 1) AS counted
FROM jobq.claim('{direct}', 'wd', 10, lease => '30 seconds');
SELECT old_state, new_state, count(*) AS fired FROM public.claim_seen GROUP BY 1, 2;
DROP TRIGGER note_claim ON jobq.job;
DROP FUNCTION public.note_claim();
DROP TABLE public.claim_seen;
SELECT state, worker, count(*) FROM jobq.job WHERE queue = 'direct' GROUP BY 1, 2 ORDER BY 1;

-- complete moves jobs to the archive directly; with a trigger of the
-- user's on jobq.archive it takes SQL, which fires it. Either way every
-- column is kept, the result (NULL too) stored, an id named twice or not
-- held is completed once or not at all, and nothing in a read-only
-- transaction.
SELECT id AS c1, lease_token AS ct1 FROM jobq.job
WHERE queue = 'direct' AND state = 'running' ORDER BY id LIMIT 1 \gset
SELECT id AS c2, lease_token AS ct2 FROM jobq.job
WHERE queue = 'direct' AND state = 'running' ORDER BY id OFFSET 1 LIMIT 1 \gset
CREATE TEMP TABLE direct_before AS SELECT * FROM jobq.job WHERE id IN (:c1, :c2);
BEGIN READ ONLY;
SELECT count(*) FROM jobq.complete(ARRAY[:c1]::bigint[], ARRAY[:ct1]::bigint[]);
ROLLBACK;
SELECT array_agg(c ORDER BY c) = ARRAY[:c1, :c2]::bigint[] AS completed_once
FROM jobq.complete(ARRAY[:c1, :c2, :c1, -1]::bigint[], ARRAY[:ct1, :ct2, :ct1, 0]::bigint[],
                   ARRAY['{"r": 1}', NULL, '{"r": 1}', NULL]::jsonb[]) c;
SELECT a.id = :c1 AS first, a.state, a.result,
       a.queue = b.queue AND a.payload = b.payload AND a.priority = b.priority
       AND a.run_at = b.run_at AND a.attempt = b.attempt AND a.max_attempts = b.max_attempts
       AND a.unique_key IS NOT DISTINCT FROM b.unique_key AND a.worker = b.worker
       AND a.progress IS NOT DISTINCT FROM b.progress AND a.errors IS NOT DISTINCT FROM b.errors
       AND a.created_at = b.created_at AND a.attempted_at = b.attempted_at AS kept,
       a.finished_at BETWEEN b.attempted_at AND now() AS finished_at_completion
FROM jobq.archive a JOIN direct_before b USING (id) ORDER BY a.id;
SELECT count(*) AS left_in_hot_table FROM jobq.job WHERE id IN (:c1, :c2);
CREATE TABLE public.archive_seen (id bigint, state text);
CREATE FUNCTION public.note_archive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.archive_seen VALUES (NEW.id, NEW.state);
    RETURN NEW;
END $$;
CREATE TRIGGER note_archive BEFORE INSERT ON jobq.archive
    FOR EACH ROW EXECUTE FUNCTION public.note_archive();
SELECT count(*) AS completed FROM jobq.complete(
    (SELECT array_agg(id ORDER BY id) FROM jobq.job WHERE queue = 'direct' AND state = 'running'),
    (SELECT array_agg(lease_token ORDER BY id) FROM jobq.job
     WHERE queue = 'direct' AND state = 'running'));
SELECT state, count(*) AS fired FROM public.archive_seen GROUP BY 1;
DROP TRIGGER note_archive ON jobq.archive;
DROP FUNCTION public.note_archive();
DROP TABLE public.archive_seen;
SELECT state, count(*) FROM jobq.jobs WHERE queue = 'direct' GROUP BY 1 ORDER BY 1;
-- a NOT NULL added to the archive is enforced, not bypassed
BEGIN;
DELETE FROM jobq.archive;
ALTER TABLE jobq.archive ALTER COLUMN result SET NOT NULL;
SELECT jobq.enqueue('direct', '{"n": "needs a result"}') AS nn \gset
SELECT lease_token AS nnt FROM jobq.claim('{direct}', 'wd', 1) \gset
SELECT count(*) FROM jobq.complete(ARRAY[:nn]::bigint[], ARRAY[:nnt]::bigint[]);
ROLLBACK;
-- complete of nearby ids walks their key range once instead of looking
-- each up: the same outcome. Only the caller's held jobs complete (not
-- another runner's, not a waiting job), a repeated id once, each with its
-- own entry's result, and the ids come back in the caller's order.
SELECT jobq.create_queue('dense');
SELECT count(*) FROM jobq.enqueue_many('dense',
    (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 20) g));
CREATE TEMP TABLE dense_a AS SELECT id, lease_token FROM jobq.claim('{dense}', 'wa', 12);
CREATE TEMP TABLE dense_b AS SELECT id, lease_token FROM jobq.claim('{dense}', 'wb', 4);
SELECT min(id) AS a1, min(lease_token) AS ta FROM dense_a \gset
SELECT min(id) AS b1 FROM dense_b \gset
SELECT max(id) AS w1 FROM jobq.job WHERE queue = 'dense' AND state <> 'running' \gset
CREATE TEMP TABLE dense_args AS
SELECT ARRAY[:a1, :b1, :w1] || array_agg(id ORDER BY id DESC) AS ids,
       ARRAY[:ta + 1, :ta, :ta] || array_agg(lease_token ORDER BY id DESC) AS tokens,
       ARRAY['{"wrong": true}', NULL, NULL]::jsonb[]
           || array_agg(jsonb_build_object('id', id) ORDER BY id DESC) AS results
FROM dense_a;
SELECT array_agg(c) = (SELECT array_agg(id ORDER BY id DESC) FROM dense_a) AS callers_order
FROM dense_args, jobq.complete(ids, tokens, results) c;
SELECT count(*) AS archived, count(*) FILTER (WHERE result = jsonb_build_object('id', id)) AS own_result
FROM jobq.archive WHERE queue = 'dense';
SELECT state, worker, count(*) FROM jobq.job WHERE queue = 'dense' GROUP BY 1, 2 ORDER BY 1, 2;
