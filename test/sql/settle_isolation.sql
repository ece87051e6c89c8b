-- A settle batch isolates its jobs (issue 15, item 6): one job whose settle
-- fails, for any reason, does not fail the others of the same complete or
-- fail_many call. The good ones are applied; the bad one gets a WARNING
-- (with its SQLSTATE), is left exactly as it was, and is missing from the
-- result. Job ids depend on earlier tests, so warnings show SQLSTATEs only.
SELECT jobq.create_queue('iso', max_attempts => 1);
CREATE TABLE held (n int, id bigint, token bigint);
CREATE FUNCTION claim_three(tag text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM held;
    SELECT jobq.enqueue('iso', jsonb_build_object('tag', tag, 'n', g)) FROM generate_series(1, 3) g;
    INSERT INTO held SELECT (c.payload ->> 'n')::int, c.id, c.lease_token
    FROM jobq.claim('{iso}', 'w', 3) c;
$$;
CREATE VIEW held_state AS
    SELECT h.n, j.state, coalesce(l.lease_token = h.token, false) AS still_held
    FROM held h JOIN jobq.jobs j USING (id) LEFT JOIN jobq.job l USING (id) ORDER BY h.n, j.state;

-- 1. A duplicate archive id (a restore accident): the direct complete path.
SELECT claim_three('dup');
INSERT INTO jobq.archive (id, queue, state, payload, priority, run_at, attempt, max_attempts,
                          created_at, finished_at)
SELECT id, 'iso', 'completed', '{"stray": true}', 0, now(), 1, 1, now(), now() FROM held WHERE n = 2;
\set VERBOSITY sqlstate
SELECT h.n AS completed
FROM jobq.complete((SELECT array_agg(id ORDER BY n) FROM held),
                   (SELECT array_agg(token ORDER BY n) FROM held)) c(id)
JOIN held h USING (id) ORDER BY 1;
\set VERBOSITY terse
SELECT * FROM held_state;
-- Alone, the bad job raises its error, as a one-job call always did.
\set VERBOSITY sqlstate
SELECT jobq.complete(ARRAY[id], ARRAY[token]) FROM held WHERE n = 2;
\set VERBOSITY terse
DELETE FROM jobq.archive WHERE payload = '{"stray": true}';
SELECT count(*) AS completed_now FROM held h, jobq.complete(ARRAY[h.id], ARRAY[h.token]) WHERE h.n = 2;

-- 2. A user's trigger on the archive raising for one job: the SQL path,
-- for complete and for fail_many, inside a transaction that goes on.
CREATE FUNCTION refuse_n2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payload ->> 'n' = '2' THEN
        RAISE EXCEPTION 'archive refuses job 2';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_n2 BEFORE INSERT ON jobq.archive FOR EACH ROW EXECUTE FUNCTION refuse_n2();
SELECT claim_three('trigger-complete');
BEGIN;
\set VERBOSITY sqlstate
SELECT h.n AS completed
FROM jobq.complete((SELECT array_agg(id ORDER BY n) FROM held),
                   (SELECT array_agg(token ORDER BY n) FROM held),
                   (SELECT array_agg(jsonb_build_object('n', n) ORDER BY n) FROM held)) c(id)
JOIN held h USING (id) ORDER BY 1;
\set VERBOSITY terse
SELECT * FROM held_state;
COMMIT;
SELECT n, result FROM held h JOIN jobq.jobs j USING (id) ORDER BY n;

SELECT claim_three('trigger-fail');
\set VERBOSITY sqlstate
SELECT h.n, f.state
FROM jobq.fail_many((SELECT array_agg(id ORDER BY n) FROM held),
                    (SELECT array_agg(token ORDER BY n) FROM held),
                    ARRAY['e1', 'e2', 'e3']) f
JOIN held h USING (id) ORDER BY 1;
\set VERBOSITY terse
SELECT * FROM held_state;
SELECT count(*) AS untouched FROM held h JOIN jobq.job j USING (id)
WHERE h.n = 2 AND j.errors IS NULL AND j.attempt = 1;

-- 3. Errors that belong to the transaction are not isolated: a
-- serialization failure fails the whole call and changes nothing.
CREATE OR REPLACE FUNCTION refuse_n2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payload ->> 'n' = '2' THEN
        RAISE EXCEPTION 'serialization trouble' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;
SELECT claim_three('serialization');
SELECT count(*)
FROM jobq.complete((SELECT array_agg(id ORDER BY n) FROM held),
                   (SELECT array_agg(token ORDER BY n) FROM held));
SELECT * FROM held_state;

DROP TRIGGER refuse_n2 ON jobq.archive;
DROP FUNCTION refuse_n2();
DROP VIEW held_state;
DROP FUNCTION claim_three(text);
DROP TABLE held;
SELECT jobq.drop_queue('iso', force => true);
