# A database using jobq in every way, for the lifecycle tests (pg_upgrade,
# dump routes, extension upgrade): fill it, take snapshots of what it holds
# (to compare before and after), and check that its jobs run on afterwards.
#
# Only the SQL API of jobq 0.1.0 is used, so the extension-upgrade test can
# fill a 0.1.0 install the same way.
package JobqLifecycle;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(fill_jobq jobs_snapshot queues_snapshot schedules_snapshot duplicate_ids
  check_runs_on);

# fill_jobq($node, $db) -> { running_id, running_token }
# Queues: mail (jobs in every state: available, scheduled, retryable,
# running with a one-hour lease, completed, cancelled, dead), ticks (a
# schedule firing every second) and inproc (an in-database handler owned by
# the role lc_app, paused with two jobs waiting).
sub fill_jobq {
    my ($node, $db) = @_;
    $node->safe_psql($db, q{
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lc_app') THEN
                CREATE ROLE lc_app LOGIN;
            END IF;
        END $$;
        GRANT jobq_admin TO lc_app;
        CREATE SCHEMA app AUTHORIZATION lc_app;
        SET ROLE lc_app;
        CREATE TABLE app.effects (n integer);
        CREATE FUNCTION app.apply(p jsonb) RETURNS jsonb LANGUAGE sql AS $f$
            INSERT INTO app.effects VALUES ((p ->> 'n')::integer) RETURNING jsonb_build_object('applied', n)
        $f$;
        SELECT jobq.create_queue('inproc', handler => 'app.apply(jsonb)'::regprocedure);
        SELECT jobq.pause('inproc');
        SELECT jobq.enqueue('inproc', jsonb_build_object('n', g)) FROM generate_series(1, 2) g;
        RESET ROLE;
        SELECT jobq.create_queue('mail', max_attempts => 5, lease => '1 hour');
        SELECT jobq.create_queue('ticks');
        SELECT jobq.enqueue('mail', jsonb_build_object('n', g)) FROM generate_series(1, 7) g;
        SELECT jobq.enqueue('mail', '{"later": true}', run_at => now() + interval '1 day',
                            unique_key => 'later');
        SELECT count(*) FROM jobq.claim('{mail}', 'fill', 4);
    });
    my @held = map { [ split /\|/ ] } split /\n/, $node->safe_psql($db,
        q{SELECT id || '|' || lease_token FROM jobq.job WHERE state = 'running' ORDER BY id});
    die "fill_jobq: expected 4 running jobs, got " . scalar(@held) unless @held == 4;
    my ($done, $dead, $retry, $running) = @held;
    $node->safe_psql($db, qq{
        SELECT jobq.complete(ARRAY[$done->[0]]::bigint[], ARRAY[$done->[1]]::bigint[]);
        SELECT jobq.fail($dead->[0], $dead->[1], 'broken', discard => true);
        SELECT jobq.fail($retry->[0], $retry->[1], 'try later', retry_in => '1 hour');
        SELECT jobq.cancel((SELECT min(id) FROM jobq.job WHERE queue = 'mail' AND state = 'available'));
        SELECT jobq.schedule('every-second', '* * * * * *', 'ticks', '{"tick": true}');
    });
    my $states = $node->safe_psql($db,
        q{SELECT string_agg(DISTINCT state, ',' ORDER BY state) FROM jobq.jobs WHERE queue = 'mail'});
    die "fill_jobq: states are $states"
      unless $states eq 'available,cancelled,completed,dead,retryable,running,scheduled';
    return { running_id => $running->[0], running_token => $running->[1] };
}

# Every job outside the ticks queue (whose schedule keeps adding jobs), with
# everything a job carries, lease tokens included; one line per job.
sub jobs_snapshot {
    my ($node, $db) = @_;
    return $node->safe_psql($db, q{
        SELECT string_agg(pg_catalog.format('%s|%s|%s|%s/%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', v.id, v.queue,
                   v.state, v.attempt, v.max_attempts, v.priority, v.payload, v.run_at, v.created_at,
                   v.finished_at, v.unique_key, v.lease_expires_at, v.errors, v.result,
                   (SELECT j.lease_token FROM jobq.job j WHERE j.id = v.id)), E'\n' ORDER BY v.id)
        FROM jobq.jobs v WHERE v.queue <> 'ticks'});
}

# Every queue with all its settings (the handler as text: regprocedure under
# 0.1.0 and text since print the same).
sub queues_snapshot {
    my ($node, $db) = @_;
    return $node->safe_psql($db, q{
        SELECT string_agg(pg_catalog.format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', name,
                   max_attempts, backoff_base, backoff_max, backoff_jitter, lease, retention,
                   concurrency, handler::text, handler_timeout, paused, owner, created_at),
                   E'\n' ORDER BY name)
        FROM jobq.queue});
}

# Schedules without the columns that change each time they fire.
sub schedules_snapshot {
    my ($node, $db) = @_;
    return $node->safe_psql($db, q{
        SELECT string_agg(pg_catalog.format('%s|%s|%s|%s|%s|%s|%s|%s', name, cron, timezone, queue,
                   payload, priority, max_attempts, owner), E'\n' ORDER BY name)
        FROM jobq.periodic});
}

# Ids present more than once across the live and the finished jobs.
sub duplicate_ids {
    my ($node, $db) = @_;
    return $node->safe_psql($db, q{
        SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM (
            SELECT id FROM (SELECT id FROM jobq.job UNION ALL SELECT id FROM jobq.archive) a
            GROUP BY id HAVING count(*) > 1) d});
}

# check_runs_on($node, $db, $label, $filled): after an upgrade or a restore
# the worker runs, the schedule fires, waiting jobs are claimed and
# completed, the job that was running completes with its lease token, the
# in-database handler runs its jobs, and new ids and lease tokens continue
# after the old ones.
sub check_runs_on {
    my ($node, $db, $label, $filled) = @_;
    ok($node->poll_query_until($db, q{SELECT running FROM jobq.worker_status()}),
        "$label: the worker runs");
    my $max_id = $node->safe_psql($db,
        q{SELECT max(id) FROM (SELECT id FROM jobq.job UNION ALL SELECT id FROM jobq.archive) a});
    my $max_token = $node->safe_psql($db, q{SELECT coalesce(max(lease_token), 0) FROM jobq.job});
    ok($node->poll_query_until($db, qq{SELECT count(*) > 0 FROM jobq.job WHERE queue = 'ticks' AND id > $max_id}),
        "$label: the schedule fires");
    is($node->safe_psql($db, qq{
            SELECT count(*) FROM jobq.complete(ARRAY[$filled->{running_id}]::bigint[],
                                               ARRAY[$filled->{running_token}]::bigint[])}),
        '1', "$label: the running job completes with its lease token");
    my $claimed = $node->safe_psql($db, q{
        WITH c AS (SELECT * FROM jobq.claim('{mail}', 'after', 10))
        SELECT count(*) || '|' || min(lease_token) || '|' ||
               (SELECT count(*) FROM jobq.complete((SELECT array_agg(id) FROM c),
                                                   (SELECT array_agg(lease_token) FROM c)))
        FROM c});
    my ($n, $min_token, $completed) = split /\|/, $claimed;
    is("$n|$completed", '2|2', "$label: the waiting jobs are claimed and completed");
    cmp_ok($min_token, '>', $max_token, "$label: new lease tokens continue after the old ones");
    my $new_id = $node->safe_psql($db, q{SELECT jobq.enqueue('mail', '{"new": true}')});
    cmp_ok($new_id, '>', $max_id, "$label: new job ids continue after the old ones");
    $node->safe_psql($db, q{SELECT jobq.resume('inproc')});
    ok($node->poll_query_until($db,
            q{SELECT count(*) = 2 FROM jobq.archive WHERE queue = 'inproc' AND state = 'completed'}),
        "$label: the in-database handler runs its jobs");
    is($node->safe_psql($db, q{SELECT string_agg(n::text, ',' ORDER BY n) FROM app.effects}), '1,2',
        "$label: with their effects");
    is(duplicate_ids($node, $db), '', "$label: no job id is used twice");
}

1;
