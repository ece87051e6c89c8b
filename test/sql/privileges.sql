-- Roles: each role can make exactly the calls of its job; PUBLIC nothing.
-- Every SECURITY DEFINER function pins search_path.
\set VERBOSITY terse
SELECT jobq.create_queue('priv');
CREATE ROLE regress_producer IN ROLE jobq_producer;
CREATE ROLE regress_worker IN ROLE jobq_worker;
CREATE ROLE regress_monitor IN ROLE jobq_monitor;
CREATE ROLE regress_admin IN ROLE jobq_admin;
CREATE ROLE regress_nobody;

SELECT count(*) = 0 AS no_definer_without_search_path
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'jobq' AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
SELECT count(*) = 0 AS public_executes_nothing
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'jobq' AND has_function_privilege('regress_nobody', p.oid, 'EXECUTE');

SET ROLE regress_nobody;
SELECT jobq.enqueue('priv', '{}');
SELECT * FROM jobq.jobs;
RESET ROLE;

SET ROLE regress_producer;
SELECT jobq.enqueue('priv', '{"from": "producer"}') > 0 AS enqueued;
SELECT count(*) FROM jobq.enqueue_many('priv', ARRAY['{}']::jsonb[]);
SELECT * FROM jobq.claim('{priv}', 'p', 1);
SELECT * FROM jobq.jobs;
SELECT * FROM jobq.job;
INSERT INTO jobq.job (queue, state, payload, max_attempts) VALUES ('priv', 'available', '{}', 1);
SELECT jobq.create_queue('sneaky');
RESET ROLE;

SET ROLE regress_worker;
SELECT count(*) AS claimed FROM jobq.claim('{priv}', 'w', 1);
SELECT jobq.enqueue('priv', '{}');
SELECT * FROM jobq.job;
SELECT jobq.cancel(1);
RESET ROLE;
-- a worker cannot settle a job it does not hold
SELECT id AS held, lease_token AS tok FROM jobq.job WHERE state = 'running' LIMIT 1 \gset
SET ROLE regress_worker;
SELECT count(*) AS applied FROM jobq.complete(ARRAY[:held]::bigint[], ARRAY[:tok + 1]::bigint[]);
SELECT count(*) AS applied FROM jobq.complete(ARRAY[:held]::bigint[], ARRAY[:tok]::bigint[]);
RESET ROLE;

SET ROLE regress_monitor;
SELECT count(*) > 0 AS sees_jobs FROM jobq.jobs;
SELECT count(*) > 0 AS sees_stats FROM jobq.queue_stats;
SELECT count(*) AS one FROM jobq.job(:held);
SELECT jobq.enqueue('priv', '{}');
SELECT jobq.pause('priv');
RESET ROLE;

SET ROLE regress_admin;
SELECT jobq.create_queue('admin_made');
SELECT owner FROM jobq.queues WHERE name = 'admin_made';
SELECT jobq.pause('admin_made');
SELECT jobq.enqueue('admin_made', '{}') > 0 AS enqueued;
SELECT jobq.drop_queue('admin_made', force => true);
RESET ROLE;

-- a planted function in pg_temp or a user schema is never called
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
SET search_path = evil, pg_temp, public;
SELECT jobq.enqueue('priv', '{}') AS planted \gset
SELECT created_at > '2020-01-01' AS real_clock FROM jobq.jobs WHERE id = :planted;
RESET search_path;
DROP SCHEMA evil CASCADE;

DROP ROLE regress_producer, regress_worker, regress_monitor, regress_admin, regress_nobody;
