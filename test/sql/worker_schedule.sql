-- Periodic jobs and in-database handler checks: cron evaluation in time
-- zones, bad input refused with clear errors (and nothing changed), the
-- schedules view, unschedule, and who may call what.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SELECT jobq.create_queue('sched');

-- cron evaluation at fixed instants
SELECT jobq._cron_next('*/15 * * * *', 'UTC', '2026-03-01 10:07:00+00') AS every_15_min;
SELECT jobq._cron_next('0 9 * * mon-fri', 'America/New_York', '2026-03-06 15:00:00+00') AS next_weekday_9am_ny;
SELECT jobq._cron_next('@hourly', 'UTC', '2026-03-01 10:00:00+00') AS hourly;
SELECT jobq._cron_next('*/10 * * * * *', 'UTC', '2026-03-01 10:00:05+00') AS every_10_s;
SELECT jobq._cron_next('0 0 29 2 *', 'UTC', '2026-03-01 00:00:00+00') AS leap_day;
-- spring forward in New York (2026-03-08 02:00 EST -> 03:00 EDT): 02:30 runs at the jump
SELECT jobq._cron_next('30 2 * * *', 'America/New_York', '2026-03-08 06:00:00+00') AS skipped_local_time;
-- fall back (2026-11-01 02:00 EDT -> 01:00 EST): the repeated 01:30 runs once
SELECT jobq._cron_next('30 1 * * *', 'America/New_York', '2026-11-01 04:00:00+00') AS first_0130;
SELECT jobq._cron_next('30 1 * * *', 'America/New_York', '2026-11-01 05:30:00+00') AS after_0130;
SELECT jobq._cron_next('0 0 30 2 *', 'UTC', '2026-03-01 00:00:00+00') IS NULL AS never;

-- bad input
SELECT jobq.schedule('bad name!', '0 0 * * *', 'sched');
SELECT jobq.schedule('s1', '61 * * * *', 'sched');
SELECT jobq.schedule('s1', '* * * *', 'sched');
SELECT jobq.schedule('s1', '* * * * mon-', 'sched');
SELECT jobq.schedule('s1', '@reboot', 'sched');
SELECT jobq.schedule('s1', NULL, 'sched');
SELECT jobq.schedule('s1', '0 0 30 2 *', 'sched');
SELECT jobq.schedule('s1', '0 0 * * *', 'nope');
SELECT jobq.schedule('s1', '0 0 * * *', 'Bad Queue');
SELECT jobq.schedule('s1', '0 0 * * *', 'sched', timezone => 'Mars/Olympus_Mons');
SELECT jobq.schedule('s1', '0 0 * * *', 'sched', payload => NULL);
SELECT jobq.schedule('s1', '0 0 * * *', 'sched', max_attempts => 0);
SELECT jobq.schedule('s1', '0 0 * * *', 'sched', priority => 100000);
SELECT count(*) AS schedules_after_errors FROM jobq.schedules;

-- create, view, replace, unschedule
SELECT jobq.schedule('leap-day', '0 0 29 2 *', 'sched', '{"x": 1}', 'Europe/Berlin') > now() AS scheduled;
SELECT name, cron, timezone, queue, payload, next_run > now() AS in_future, last_run, last_error
FROM jobq.schedules;
SELECT jobq.schedule('leap-day', '0 12 29 2 *', 'sched', '{"x": 2}') IS NOT NULL AS replaced;
SELECT name, cron, timezone, payload, extract(hour FROM next_run AT TIME ZONE 'UTC') AS utc_hour
FROM jobq.schedules;
SELECT jobq.unschedule('leap-day');
SELECT jobq.unschedule('leap-day');
SELECT jobq.unschedule('leap-day', if_exists => true);

-- dropping a queue drops its schedules
SELECT jobq.schedule('gone-with-queue', '0 0 29 2 *', 'sched') IS NOT NULL AS scheduled;
SELECT jobq.drop_queue('sched');
SELECT count(*) AS schedules_left FROM jobq.schedules;

-- in-database handler signatures, checked when the queue is created
CREATE FUNCTION public.h_ok(p jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT p $$;
CREATE FUNCTION public.h_two(p jsonb, n integer) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION public.h_text(p text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION public.h_set(p jsonb) RETURNS SETOF integer LANGUAGE sql AS $$ SELECT 1 $$;
CREATE PROCEDURE public.h_proc(p jsonb) LANGUAGE sql AS $$ SELECT $$;
SELECT jobq.create_queue('h_two', handler => 'public.h_two(jsonb, integer)'::regprocedure);
SELECT jobq.create_queue('h_text', handler => 'public.h_text(text)'::regprocedure);
SELECT jobq.create_queue('h_set', handler => 'public.h_set(jsonb)'::regprocedure);
SELECT jobq.create_queue('h_proc', handler => 'public.h_proc(jsonb)'::regprocedure);
SELECT jobq.create_queue('h_missing', handler => 'public.h_missing(jsonb)'::regprocedure);
REVOKE EXECUTE ON FUNCTION public.h_ok(jsonb) FROM PUBLIC;
CREATE ROLE regress_jobq_owner;
GRANT jobq_admin TO regress_jobq_owner;
SET ROLE regress_jobq_owner;
SELECT jobq.create_queue('h_denied', handler => 'public.h_ok(jsonb)'::regprocedure);
RESET ROLE;
SELECT count(*) AS queues_after_errors FROM jobq.queues WHERE name LIKE 'h\_%';
-- the handler runs as the queue's owner, so a superuser may not own one
SELECT jobq.create_queue('h_ok', handler => 'public.h_ok(jsonb)'::regprocedure);
GRANT EXECUTE ON FUNCTION public.h_ok(jsonb) TO regress_jobq_owner;
SET ROLE regress_jobq_owner;
SELECT jobq.create_queue('h_ok', handler => 'public.h_ok(jsonb)'::regprocedure);
SELECT name, handler, owner FROM jobq.queues WHERE name = 'h_ok';
SELECT jobq.alter_queue('h_ok', handler => 'public.h_text(text)'::regprocedure);
SELECT handler FROM jobq.queues WHERE name = 'h_ok';
SELECT jobq.drop_queue('h_ok');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION public.h_ok(jsonb) FROM regress_jobq_owner;

-- privileges
CREATE ROLE regress_jobq_producer;
GRANT jobq_producer TO regress_jobq_producer;
CREATE ROLE regress_jobq_monitor;
GRANT jobq_monitor TO regress_jobq_monitor;
SET ROLE regress_jobq_producer;
SELECT jobq.schedule('nope', '0 0 * * *', 'anything');
SELECT jobq.unschedule('nope');
SELECT count(*) FROM jobq.schedules;
RESET ROLE;
SET ROLE regress_jobq_monitor;
SELECT count(*) AS visible_schedules FROM jobq.schedules;
SELECT running IS NOT NULL AS status_readable FROM jobq.worker_status();
SELECT jobq._rescue('me');
RESET ROLE;
DROP ROLE regress_jobq_owner, regress_jobq_producer, regress_jobq_monitor;
DROP FUNCTION public.h_ok(jsonb), public.h_two(jsonb, integer), public.h_text(text), public.h_set(jsonb);
DROP PROCEDURE public.h_proc(jsonb);
