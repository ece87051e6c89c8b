-- Privileges. PUBLIC gets nothing in schema jobq; each role gets exactly
-- the calls of its job. Parts 50-89 (worker) grant their own objects.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA jobq FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA jobq FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA jobq FROM PUBLIC;

GRANT USAGE ON SCHEMA jobq TO jobq_producer, jobq_worker, jobq_monitor, jobq_admin;

GRANT EXECUTE ON FUNCTION
    jobq.enqueue(text, jsonb, timestamptz, integer, integer, text, text, interval, interval),
    jobq.enqueue_many(text, jsonb[], timestamptz, integer, integer, text[])
TO jobq_producer;

GRANT EXECUTE ON FUNCTION
    jobq.claim(text[], text, integer, interval),
    jobq.complete(bigint[], bigint[], jsonb[]),
    jobq.fail(bigint, bigint, text, interval, boolean),
    jobq.fail_many(bigint[], bigint[], text[], interval[], boolean[]),
    jobq.heartbeat(bigint[], bigint[], interval),
    jobq.snooze(bigint, bigint, interval),
    jobq.set_progress(bigint, bigint, jsonb),
    jobq.release(bigint[], bigint[])
TO jobq_worker;

GRANT SELECT ON jobq.jobs, jobq.queues, jobq.queue_stats TO jobq_monitor;
GRANT EXECUTE ON FUNCTION jobq.job(bigint), jobq._display_state(text, timestamptz),
    jobq._tally_mark()
TO jobq_monitor;
-- queue_stats reads the tally's mark through jobq._tally_mark().
GRANT SELECT ON jobq.archive_tally_mark TO jobq_monitor;

-- Admins: every role's calls, plus queue management and job operations,
-- which run with the admin's own table privileges (SECURITY INVOKER).
GRANT jobq_producer, jobq_worker, jobq_monitor TO jobq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobq.queue, jobq.job, jobq.archive TO jobq_admin;
GRANT USAGE ON SEQUENCE jobq.job_id_seq, jobq.lease_token_seq TO jobq_admin;
GRANT EXECUTE ON FUNCTION
    jobq.create_queue(text, integer, interval, interval, double precision, interval, interval,
                      integer, regprocedure, interval, boolean),
    jobq.alter_queue(text, integer, interval, interval, double precision, interval, interval,
                     integer, regprocedure, interval, boolean),
    jobq.drop_queue(text, boolean),
    jobq.pause(text),
    jobq.resume(text),
    jobq.cancel(bigint),
    jobq.retry(bigint),
    jobq._check_queue(jobq.queue),
    jobq._queue_for_update(text),
    jobq._set_paused(text, boolean),
    jobq._check_queue_name(text),
    jobq._check_interval(text, interval),
    jobq._append_error(jsonb, integer, text),
    jobq._job_row_valid(text, integer, integer, bigint, timestamptz),
    jobq.backoff(integer, interval, interval, double precision)
TO jobq_admin;
