-- jobq.queue_stats counts finished jobs from the archive tally plus the
-- rows finished since its mark, instead of reading the whole archive
-- (issue 16, item 7). Its counts stay exact through every path that adds
-- or removes finished jobs: settle, cancel, retention, retry, drop_queue,
-- and a rebuild after hand deletes.
\set VERBOSITY terse
SELECT jobq.create_queue('stats', max_attempts => 1, retention => '1 day');
CREATE FUNCTION stats_of(q text, OUT completed bigint, OUT cancelled bigint, OUT dead bigint,
                         OUT exact boolean)
LANGUAGE sql AS $$
    SELECT s.completed, s.cancelled, s.dead,
           (s.completed, s.cancelled, s.dead) =
           (SELECT count(*) FILTER (WHERE a.state = 'completed'),
                   count(*) FILTER (WHERE a.state = 'cancelled'),
                   count(*) FILTER (WHERE a.state = 'dead')
            FROM jobq.archive a WHERE a.queue = q)
    FROM jobq.queue_stats s WHERE s.queue = q
$$;
CREATE FUNCTION finish_some(tag text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    PERFORM jobq.enqueue('stats', jsonb_build_object('tag', tag, 'n', g)) FROM generate_series(1, 6) g;
    FOR c IN SELECT * FROM jobq.claim('{stats}', 'w', 4) LOOP
        IF (c.payload ->> 'n')::int <= 3 THEN
            PERFORM jobq.complete(ARRAY[c.id], ARRAY[c.lease_token]);
        ELSE
            PERFORM jobq.fail(c.id, c.lease_token, 'boom');
        END IF;
    END LOOP;
    PERFORM jobq.cancel(j.id) FROM jobq.job j WHERE j.queue = 'stats';
END $$;

-- Fresh: nothing tallied, everything counted from the archive.
SELECT finish_some('first');
SELECT * FROM stats_of('stats');
-- Backdate them past the tally's margin (an edit by hand: rebuild) and
-- they are tallied. (The worker may advance the mark at any time too.)
UPDATE jobq.archive SET finished_at = finished_at - interval '2 hours' WHERE queue = 'stats';
SELECT jobq._tally_rebuild() <= now() - interval '1 minute' AS mark_moved;
SELECT state, jobs FROM jobq.archive_tally WHERE queue = 'stats' ORDER BY state;
SELECT * FROM stats_of('stats');
-- New finishes after the mark are counted from the archive.
SELECT finish_some('second');
SELECT * FROM stats_of('stats');
-- retry of a tallied cancelled job takes it off the tally.
SELECT jobq.retry(min(id)) FROM jobq.archive WHERE queue = 'stats' AND state = 'cancelled'
  AND finished_at < now() - interval '1 hour';
SELECT * FROM stats_of('stats');
-- Retention deletes tallied jobs and takes them off.
UPDATE jobq.archive SET finished_at = finished_at - interval '2 days'
WHERE queue = 'stats' AND payload ->> 'tag' = 'first';
SELECT jobq._prune() >= 0 AS prune_ran;
SELECT * FROM stats_of('stats');
-- Deleting by hand leaves the tally high until a rebuild.
UPDATE jobq.archive SET finished_at = finished_at - interval '2 hours'
WHERE queue = 'stats' AND payload ->> 'tag' = 'second';
SELECT jobq._tally_rebuild() IS NOT NULL AS rebuilt;
SELECT * FROM stats_of('stats');
DELETE FROM jobq.archive WHERE queue = 'stats' AND state = 'completed'
  AND id = (SELECT min(id) FROM jobq.archive WHERE queue = 'stats' AND state = 'completed');
SELECT exact AS exact_after_hand_delete FROM stats_of('stats');
SELECT jobq._tally_rebuild() IS NOT NULL AS rebuilt;
SELECT * FROM stats_of('stats');
-- drop_queue takes its tally rows with it.
SELECT jobq.drop_queue('stats', force => true);
SELECT count(*) AS tally_rows_left FROM jobq.archive_tally WHERE queue = 'stats';

DROP FUNCTION finish_some(text);
DROP FUNCTION stats_of(text);
