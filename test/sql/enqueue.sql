-- Enqueue: single and bulk, scheduling, priorities, unique keys, and every
-- bad input (each leaves nothing behind).
\set VERBOSITY terse
SELECT jobq.create_queue('mail', max_attempts => 5);

SELECT jobq.enqueue('mail', '{"to": "a@example.com"}') AS first_id \gset
SELECT queue, state, attempt, max_attempts, priority, payload, finished_at IS NULL AS live
FROM jobq.jobs WHERE id = :first_id;

-- explicit options
SELECT jobq.enqueue('mail', '{"n": 2}', run_at => now() + interval '1 hour', priority => -5,
                    max_attempts => 2) AS later_id \gset
SELECT state, priority, max_attempts, run_at > now() + interval '59 minutes' AS in_an_hour
FROM jobq.jobs WHERE id = :later_id;

-- bulk: ids come back in payload order
SELECT array_agg(id ORDER BY id) = array_agg(id) AS ordered, count(*) AS n
FROM jobq.enqueue_many('mail', ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}']::jsonb[]) AS id;
SELECT count(*) AS empty_batch FROM jobq.enqueue_many('mail', ARRAY[]::jsonb[]);
-- more payloads than one multi-row insert takes (1,000): all in, in order
SELECT jobq.create_queue('bulk-big');
CREATE TEMP TABLE big_ids AS
SELECT e.id, e.n FROM jobq.enqueue_many('bulk-big', (SELECT array_agg(jsonb_build_object('i', g) ORDER BY g)
                                                     FROM generate_series(1, 2500) g)) WITH ORDINALITY AS e(id, n);
SELECT count(*) AS n, bool_and(j.payload = jsonb_build_object('i', e.n)) AS payloads_match,
       array_agg(e.id ORDER BY e.n) = array_agg(e.id ORDER BY e.id) AS ids_ordered
FROM big_ids e JOIN jobq.job j ON j.id = e.id;
SELECT array_agg(payload ->> 'i' ORDER BY id) AS payloads FROM jobq.jobs
WHERE queue = 'mail' AND payload ? 'i';

-- atomic with the caller's transaction
BEGIN;
SELECT jobq.enqueue('mail', '{"rolled": "back"}') > 0 AS enqueued;
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT jobq.enqueue('mail', '{"savepoint": "undone"}') > 0 AS enqueued;
ROLLBACK TO SAVEPOINT s;
SELECT jobq.enqueue('mail', '{"savepoint": "kept"}') > 0 AS enqueued;
COMMIT;
SELECT count(*) FILTER (WHERE payload ? 'rolled') AS rolled_back,
       count(*) FILTER (WHERE payload ->> 'savepoint' = 'undone') AS undone,
       count(*) FILTER (WHERE payload ->> 'savepoint' = 'kept') AS kept
FROM jobq.jobs;

-- unique keys: keep (default) returns the existing job
SELECT jobq.enqueue('mail', '{"v": 1}', unique_key => 'user-1') AS u1 \gset
SELECT jobq.enqueue('mail', '{"v": 2}', unique_key => 'user-1') = :u1 AS same_job;
SELECT payload FROM jobq.jobs WHERE id = :u1;
-- replace updates the waiting job
SELECT jobq.enqueue('mail', '{"v": 3}', unique_key => 'user-1', unique_mode => 'replace',
                    priority => 7) = :u1 AS same_job;
SELECT payload, priority FROM jobq.jobs WHERE id = :u1;
-- debounce pushes run_at out and takes the latest payload
SELECT jobq.enqueue('mail', '{"v": 4}', unique_key => 'user-1', unique_mode => 'debounce',
                    debounce => '10 minutes') = :u1 AS same_job;
SELECT payload, state, run_at > now() + interval '9 minutes' AS pushed FROM jobq.jobs WHERE id = :u1;
-- the same key in another queue is another job
SELECT jobq.create_queue('other');
SELECT jobq.enqueue('other', '{}', unique_key => 'user-1') <> :u1 AS distinct_job;
-- a running job is never changed under its runner: replace detaches its key
SELECT jobq.enqueue('other', '{"v": "first"}', unique_key => 'busy') AS busy \gset
SELECT count(*) AS claimed FROM jobq.claim('{other}', 'test', 10);
SELECT jobq.enqueue('other', '{"v": "second"}', unique_key => 'busy', unique_mode => 'replace') <> :busy AS new_job;
SELECT payload, unique_key IS NULL AS key_detached, state FROM jobq.jobs WHERE id = :busy;
-- keep mode now finds the new waiting job that holds the key
SELECT jobq.enqueue('other', '{"v": "third"}', unique_key => 'busy') <> :busy AS returns_waiting_one;

-- unique_window: a job with the key that completed within the window also
-- wins (keep); older completions and cancelled (or dead) jobs do not.
SELECT jobq.create_queue('windowed');
SELECT jobq.enqueue('windowed', '{"v": 1}', unique_key => 'w') AS w1 \gset
SELECT count(*) FROM (SELECT jobq.complete(array_agg(id), array_agg(lease_token))
                      FROM jobq.claim('{windowed}', 'w', 10)) s;
SELECT jobq.enqueue('windowed', '{"v": 2}', unique_key => 'w', unique_window => '1 hour') = :w1
    AS returns_completed_job;
SELECT count(*) AS live_jobs FROM jobq.job WHERE queue = 'windowed';
-- without a window the key is free once the job finished
SELECT jobq.enqueue('windowed', '{"v": 3}', unique_key => 'w') AS w3 \gset
SELECT :w3 <> :w1 AS new_job;
-- an unfinished job with the key still wins, window or not
SELECT jobq.enqueue('windowed', '{"v": 4}', unique_key => 'w', unique_window => '1 hour') = :w3
    AS returns_waiting_job;
-- a completion older than the window does not count
SELECT count(*) FROM (SELECT jobq.complete(array_agg(id), array_agg(lease_token))
                      FROM jobq.claim('{windowed}', 'w', 10)) s;
UPDATE jobq.archive SET finished_at = now() - interval '2 hours' WHERE queue = 'windowed';
SELECT jobq.enqueue('windowed', '{"v": 5}', unique_key => 'w', unique_window => '1 hour') AS w5 \gset
SELECT :w5 NOT IN (:w1, :w3) AS new_job, state FROM jobq.jobs WHERE id = :w5;
-- a cancelled job does not count
SELECT jobq.cancel(:w5);
SELECT jobq.enqueue('windowed', '{"v": 6}', unique_key => 'w', unique_window => '1 hour') <> :w5
    AS new_job_after_cancel;

-- enqueue_many with unique_keys (keep): one id per payload, in order; a key
-- held by an unfinished job, or by an earlier payload of the batch, returns
-- that job; NULL keys always enqueue.
SELECT jobq.create_queue('bulk');
SELECT jobq.enqueue('bulk', '{"v": "old"}', unique_key => 'a') AS held \gset
CREATE TEMP TABLE bulk_ids AS
SELECT e.id, e.n FROM jobq.enqueue_many('bulk',
         ARRAY['{"v": 1}', '{"v": 2}', '{"v": 3}', '{"v": 4}', '{"v": 5}']::jsonb[],
         unique_keys => ARRAY['a', 'b', NULL, 'b', NULL])
     WITH ORDINALITY AS e(id, n);
SELECT n, id = :held AS is_held, payload ->> 'v' AS payload_v, unique_key
FROM bulk_ids JOIN jobq.jobs j USING (id) ORDER BY n;
SELECT unique_key, count(*) AS jobs FROM jobq.job WHERE queue = 'bulk' GROUP BY unique_key ORDER BY unique_key;
-- a running holder counts as well; once it completed the key is free again
CREATE TEMP TABLE bulk_claim AS SELECT id, lease_token FROM jobq.claim('{bulk}', 'w', 1);
SELECT id = :held AS claimed_holder FROM bulk_claim;
SELECT id = :held AS returns_running_holder
FROM jobq.enqueue_many('bulk', ARRAY['{"v": 6}']::jsonb[], unique_keys => ARRAY['a']) AS e(id);
SELECT count(*) AS completed FROM (SELECT jobq.complete(array_agg(id), array_agg(lease_token)) FROM bulk_claim) s;
SELECT id <> :held AS new_job_after_completion
FROM jobq.enqueue_many('bulk', ARRAY['{"v": 7}']::jsonb[], unique_keys => ARRAY['a']) AS e(id);

-- A database whose jobq functions came from an older build of this version
-- calls the same C entry points with fewer arguments: they still work.
CREATE FUNCTION pg_temp.enqueue_8(text, jsonb, timestamptz, integer, integer, text, text, interval)
RETURNS bigint LANGUAGE C AS '$libdir/jobq', 'jobq_enqueue';
CREATE FUNCTION pg_temp.enqueue_many_5(text, jsonb[], timestamptz, integer, integer)
RETURNS SETOF bigint LANGUAGE C AS '$libdir/jobq', 'jobq_enqueue_many';
SELECT pg_temp.enqueue_8('bulk', '{}', NULL, 0, NULL, 'old-8', 'keep', NULL) > 0 AS enqueued;
SELECT count(*) AS enqueued FROM pg_temp.enqueue_many_5('bulk', ARRAY['{}']::jsonb[], NULL, 0, NULL);

-- A job without a unique key goes into jobq.job without SPI: it still
-- behaves as a statement. A queue created earlier in the same statement is
-- seen; the job is visible to the next statement.
SELECT jobq.enqueue(q, '{"same": "statement"}') > 0 AS enqueued
FROM (SELECT 'same-stmt' AS q, jobq.create_queue('same-stmt')) s;
SELECT state, attempt, max_attempts, run_at = created_at AS due_now FROM jobq.jobs
WHERE queue = 'same-stmt';
-- Rules added to jobq.job outside jobq (triggers, another CHECK) send the
-- keyless enqueue through a planned INSERT, which applies them all.
CREATE FUNCTION public.tag_payload() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.payload := NEW.payload || '{"tagged": true}'; RETURN NEW; END $$;
CREATE TRIGGER tag_payload BEFORE INSERT ON jobq.job FOR EACH ROW EXECUTE FUNCTION public.tag_payload();
SELECT jobq.enqueue('same-stmt', '{"n": 1}') AS tagged \gset
SELECT payload FROM jobq.jobs WHERE id = :tagged;
SELECT id AS tagged_many FROM jobq.enqueue_many('same-stmt', ARRAY['{"n": "many"}'::jsonb]) AS id \gset
SELECT payload FROM jobq.jobs WHERE id = :tagged_many;
DROP TRIGGER tag_payload ON jobq.job;
DROP FUNCTION public.tag_payload();
-- a statement trigger with a transition table sees the job
CREATE FUNCTION public.count_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'inserted % job(s)', (SELECT count(*) FROM new_jobs); RETURN NULL; END $$;
CREATE TRIGGER count_new AFTER INSERT ON jobq.job REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION public.count_new();
SELECT jobq.enqueue('same-stmt', '{"n": 2}') > 0 AS enqueued;
DROP TRIGGER count_new ON jobq.job;
DROP FUNCTION public.count_new();
-- a row a trigger suppresses is an error, never the id of nothing
CREATE FUNCTION public.drop_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER drop_row BEFORE INSERT ON jobq.job FOR EACH ROW EXECUTE FUNCTION public.drop_row();
SELECT jobq.enqueue('same-stmt', '{"n": 3}');
DROP TRIGGER drop_row ON jobq.job;
DROP FUNCTION public.drop_row();
-- a default added to a column jobq leaves NULL is applied
ALTER TABLE jobq.job ALTER progress SET DEFAULT '{"step": 0}';
SELECT jobq.enqueue('same-stmt', '{"n": 4}') AS defaulted \gset
SELECT progress FROM jobq.job WHERE id = :defaulted;
ALTER TABLE jobq.job ALTER progress DROP DEFAULT;
ALTER TABLE jobq.job ADD CONSTRAINT no_blocked CHECK (NOT payload ? 'blocked');
SELECT jobq.enqueue('same-stmt', '{"blocked": true}');
ALTER TABLE jobq.job DROP CONSTRAINT no_blocked;
SELECT count(*) AS jobs_in_same_stmt FROM jobq.job WHERE queue = 'same-stmt';
-- a read-only transaction cannot enqueue
BEGIN READ ONLY;
SELECT jobq.enqueue('same-stmt', '{}');
ROLLBACK;

-- enqueue caches a queue's defaults per backend: a change applies at once
-- in the changing transaction, is forgotten when that rolls back, and a
-- direct UPDATE of jobq.queue counts as well.
SELECT jobq.create_queue('cached', max_attempts => 4);
SELECT jobq.enqueue('cached', '{}') > 0 AS enqueued;
BEGIN;
SELECT jobq.alter_queue('cached', max_attempts => 9);
SELECT jobq.enqueue('cached', '{"in": "tx"}') AS in_tx \gset
SELECT max_attempts AS in_tx_max_attempts FROM jobq.job WHERE id = :in_tx;
ROLLBACK;
SELECT jobq.enqueue('cached', '{}') > 0 AS enqueued;
UPDATE jobq.queue SET max_attempts = 6 WHERE name = 'cached';
SELECT jobq.enqueue('cached', '{}') > 0 AS enqueued;
SELECT array_agg(max_attempts ORDER BY id) AS max_attempts FROM jobq.job WHERE queue = 'cached';

-- bad input: clear errors, nothing inserted
SELECT count(*) AS before FROM jobq.jobs \gset
SELECT jobq.enqueue('nope', '{}');
SELECT jobq.enqueue('Bad Name', '{}');
SELECT jobq.enqueue(NULL, '{}');
SELECT jobq.enqueue('mail', NULL);
SELECT jobq.enqueue('mail', '{}', priority => 40000);
SELECT jobq.enqueue('mail', '{}', max_attempts => 0);
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'sometimes');
SELECT jobq.enqueue('mail', '{}', unique_mode => 'replace');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'debounce');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'debounce', debounce => '-1 minute');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'debounce', debounce => '1 minute', run_at => now());
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', debounce => '1 minute');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'keep', debounce => '-1 second');
SELECT jobq.enqueue('mail', '{}', unique_window => '1 hour');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_window => '0 seconds');
SELECT jobq.enqueue('mail', '{}', unique_key => 'k', unique_mode => 'replace', unique_window => '1 hour');
SET jobq.max_payload_size = 1024;
SELECT jobq.enqueue('mail', jsonb_build_object('blob', repeat('x', 2000)));
SELECT count(*) FROM jobq.enqueue_many('mail', ARRAY['{}', jsonb_build_object('blob', repeat('x', 2000))]);
RESET jobq.max_payload_size;
SELECT count(*) FROM jobq.enqueue_many('mail', ARRAY['{}', NULL]::jsonb[]);
SELECT count(*) FROM jobq.enqueue_many('nope', ARRAY['{}']::jsonb[]);
SELECT count(*) FROM jobq.enqueue_many('mail', NULL);
SELECT count(*) FROM jobq.enqueue_many('mail', ARRAY['{}', '{}']::jsonb[], unique_keys => ARRAY['k']);
SELECT count(*) FROM jobq.enqueue_many('nope', ARRAY['{}']::jsonb[], unique_keys => ARRAY['k']);
SELECT count(*) = :before AS nothing_inserted FROM jobq.jobs;
-- a large payload under the limit is kept whole, never truncated
SELECT jobq.enqueue('mail', jsonb_build_object('blob', repeat('y', 100000))) AS big \gset
SELECT length(payload ->> 'blob') AS kept_length FROM jobq.jobs WHERE id = :big;
