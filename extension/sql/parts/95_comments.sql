-- Comments on every object in schema jobq, so \dt+, \dv+, \df+ and \dx+
-- explain themselves. Objects whose name starts with "_" are internal: they
-- are called by jobq's own functions and the background worker, and may
-- change between versions. test/sql/comments.sql checks that nothing in the
-- schema is left without one: a new object needs its line here.

-- Tables and sequences
COMMENT ON TABLE jobq.queue IS
    'Queues and their options; change them with jobq.create_queue/alter_queue/drop_queue, read them in jobq.queues.';
COMMENT ON TABLE jobq.job IS
    'Live jobs (waiting or running); a job moves to jobq.archive when it finishes. Read through jobq.jobs.';
COMMENT ON TABLE jobq.archive IS
    'Finished jobs (completed, cancelled, dead), kept per their queue''s retention; dead jobs until retried or deleted.';
COMMENT ON TABLE jobq.periodic IS
    'Periodic jobs (cron schedules); change them with jobq.schedule/unschedule, read them in jobq.schedules.';
COMMENT ON TABLE jobq.archive_tally IS
    'Counts of completed and cancelled jobs in jobq.archive finished before the mark, per queue, for jobq.queue_stats.';
COMMENT ON TABLE jobq.archive_tally_mark IS
    'The mark of jobq.archive_tally (at most one row; none: nothing tallied yet).';
COMMENT ON SEQUENCE jobq.job_id_seq IS 'Job ids, shared by jobq.job and jobq.archive.';
COMMENT ON SEQUENCE jobq.lease_token_seq IS 'Lease tokens handed out by jobq.claim; every settle call is fenced by one.';
COMMENT ON TABLE jobq._restore_session IS
    'Internal: the session restoring a dump that created jobq; the background worker waits until it and its helpers have gone.';

-- Views
COMMENT ON VIEW jobq.jobs IS
    'Every job still kept, live or finished, with its displayed state (available, scheduled, running, retryable, completed, cancelled, dead).';
COMMENT ON VIEW jobq.queues IS 'Queues and their options.';
COMMENT ON VIEW jobq.queue_stats IS
    'Per queue: live counts by state, finished jobs kept in history, age of the oldest due job, and the last five minutes of throughput.';
COMMENT ON VIEW jobq.schedules IS 'Periodic jobs: cron, time zone, queue, next and last run, last error.';
COMMENT ON VIEW jobq.worker IS 'This database''s background worker: running, status, counters (jobq.worker_status()).';

-- Queues
COMMENT ON FUNCTION jobq.create_queue(text, integer, interval, interval, double precision, interval,
                                      interval, integer, regprocedure, interval, boolean) IS
    'Creates a queue with its retry, lease, retention, concurrency and handler options (docs/api.md).';
COMMENT ON FUNCTION jobq.alter_queue(text, integer, interval, interval, double precision, interval,
                                     interval, integer, regprocedure, interval, boolean) IS
    'Changes the options given (NULL keeps one; concurrency => 0 removes the limit; drop_handler => true removes the handler).';
COMMENT ON FUNCTION jobq.drop_queue(text, boolean) IS
    'Drops a queue; refuses while it has unfinished jobs unless force => true, which drops its jobs and history too.';
COMMENT ON FUNCTION jobq.pause(text) IS 'Pauses a queue: nobody claims from it; enqueue still works.';
COMMENT ON FUNCTION jobq.resume(text) IS 'Resumes a paused queue and wakes its runners.';

-- Producers
COMMENT ON FUNCTION jobq.enqueue(text, jsonb, timestamptz, integer, integer, text, text, interval, interval) IS
    'Enqueues one job in the caller''s transaction and returns its id; unique_key deduplicates (modes keep, replace, debounce).';
COMMENT ON FUNCTION jobq.enqueue_many(text, jsonb[], timestamptz, integer, integer, text[]) IS
    'Enqueues a batch of payloads in one statement; returns their ids in payload order.';

-- Worker protocol
COMMENT ON FUNCTION jobq.claim(text[], text, integer, interval) IS
    'Claims up to max_jobs due jobs from the queues given, each with a lease token that every settle call must present.';
COMMENT ON FUNCTION jobq.complete(bigint[], bigint[], jsonb[]) IS
    'Completes jobs held under the given lease tokens; returns the ids completed (a stale token completes nothing).';
COMMENT ON FUNCTION jobq.fail(bigint, bigint, text, interval, boolean) IS
    'Fails one attempt: retryable after retry_in or the queue''s backoff, or dead; returns the new state, NULL if the token is stale.';
COMMENT ON FUNCTION jobq.fail_many(bigint[], bigint[], text[], interval[], boolean[]) IS
    'Fails a batch of attempts; returns (id, new state) for each job still held.';
COMMENT ON FUNCTION jobq.heartbeat(bigint[], bigint[], interval) IS
    'Extends the leases of running jobs; ids missing from the result are no longer held (cancelled or rescued).';
COMMENT ON FUNCTION jobq.snooze(bigint, bigint, interval) IS
    'Puts a running job back to wait for delay, giving back the attempt; true if applied.';
COMMENT ON FUNCTION jobq.set_progress(bigint, bigint, jsonb) IS 'Records a running job''s progress; true if applied.';
COMMENT ON FUNCTION jobq.release(bigint[], bigint[]) IS
    'Gives running jobs back unrun (e.g. at shutdown), attempts not counted; returns the ids released.';

-- Operations and monitoring
COMMENT ON FUNCTION jobq.job(bigint) IS 'One job, live or finished, as a row of jobq.jobs.';
COMMENT ON FUNCTION jobq.cancel(bigint) IS
    'Finishes a waiting or running job as cancelled; false if it had already finished.';
COMMENT ON FUNCTION jobq.retry(bigint) IS
    'Runs a dead or cancelled job again at once, attempts reset, error history kept.';
COMMENT ON FUNCTION jobq.backoff(integer, interval, interval, double precision) IS
    'The retry delay after an attempt: min(max, base * 2^(attempt-1)), shortened by up to jitter at random.';
COMMENT ON FUNCTION jobq.schedule(text, text, text, jsonb, text, integer, integer) IS
    'Creates or replaces a periodic job (cron expression in a time zone); returns its next run.';
COMMENT ON FUNCTION jobq.unschedule(text, boolean) IS 'Removes a periodic job; true if it existed.';
COMMENT ON FUNCTION jobq.worker_status() IS 'This database''s background worker: status and counters (see the view jobq.worker).';

-- Internal
COMMENT ON FUNCTION jobq._queue_changed() IS 'Internal: trigger that invalidates every session''s cached queue settings at commit.';
COMMENT ON FUNCTION jobq._job_row_valid(text, integer, integer, bigint, timestamptz) IS
    'Internal: the invariant of a live job, jobq.job''s CHECK constraint.';
COMMENT ON FUNCTION jobq._append_error(jsonb, integer, text) IS 'Internal: appends an attempt''s error to a job''s bounded error list.';
COMMENT ON FUNCTION jobq._check_queue_name(text) IS 'Internal: raises unless the text is a valid queue name.';
COMMENT ON FUNCTION jobq._check_interval(text, interval) IS
    'Internal: raises unless the interval is within the bounds of the named setting (docs/api.md).';
COMMENT ON FUNCTION jobq._check_queue(jobq.queue) IS 'Internal: raises unless every option of the queue row is valid.';
COMMENT ON FUNCTION jobq._queue_for_update(text) IS 'Internal: the queue row, locked, or an error naming the queue.';
COMMENT ON FUNCTION jobq._set_paused(text, boolean) IS 'Internal: body of pause and resume.';
COMMENT ON FUNCTION jobq._display_state(text, timestamptz) IS
    'Internal: a live job''s displayed state (scheduled until its run_at, then available).';
COMMENT ON FUNCTION jobq._note_wakeup(text, timestamptz) IS 'Internal: notes a wake-up for the queue at commit.';
COMMENT ON FUNCTION jobq._worker_poke() IS 'Internal: asks the launcher to start this database''s worker at commit.';
COMMENT ON FUNCTION jobq._check_handler(regprocedure) IS 'Internal: raises unless the function can be an in-database handler.';
COMMENT ON FUNCTION jobq._due_queues(timestamptz) IS 'Internal (worker): queues with jobs that came due since the given time.';
COMMENT ON FUNCTION jobq._next_due() IS 'Internal (worker): the earliest future run_at of a waiting job.';
COMMENT ON FUNCTION jobq._rescue(text, integer, text) IS
    'Internal (worker): returns jobs whose lease expired to retryable or dead, queue by queue; returns the number rescued.';
COMMENT ON FUNCTION jobq._prune(integer) IS
    'Internal (worker): deletes finished jobs past their queue''s retention, queue by queue; returns the number deleted.';
COMMENT ON FUNCTION jobq._check_cron(text) IS 'Internal: raises unless the text is a valid cron expression.';
COMMENT ON FUNCTION jobq._cron_next_local(text, timestamp) IS 'Internal: the next local time matching a cron expression.';
COMMENT ON FUNCTION jobq._cron_next(text, text, timestamptz) IS
    'Internal: the first tick of a cron expression in a time zone after a time, or NULL.';
COMMENT ON FUNCTION jobq._run_schedules() IS 'Internal (worker): enqueues every due tick of the periodic jobs.';
COMMENT ON FUNCTION jobq._created_by_restore() IS
    'Internal: whether this CREATE EXTENSION jobq runs as dump scripts run it (check_function_bodies = off).';
COMMENT ON FUNCTION jobq._tally_mark() IS 'Internal: the mark of jobq.archive_tally (-infinity before the first advance).';
COMMENT ON FUNCTION jobq._tally_forget(text, text, timestamptz, bigint) IS
    'Internal: takes deleted archive rows off jobq.archive_tally.';
COMMENT ON FUNCTION jobq._tally_advance() IS
    'Internal (worker): moves the mark of jobq.archive_tally forward, tallying the rows finished meanwhile.';
COMMENT ON FUNCTION jobq._tally_rebuild() IS
    'Counts jobq.archive_tally again from the whole archive, after finished jobs were deleted by hand.';
