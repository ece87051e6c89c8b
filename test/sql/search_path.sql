-- A planted function or operator of the same name, in a user schema first
-- on the caller's search_path or in pg_temp, is never called by jobq: every
-- function that runs SQL pins search_path, and C functions only run their
-- own pinned statements. (RELIABILITY.md 17)
\set VERBOSITY terse

-- Every function whose body is SQL or PL/pgSQL, and every SECURITY DEFINER
-- function, pins search_path.
SELECT count(*) = 0 AS every_sql_body_pins_search_path
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = 'jobq' AND (l.lanname IN ('sql', 'plpgsql') OR p.prosecdef)
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                  WHERE c = 'search_path=pg_catalog, pg_temp');

CREATE ROLE regress_sp_admin IN ROLE jobq_admin;
CREATE SCHEMA regress_evil AUTHORIZATION regress_sp_admin;
CREATE TABLE regress_evil.calls (what text);
GRANT ALL ON regress_evil.calls TO PUBLIC;

SET ROLE regress_sp_admin;
-- Look-alikes of what jobq's bodies use: functions and operators on the
-- exact argument types, so they would win over pg_catalog's if the path
-- were the caller's. Each one records its call.
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('now()'); SELECT pg_catalog.now() $$;
CREATE FUNCTION regress_evil.left(text, integer) RETURNS text LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('left()'); SELECT pg_catalog.left($1, $2) $$;
CREATE FUNCTION regress_evil.jsonb_build_array(jsonb) RETURNS jsonb LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('jsonb_build_array()'); SELECT pg_catalog.jsonb_build_array($1) $$;
CREATE FUNCTION regress_evil.jsonb_array_length(jsonb) RETURNS integer LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('jsonb_array_length()'); SELECT pg_catalog.jsonb_array_length($1) $$;
CREATE FUNCTION regress_evil.format(text, text) RETURNS text LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('format()'); SELECT pg_catalog.format($1, $2) $$;
CREATE FUNCTION regress_evil.text_eq(text, text) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('text = text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.text_eq);
CREATE FUNCTION regress_evil.int8_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('bigint = bigint'); SELECT pg_catalog.int8eq($1, $2) $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_evil.int8_eq);
CREATE FUNCTION regress_evil.ts_plus(timestamptz, interval) RETURNS timestamptz LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('timestamptz + interval'); SELECT pg_catalog.timestamptz_pl_interval($1, $2) $$;
CREATE OPERATOR regress_evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = regress_evil.ts_plus);
CREATE FUNCTION regress_evil.jsonb_cat(jsonb, jsonb) RETURNS jsonb LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('jsonb || jsonb'); SELECT pg_catalog.jsonb_concat($1, $2) $$;
CREATE OPERATOR regress_evil.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = regress_evil.jsonb_cat);
-- and in pg_temp, which jobq's pinned path names last
CREATE TABLE pg_temp.job (id bigint);
CREATE TABLE pg_temp.queue (name text);
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('pg_temp.now()'); SELECT pg_catalog.now() $$;
CREATE FUNCTION pg_temp.text_eq(text, text) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO regress_evil.calls VALUES ('pg_temp text = text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR pg_temp.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_temp.text_eq);

SET search_path = regress_evil, pg_temp, public, pg_catalog;
-- The trap works: an unqualified call by the caller itself finds them.
SELECT now() IS NOT NULL AS trap_set, 'a' = 'a' AS trap_set_too;
RESET search_path;
SELECT what FROM regress_evil.calls ORDER BY what;
TRUNCATE regress_evil.calls;

-- Every public call, with the planted objects first on the path.
SET search_path = regress_evil, pg_temp, public, pg_catalog;
SELECT jobq.create_queue('sp', lease => '1 minute', max_attempts => 3) IS NULL AS created;
SELECT jobq.alter_queue('sp', backoff_base => '1 second') IS NULL AS altered;
SELECT jobq.pause('sp') IS NULL AS paused, jobq.resume('sp') IS NULL AS resumed;
SELECT jobq.enqueue('sp', '{"n": 1}') > 0 AS enqueued;
SELECT jobq.enqueue('sp', '{"n": 2}', unique_key => 'k') > 0 AS keyed;
SELECT jobq.enqueue('sp', '{"n": 3}', unique_key => 'k', unique_mode => 'replace') > 0 AS replaced;
SELECT jobq.enqueue('sp', '{"n": 4}', unique_key => 'd', unique_mode => 'debounce',
                    debounce => '1 hour') > 0 AS debounced;
SELECT jobq.enqueue('sp', '{"n": 5}', run_at => '2100-01-01') > 0 AS scheduled;
SELECT count(*) AS many FROM jobq.enqueue_many('sp', ARRAY['{"n": 6}', '{"n": 7}']::jsonb[]);
SELECT id AS j1, lease_token AS t1 FROM jobq.claim('{sp}', 'spw', 1) \gset
SELECT id AS j2, lease_token AS t2 FROM jobq.claim('{sp}', 'spw', 1) \gset
SELECT id AS j3, lease_token AS t3 FROM jobq.claim('{sp}', 'spw', 1) \gset
SELECT id AS j4, lease_token AS t4 FROM jobq.claim('{sp}', 'spw', 1) \gset
SELECT count(*) AS heartbeats FROM jobq.heartbeat(ARRAY[:j1]::bigint[], ARRAY[:t1]::bigint[]);
SELECT jobq.set_progress(:j1, :t1, '{"half": true}') AS progressed;
SELECT count(*) AS completed FROM jobq.complete(ARRAY[:j1]::bigint[], ARRAY[:t1]::bigint[],
                                                ARRAY['{"ok": true}']::jsonb[]);
SELECT jobq.fail(:j2, :t2, 'boom') AS failed;
SELECT count(*) AS failed_many FROM jobq.fail_many(ARRAY[:j3]::bigint[], ARRAY[:t3]::bigint[],
                                                   ARRAY['boom']);
SELECT jobq.snooze(:j4, :t4, '1 hour') AS snoozed;
SELECT jobq.enqueue('sp', '{"n": 8}') > 0 AS enqueued_again;
SELECT id AS j5, lease_token AS t5 FROM jobq.claim('{sp}', 'spw', 1) \gset
SELECT count(*) AS released FROM jobq.release(ARRAY[:j5]::bigint[], ARRAY[:t5]::bigint[]);
SELECT jobq.cancel(:j2) AS cancelled;
SELECT jobq.retry(:j2) AS retried;
SELECT count(*) > 0 AS seen FROM jobq.job(:j1);
SELECT count(*) > 0 AS listed FROM jobq.jobs;
SELECT count(*) > 0 AS queues FROM jobq.queues;
SELECT count(*) > 0 AS stats FROM jobq.queue_stats;
SELECT jobq.schedule('sp-tick', '0 3 * * *', 'sp') IS NOT NULL AS scheduled_cron;
SELECT count(*) > 0 AS schedules FROM jobq.schedules;
SELECT jobq.unschedule('sp-tick') AS unscheduled;
SELECT jobq.backoff(3, '1 second', '1 minute', 0) AS backoff;
SELECT count(*) AS status_rows FROM jobq.worker_status();
SELECT jobq.drop_queue('sp', force => true) IS NULL AS dropped;
RESET search_path;
RESET ROLE;

-- enqueue and enqueue_many are not SECURITY DEFINER: their direct insert
-- runs as the caller and resolves no name; whatever of them runs SQL (here
-- forced by a trigger on jobq.job) runs as their owner with the pinned
-- path, and the caller gets its own user and path back, after an error too.
CREATE ROLE regress_sp_producer IN ROLE jobq_producer;
CREATE TABLE regress_evil.seen (who name, path text);
GRANT ALL ON regress_evil.seen TO PUBLIC;
CREATE FUNCTION public.regress_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_evil.seen VALUES (current_user, current_setting('search_path'));
    IF NEW.payload ? 'fail' THEN RAISE EXCEPTION 'trigger refuses the job'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regress_seen BEFORE INSERT ON jobq.job
    FOR EACH ROW EXECUTE FUNCTION public.regress_seen();
SELECT jobq.create_queue('sp2');
SET ROLE regress_sp_producer;
SET search_path = regress_evil, pg_temp, public, pg_catalog;
SELECT jobq.enqueue('sp2', '{"n": 1}') > 0 AS through_sql;
SELECT jobq.enqueue('sp2', '{"n": 2}', unique_key => 'k') > 0 AS keyed;
SELECT count(*) AS many FROM jobq.enqueue_many('sp2', ARRAY['{"n": 3}', '{"n": 4}']::jsonb[]);
SELECT current_user AS caller, current_setting('search_path') AS callers_path;
DO $$
BEGIN
    PERFORM jobq.enqueue('sp2', '{"fail": true}');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'caught "%" as %, path %', SQLERRM, current_user, current_setting('search_path');
END $$;
SELECT jobq.enqueue('sp2', '{"fail": true}');
SELECT current_user AS caller, current_setting('search_path') AS callers_path;
RESET search_path;
RESET ROLE;
DROP TRIGGER regress_seen ON jobq.job;
SELECT who = (SELECT proowner::regrole::name FROM pg_proc
              WHERE oid = 'jobq.enqueue_many(text,jsonb[],timestamptz,integer,integer,text[])'::regprocedure)
       AS as_owner, path, count(*)
FROM regress_evil.seen GROUP BY 1, 2;
SELECT count(*) AS jobs FROM jobq.jobs WHERE queue = 'sp2';
SELECT jobq.drop_queue('sp2', force => true);
DROP FUNCTION public.regress_seen();
DROP ROLE regress_sp_producer;

SELECT count(*) AS planted_calls FROM regress_evil.calls;

DROP SCHEMA regress_evil CASCADE;
DROP OWNED BY regress_sp_admin;
DROP ROLE regress_sp_admin;
