-- Operations on jobs: cancel, retry, job(), and the views.
\set VERBOSITY terse
SELECT jobq.create_queue('ops', max_attempts => 1);

-- cancel a waiting job
SELECT jobq.enqueue('ops', '{"c": 1}') AS waiting \gset
SELECT jobq.cancel(:waiting) AS cancelled;
SELECT state, finished_at IS NOT NULL AS finished FROM jobq.job(:waiting);
SELECT jobq.cancel(:waiting) AS cancelled_again;

-- cancel a running job: its runner's settle calls are refused afterwards
SELECT jobq.enqueue('ops', '{"c": 2}') AS running \gset
SELECT lease_token AS tok FROM jobq.claim('{ops}', 'w', 1) \gset
SELECT jobq.cancel(:running) AS cancelled;
SELECT count(*) AS heartbeat_rows FROM jobq.heartbeat(ARRAY[:running]::bigint[], ARRAY[:tok]::bigint[]);
SELECT count(*) AS completed FROM jobq.complete(ARRAY[:running]::bigint[], ARRAY[:tok]::bigint[]);
SELECT state FROM jobq.job(:running);

-- retry a cancelled and a dead job
SELECT jobq.retry(:running) AS retried;
SELECT state, attempt FROM jobq.job(:running);
SELECT lease_token AS tok FROM jobq.claim('{ops}', 'w', 1) \gset
SELECT jobq.fail(:running, :tok, 'fatal') AS state;
SELECT state, attempt, errors -> -1 ->> 'error' AS last_error FROM jobq.job(:running);
SELECT jobq.retry(:running) AS retried;
SELECT state, attempt, jsonb_array_length(errors) AS errors_kept FROM jobq.job(:running);

-- retry refuses live and completed jobs, cancel/retry refuse unknown ids
-- (messages name the job id, which depends on earlier tests: show SQLSTATEs)
\set VERBOSITY sqlstate
SELECT jobq.retry(:running);
SELECT lease_token AS tok FROM jobq.claim('{ops}', 'w', 1) \gset
SELECT count(*) FROM jobq.complete(ARRAY[:running]::bigint[], ARRAY[:tok]::bigint[]);
SELECT jobq.retry(:running);
\set VERBOSITY terse
SELECT jobq.retry(999999);
SELECT jobq.cancel(999999);
SELECT count(*) AS no_rows FROM jobq.job(999999);

-- stats
SELECT jobq.enqueue('ops', '{}', run_at => now() + interval '1 hour') > 0 AS scheduled;
SELECT jobq.enqueue('ops', '{}') > 0 AS available;
SELECT queue, available, scheduled, running, retryable, completed, cancelled, dead,
       oldest_waiting_age IS NOT NULL AS has_age, completed_5m, mean_run_time_5m IS NOT NULL AS has_mean
FROM jobq.queue_stats WHERE queue = 'ops';
SELECT state, count(*) FROM jobq.jobs WHERE queue = 'ops' GROUP BY state ORDER BY state;
