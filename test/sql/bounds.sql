-- Bounds on every interval setting and argument, the unique_key length
-- limit, NULL ids, and per-queue maintenance: each bad input gets a clear
-- error naming the option and changes nothing (issue 16, items 2-4 and 6).
\set VERBOSITY terse
SELECT jobq.create_queue('bounds', lease => '1 minute', retention => '1 hour');

-- Queue options past their bounds are refused, naming the option.
SELECT jobq.create_queue('overflow', retention => '1000000 years');
SELECT jobq.create_queue('overflow', lease => '1000000 years');
SELECT jobq.create_queue('overflow', lease => '1 microsecond');
SELECT jobq.create_queue('overflow', backoff_max => '1000000 years');
SELECT jobq.create_queue('overflow', backoff_base => '2 days', backoff_max => '3 days');
SELECT jobq.create_queue('overflow', backoff_base => '1 microsecond');
SELECT jobq.create_queue('overflow', handler_timeout => '1 millisecond');
SELECT jobq.create_queue('overflow', handler_timeout => '2 days');
SELECT count(*) = 0 AS nothing_created FROM jobq.queues WHERE name = 'overflow';
SELECT jobq.alter_queue('bounds', retention => '1000000 years');
SELECT jobq.alter_queue('bounds', lease => '8 days');
SELECT jobq.alter_queue('bounds', backoff_max => '31 days');
SELECT lease = '1 minute' AND retention = '1 hour' AND backoff_max = '1 hour' AS unchanged
FROM jobq.queues WHERE name = 'bounds';
-- The bounds themselves are accepted.
SELECT jobq.create_queue('edges', lease => '1 second', retention => '0', backoff_base => '1 millisecond',
                         backoff_max => '1 millisecond', handler_timeout => '100 milliseconds');
SELECT jobq.alter_queue('edges', lease => '7 days', retention => '10 years', backoff_base => '1 day',
                        backoff_max => '30 days', handler_timeout => '1 day');
SELECT lease = '7 days' AND retention = '10 years' AND backoff_max = '30 days' AS at_max
FROM jobq.queues WHERE name = 'edges';

-- Per-call interval arguments: refused, naming the argument; nothing changes.
SELECT jobq.enqueue('bounds', '{"n": 1}') AS job \gset
SELECT jobq.claim('{bounds}', 'w', 1, lease => '1000000 years');
SELECT jobq.claim('{bounds}', 'w', 1, lease => '1 microsecond');
SELECT state = 'available' AS still_waiting FROM jobq.job(:job);
SELECT lease_token AS tok FROM jobq.claim('{bounds}', 'w', 1) \gset
SELECT jobq.heartbeat(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[], lease => '1000000 years');
SELECT jobq.heartbeat(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[], lease => '10 milliseconds');
SELECT jobq.snooze(:job, :tok, '1000000 years');
SELECT jobq.fail(:job, :tok, 'x', retry_in => '1000000 years');
SELECT jobq.fail_many(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[], ARRAY['x'],
                      retry_in => ARRAY['1000000 years']::interval[]);
SELECT state = 'running' AND attempt = 1 AND errors IS NULL AS untouched FROM jobq.job(:job);
SELECT jobq.enqueue('bounds', '{}', unique_key => 'k', unique_mode => 'debounce',
                    debounce => '1000000 years');
SELECT jobq.enqueue('bounds', '{}', unique_key => 'k', unique_window => '1000000 years');
SELECT count(*) = 1 AS no_new_job FROM jobq.job j WHERE j.queue = 'bounds';
-- At the bounds: accepted.
SELECT count(*) AS heartbeats
FROM jobq.heartbeat(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[], lease => '7 days');
SELECT jobq.snooze(:job, :tok, '10 years') AS snoozed;

-- unique_key: at most 1024 bytes, checked before the index sees it.
SELECT jobq.enqueue('bounds', '{}', unique_key => repeat('k', 3000));
SELECT jobq.enqueue_many('bounds', ARRAY['{}', '{}']::jsonb[],
                         unique_keys => ARRAY['short', repeat('k', 3000)]);
SELECT count(*) = 1 AS no_new_job FROM jobq.job j WHERE j.queue = 'bounds';
SELECT jobq.enqueue('bounds', '{}', unique_key => repeat('k', 1024)) > 0 AS at_limit;

-- NULL ids: 22004, like every other function.
\set VERBOSITY sqlstate
SELECT jobq.cancel(NULL);
SELECT jobq.retry(NULL);
SELECT jobq.enqueue(NULL, '{}');
SELECT * FROM jobq.job(NULL);
SELECT jobq.unschedule(NULL);
SELECT jobq.schedule(NULL, '* * * * *', 'bounds');
\set VERBOSITY terse

-- Maintenance is per queue: a queue whose settings were edited past their
-- bounds behind alter_queue's back, or whose rescue fails for any other
-- reason (here a user's trigger), gets a warning, and every other queue is
-- pruned and rescued as usual.
SELECT jobq.create_queue('broken');
SELECT jobq.create_queue('good', retention => '0');
UPDATE jobq.queue SET retention = '1000000 years' WHERE name = 'broken';
CREATE FUNCTION refuse_broken_retry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'no retries in queue broken';
END $$;
CREATE TRIGGER refuse_broken_retry BEFORE UPDATE ON jobq.job FOR EACH ROW
    WHEN (NEW.queue = 'broken' AND NEW.state = 'retryable') EXECUTE FUNCTION refuse_broken_retry();
SELECT jobq.enqueue('broken', '{}') AS broken_job \gset
SELECT count(*) AS claimed FROM jobq.claim('{broken}', 'w', 1);
SELECT jobq.enqueue('good', '{}') AS good_job \gset
SELECT count(*) AS claimed FROM jobq.claim('{good}', 'w', 1);
UPDATE jobq.job SET lease_expires_at = now() - interval '1 minute' WHERE id IN (:broken_job, :good_job);
SELECT jobq._rescue('regress') >= 0 AS rescue_ran;
SELECT state AS good_state FROM jobq.job(:good_job);
SELECT state AS broken_state FROM jobq.job(:broken_job);
DROP TRIGGER refuse_broken_retry ON jobq.job;
DROP FUNCTION refuse_broken_retry();
-- retention: an old completed job in each queue
SELECT jobq.enqueue('broken', '{}') AS old_broken \gset
SELECT jobq.enqueue('good', '{}') AS old_good \gset
SELECT count(*) AS claimed FROM jobq.claim('{broken,good}', 'w', 10);
SELECT count(*) AS completed
FROM jobq.complete((SELECT array_agg(id) FROM jobq.job WHERE id IN (:old_broken, :old_good)),
                   (SELECT array_agg(lease_token) FROM jobq.job WHERE id IN (:old_broken, :old_good)));
SELECT jobq._prune() >= 0 AS prune_ran;
SELECT count(*) AS good_kept FROM jobq.archive WHERE id = :old_good;
SELECT count(*) AS broken_kept FROM jobq.archive WHERE id = :old_broken;

SELECT jobq.drop_queue(q, force => true) FROM unnest(ARRAY['bounds', 'edges', 'broken', 'good']) q;
