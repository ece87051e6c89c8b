# In-database handlers: the handler's writes and the job's completion commit
# together; an ERROR rolls the writes back and fails the job with backoff
# until it is dead; the handler runs as the queue's owner (never as the
# superuser, and cannot SET ROLE back); handler_timeout cancels it; a
# handler worker killed in the middle of a job is replaced and the job runs
# again; the drain rate of no-op jobs is reported.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker_handler');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.worker_restart_delay = '200ms'
jobq.rescue_interval = '200ms'
jobq.naptime = '200ms'
jobq.handler_workers = 2
jobq.handler_batch_size = 50
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION jobq;
    CREATE ROLE app_owner LOGIN;
    GRANT jobq_admin TO app_owner;
    CREATE SCHEMA app AUTHORIZATION app_owner;
});
$node->safe_psql('postgres', q{
    SET ROLE app_owner;
    CREATE TABLE app.effects (id serial PRIMARY KEY, job jsonb, who text);
    CREATE FUNCTION app.work(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO app.effects (job, who) VALUES (p, current_user);
        IF p ? 'fail' THEN RAISE EXCEPTION 'handler failed: %', p ->> 'fail'; END IF;
        IF p ? 'sleep' THEN PERFORM pg_sleep((p ->> 'sleep')::float8); END IF;
        IF p ? 'escalate' THEN EXECUTE 'SET ROLE ' || (p ->> 'escalate'); END IF;
        RETURN jsonb_build_object('ran_as', current_user);
    END $$;
    CREATE FUNCTION app.noop(p jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
    SELECT jobq.create_queue('inproc', handler => 'app.work(jsonb)'::regprocedure, max_attempts => 3,
                             backoff_base => '100 milliseconds', backoff_max => '200 milliseconds',
                             handler_timeout => '1 second');
    SELECT jobq.create_queue('noop', handler => 'app.noop(jsonb)'::regprocedure);
});

sub job_state {
    my ($id) = @_;
    return $node->safe_psql('postgres', qq{SELECT state FROM jobq.jobs WHERE id = $id});
}

# Commit: writes and completion together, run as the owner.
my $ok_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"n": 1}')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'completed' FROM jobq.jobs WHERE id = $ok_id}),
    'handler job completes');
is($node->safe_psql('postgres', qq{SELECT result ->> 'ran_as' FROM jobq.jobs WHERE id = $ok_id}), 'app_owner',
    'handler ran as the queue owner; its result is stored');
is($node->safe_psql('postgres', q{SELECT count(*), min(who) FROM app.effects WHERE job = '{"n": 1}'}), '1|app_owner',
    'its write committed once');

# Rollback: ERROR undoes the writes; the job fails with backoff, then dies.
my $bad_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"fail": "always"}')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $bad_id}),
    'failing handler job goes dead after max_attempts');
is($node->safe_psql('postgres', qq{
    SELECT attempt, jsonb_array_length(errors), errors -> -1 ->> 'error' FROM jobq.jobs WHERE id = $bad_id}),
    '3|3|handler failed: always', 'each attempt failed with the handler error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM app.effects WHERE job ? 'fail'}), '0',
    'the failed attempts left no writes');

# No way back to the superuser.
my $esc_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"escalate": "postgres"}', max_attempts => 1)});
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $esc_id}),
    'a handler trying SET ROLE fails');
like($node->safe_psql('postgres', qq{SELECT errors -> -1 ->> 'error' FROM jobq.jobs WHERE id = $esc_id}),
    qr/cannot set parameter "role" within security-/, 'SET ROLE is refused');

# A superuser cannot create a handler queue (the handler would run as it)...
my ($rc, $out, $err) = $node->psql('postgres', q{
    SELECT jobq.create_queue('as_super', handler => 'app.work(jsonb)'::regprocedure, max_attempts => 1)});
like($err, qr/in-database handlers cannot run as superuser/, 'a superuser-owned handler queue is refused at creation');
# ...and if ownership passes to a superuser later, its handler never runs.
$node->safe_psql('postgres', q{
    SET ROLE app_owner;
    SELECT jobq.create_queue('as_super', handler => 'app.work(jsonb)'::regprocedure, max_attempts => 1);
    RESET ROLE;
    UPDATE jobq.queue SET owner = current_user WHERE name = 'as_super';});
my $super_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('as_super', '{"super": 1}')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $super_id}),
    'a handler queue owned by a superuser fails its jobs');
is($node->safe_psql('postgres', qq{SELECT errors -> -1 ->> 'error' FROM jobq.jobs WHERE id = $super_id}),
    'in-database handlers never run as a superuser', 'with a clear error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM app.effects WHERE job ? 'super'}), '0',
    'and the handler did not run');

# handler_timeout.
my $slow_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"sleep": 30}', max_attempts => 1)});
my $t0 = time;
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $slow_id}),
    'a handler over handler_timeout fails');
cmp_ok(time - $t0, '<', 10, 'cancelled after about handler_timeout');
like($node->safe_psql('postgres', qq{SELECT errors -> -1 ->> 'error' FROM jobq.jobs WHERE id = $slow_id}),
    qr/statement timeout/, 'with the statement timeout error');

# A handler worker terminated in the middle of a job: the job runs again.
$node->safe_psql('postgres', q{SELECT jobq.alter_queue('inproc', handler_timeout => '1 minute')});
my $kill_id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"sleep": 2, "k": 1}')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'running' FROM jobq.jobs WHERE id = $kill_id}),
    'long handler job running');
my $hpid = $node->safe_psql('postgres', q{
    SELECT pid FROM pg_stat_activity WHERE backend_type = 'jobq handler' AND state = 'active'
    AND query NOT LIKE '%claim%' LIMIT 1});
$node->safe_psql('postgres', qq{SELECT pg_terminate_backend($hpid)}) if $hpid;
ok($node->poll_query_until('postgres', qq{SELECT state = 'completed' FROM jobq.jobs WHERE id = $kill_id}),
    'the job completes after its handler worker was terminated');
is($node->safe_psql('postgres', qq{SELECT attempt >= 2, count(*) OVER () FROM jobq.jobs WHERE id = $kill_id}),
    't|1', 'it ran again with the attempt counted');
is($node->safe_psql('postgres', q{SELECT count(*) FROM app.effects WHERE job = '{"sleep": 2, "k": 1}'}), '1',
    'only the completed run left its write');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jobq handler'}),
    'handler workers are back to jobq.handler_workers');

# SIGHUP: fewer handler workers, then back.
$node->safe_psql('postgres', 'ALTER SYSTEM SET jobq.handler_workers = 1');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq handler'}),
    'jobq.handler_workers lowered on reload');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jobq.handler_workers');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'jobq handler'}),
    'and raised again');

# The handler is stored as its schema-qualified signature (text: pg_upgrade
# refuses reg* columns), checked at create_queue / alter_queue.
is($node->safe_psql('postgres', q{SELECT handler FROM jobq.queue WHERE name = 'inproc'}),
    'app.work(jsonb)', 'handler stored as its signature');
my ($rc, $stdout, $stderr) = $node->psql('postgres', q{
    SET ROLE app_owner;
    SELECT jobq.create_queue('nofn', handler => 'app.missing(jsonb)')});
like($stderr, qr/function "app.missing\(jsonb\)" does not exist/, 'a missing handler is refused');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.queue WHERE name = 'nofn'}), '0',
    'and no queue is created');
($rc, $stdout, $stderr) = $node->psql('postgres', q{
    BEGIN;
    SET ROLE app_owner;
    UPDATE jobq.queue SET handler = 'app.missing(jsonb)' WHERE name = 'noop';
    SELECT jobq.alter_queue('noop', lease => '1 minute');
    ROLLBACK;});
like($stderr, qr/handler function app.missing\(jsonb\) does not exist/,
    'alter_queue refuses a stored handler that does not resolve');
# A dropped handler function fails its jobs with a clear error; the worker
# and the other handler queues go on.
$node->safe_psql('postgres', q{
    SET ROLE app_owner;
    CREATE FUNCTION app.doomed(p jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
    SELECT jobq.create_queue('doomed', handler => 'app.doomed(jsonb)'::regprocedure, max_attempts => 2,
                             backoff_base => '100 milliseconds', backoff_max => '100 milliseconds');
    SELECT jobq.pause('doomed');
    DROP FUNCTION app.doomed(jsonb);
});
my $doomed = $node->safe_psql('postgres', q{SELECT jobq.enqueue('doomed', '{}')});
$node->safe_psql('postgres', q{SELECT jobq.resume('doomed')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $doomed}),
    'a job whose handler function was dropped goes dead');
like($node->safe_psql('postgres', qq{SELECT errors -> -1 ->> 'error' FROM jobq.jobs WHERE id = $doomed}),
    qr/^handler function app.doomed\(jsonb\) of queue "doomed" does not exist$/, 'with a clear error');
# A signature written into jobq.queue by hand that does not even parse fails
# that queue's jobs only.
$node->safe_psql('postgres', q{
    SET ROLE app_owner;
    SELECT jobq.create_queue('garbled', handler => 'app.noop(jsonb)'::regprocedure, max_attempts => 1);
    SELECT jobq.pause('garbled');
    UPDATE jobq.queue SET handler = 'app.noop(jsonb' WHERE name = 'garbled';
});
my $garbled = $node->safe_psql('postgres', q{SELECT jobq.enqueue('garbled', '{}')});
$node->safe_psql('postgres', q{SELECT jobq.resume('garbled')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'dead' FROM jobq.jobs WHERE id = $garbled}),
    'a job whose stored handler does not parse goes dead');
my $after = $node->safe_psql('postgres', q{SELECT jobq.enqueue('inproc', '{"n": 2}')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'completed' FROM jobq.jobs WHERE id = $after}),
    'other handler queues keep running');

# Drain rate of no-op jobs.
my $n = 20000;
$node->safe_psql('postgres', q{SELECT jobq.pause('noop')});
$node->safe_psql('postgres', qq{SELECT count(*) FROM jobq.enqueue_many('noop',
    (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, $n) g))});
$t0 = time;
$node->safe_psql('postgres', q{SELECT jobq.resume('noop')});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM jobq.job WHERE queue = 'noop'}),
    "drained $n no-op jobs");
my $elapsed = time - $t0;
note sprintf('in-database handler drain: %d no-op jobs in %.2f s = %.0f jobs/s (2 handler workers, batch 50)',
    $n, $elapsed, $n / $elapsed);
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.archive WHERE queue = 'noop' AND state = 'completed'}),
    $n, 'every no-op job completed exactly once');

$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash restart in the server log');
done_testing();
