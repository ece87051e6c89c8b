-- Jobs that pause and resume: progress and saved state recorded under the
-- lease token, sleep giving the attempt back, claim handing both back, and
-- bad input (stale tokens, NULLs, oversized state, infinite times)
-- changing nothing.
\set VERBOSITY terse
SELECT jobq.create_queue('resume', max_attempts => 2, lease => '1 minute');
SELECT jobq.enqueue('resume', '{"n": 1}') AS job \gset

-- a first claim has no progress and no saved state
SELECT attempt, progress IS NULL AS no_progress, saved_state IS NULL AS no_state
FROM jobq.claim('{resume}', 'w1', 1);
SELECT lease_token AS tok FROM jobq.job WHERE id = :job \gset

-- save_state and set_progress apply with the claim's token only
SELECT jobq.save_state(:job, :tok, '{"cursor": 10}') AS applied;
SELECT jobq.save_state(:job, :tok + 1000, '{"cursor": 99}') AS stale_applied;
SELECT jobq.set_progress(:job, :tok, '{"pct": 40}') AS applied;
SELECT saved_state, progress, state FROM jobq.jobs WHERE id = :job;

-- sleep with a stale token changes nothing
SELECT jobq.sleep(:job, :tok + 1000, now() + interval '1 hour', '{"cursor": 99}') AS stale_applied;
SELECT state, attempt, saved_state FROM jobq.jobs WHERE id = :job;

-- sleep: out of running until the time, attempt given back, state replaced
SELECT jobq.sleep(:job, :tok, now() + interval '1 hour', '{"cursor": 20}') AS applied;
SELECT state, attempt, run_at > now() + interval '59 minutes' AS later, saved_state,
       lease_expires_at IS NULL AS no_lease
FROM jobq.jobs WHERE id = :job;
-- the old token is spent: sleeping, saving or settling again changes nothing
SELECT jobq.sleep(:job, :tok, now(), '{"cursor": 0}') AS applied_again;
SELECT jobq.save_state(:job, :tok, '{"cursor": 0}') AS applied_again;
SELECT count(*) AS completed FROM jobq.complete(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[]);
-- not claimable before its time
SELECT count(*) AS claimed FROM jobq.claim('{resume}', 'w1', 1);

-- once due, claim hands back progress and saved state; the attempt is the
-- same one again (sleeping used none up)
UPDATE jobq.job SET run_at = now() WHERE id = :job;
SELECT attempt, progress, saved_state FROM jobq.claim('{resume}', 'w2', 1);
SELECT lease_token AS tok FROM jobq.job WHERE id = :job \gset

-- sleep without state keeps the saved one; a time in the past means at once
SELECT jobq.sleep(:job, :tok, now() - interval '1 day') AS applied;
SELECT state, attempt, run_at <= now() AS due, saved_state FROM jobq.jobs WHERE id = :job;

-- the state survives a failed attempt (retry resumes from it)
SELECT c.lease_token AS tok FROM jobq.claim('{resume}', 'w3', 1) c \gset
SELECT jobq.fail(:job, :tok, 'flaky', retry_in => '0 seconds') AS state;
SELECT saved_state, progress FROM jobq.claim('{resume}', 'w4', 1);
SELECT lease_token AS tok FROM jobq.job WHERE id = :job \gset

-- bad input: clear errors, nothing changed
SELECT jobq.sleep(NULL, :tok, now(), '{}');
SELECT jobq.sleep(:job, NULL, now(), '{}');
SELECT jobq.sleep(:job, :tok, NULL, '{}');
SELECT jobq.sleep(:job, :tok, 'infinity', '{}');
SELECT jobq.sleep(:job, :tok, '-infinity', '{}');
SELECT jobq.save_state(:job, :tok, NULL);
SELECT jobq.save_state(NULL, :tok, '{}');
SET jobq.max_payload_size = 100;
SELECT jobq.save_state(:job, :tok, jsonb_build_object('big', repeat('x', 200)));
SELECT jobq.sleep(:job, :tok, now(), jsonb_build_object('big', repeat('x', 200)));
RESET jobq.max_payload_size;
SELECT state, attempt, saved_state FROM jobq.jobs WHERE id = :job;
-- unknown jobs: nothing applied
SELECT jobq.sleep(-1, 1, now(), '{}') AS applied, jobq.save_state(-1, 1, '{}') AS applied;

-- the saved state is dropped when the job finishes
SELECT count(*) AS completed FROM jobq.complete(ARRAY[:job]::bigint[], ARRAY[:tok]::bigint[]);
SELECT state, saved_state IS NULL AS state_dropped, progress FROM jobq.jobs WHERE id = :job;

-- the SQL claim path (several queues) hands them back too
SELECT jobq.create_queue('resume2');
SELECT jobq.enqueue('resume2', '{"n": 2}') AS job2 \gset
SELECT count(*) FROM jobq.claim('{resume,resume2}', 'w5', 5);
SELECT lease_token AS tok2 FROM jobq.job WHERE id = :job2 \gset
SELECT jobq.set_progress(:job2, :tok2, '{"pct": 5}') AND jobq.sleep(:job2, :tok2, now(), '[1, 2]') AS applied;
SELECT id = :job2 AS same, attempt, progress, saved_state FROM jobq.claim('{resume,resume2}', 'w6', 5);

-- privileges: workers may save and sleep; producers may not
CREATE ROLE regress_resume_producer IN ROLE jobq_producer;
SET ROLE regress_resume_producer;
SELECT jobq.sleep(:job2, 1, now(), '{}');
SELECT jobq.save_state(:job2, 1, '{}');
RESET ROLE;
DROP ROLE regress_resume_producer;
SELECT has_function_privilege('jobq_worker', 'jobq.sleep(bigint, bigint, timestamptz, jsonb)', 'EXECUTE') AS worker_sleeps,
       has_function_privilege('jobq_worker', 'jobq.save_state(bigint, bigint, jsonb)', 'EXECUTE') AS worker_saves;
