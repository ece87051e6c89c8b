# Lease rescue by the background worker: after an immediate stop (a crash
# from the database's point of view) and a start, expired leases are
# reconciled — back to retryable with the attempt counted, or dead at
# max_attempts, each with a "lease expired" error naming the worker; a late
# settle from the old lease holder changes nothing; one queue whose rescue
# fails never holds up another's; and an ERROR inside a maintenance step is
# logged and retried without any crash restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker_rescue');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.worker_restart_delay = '200ms'
jobq.rescue_interval = '200ms'
jobq.naptime = '300ms'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION jobq;
    SELECT jobq.create_queue('work', max_attempts => 3, backoff_base => '1 hour', backoff_max => '2 hours',
                             backoff_jitter => 0);
    SELECT jobq.create_queue('last', max_attempts => 1);
    SELECT jobq.enqueue('work', jsonb_build_object('n', g)) FROM generate_series(1, 10) g;
    SELECT jobq.enqueue('last', '{"only": "once"}');
});

# Claim everything with a short lease, remember one token, then crash.
my $token = $node->safe_psql('postgres', q{
    SELECT max(lease_token) FROM jobq.claim('{work,last}', 'crashing-runner', 100, lease => '2 seconds')});
my $some_id = $node->safe_psql('postgres', q{SELECT min(id) FROM jobq.job WHERE queue = 'work'});
$node->stop('immediate');
my $t0 = time;
$node->start;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM jobq.job WHERE state = 'running'}),
    'expired leases rescued after immediate stop and start');
note sprintf('start -> all leases reconciled: %.0f ms (leases were 2 s)', (time - $t0) * 1000);

my $pid = $node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()');
is($node->safe_psql('postgres', q{
    SELECT count(*) FILTER (WHERE state = 'retryable' AND attempt = 1 AND run_at > now() + interval '30 minutes'),
           count(*) FILTER (WHERE errors -> -1 ->> 'error' = 'lease expired (rescued by worker ' || }
        . $pid . q{ || ')')
    FROM jobq.job WHERE queue = 'work'}),
    '10|10', 'retryable with the attempt counted, backoff applied, error names the rescuing worker');
is($node->safe_psql('postgres', q{
    SELECT state, attempt, jsonb_array_length(errors), errors -> -1 ->> 'error' LIKE 'lease expired%'
    FROM jobq.jobs WHERE queue = 'last'}),
    'dead|1|1|t', 'a job at max_attempts goes dead with its error kept');

# The stale runner's settle calls are refused.
is($node->safe_psql('postgres', qq{SELECT count(*) FROM jobq.complete(ARRAY[$some_id]::bigint[], ARRAY[$token]::bigint[])}),
    '0', 'late complete from the old lease holder changes nothing');
is($node->safe_psql('postgres', qq{SELECT jobq.fail($some_id, $token, 'late') IS NULL}), 't',
    'late fail from the old lease holder changes nothing');

# Rescue does not touch a job re-claimed with a new lease, nor one being
# settled (row locked): claim again with a long lease, complete it, and
# check the rescuer left it alone.
$node->safe_psql('postgres', q{UPDATE jobq.job SET run_at = now() WHERE queue = 'work'});
my $fresh = $node->safe_psql('postgres',
    q{SELECT count(*) FROM jobq.claim('{work}', 'second-runner', 100, lease => '1 hour')});
is($fresh, '10', 'jobs can be claimed again');
sleep 1;
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.job WHERE queue = 'work' AND state = 'running'}),
    '10', 'rescuer leaves unexpired leases alone');

# One queue's failing rescue never stops another's: the archive refuses
# dead jobs, so rescuing queue "last" fails on every pass; the worker warns
# and rescues queue "work" meanwhile.
$node->safe_psql('postgres', q{
    ALTER TABLE jobq.archive ADD CONSTRAINT refuse_dead CHECK (state <> 'dead') NOT VALID;
    SELECT jobq.enqueue('last', '{"poison": true}');
    SELECT count(*) FROM jobq.claim('{last}', 'runner', 1, lease => '1 second');
});
my $offset = -s $node->logfile;
ok($node->wait_for_log(qr/lease rescue skipped queue "last": .*violates check constraint "refuse_dead"/, $offset),
    'the failing queue is logged');
$node->safe_psql('postgres', q{
    SELECT jobq.create_queue('fine', backoff_base => '1 hour', backoff_max => '1 hour');
    SELECT jobq.enqueue('fine', '{}');
    SELECT count(*) FROM jobq.claim('{fine}', 'runner', 1, lease => '1 second');
});
ok($node->poll_query_until('postgres',
    q{SELECT state = 'retryable' FROM jobq.job WHERE queue = 'fine'}),
    'another queue is rescued while one fails');
is($node->safe_psql('postgres', q{SELECT state FROM jobq.jobs WHERE payload = '{"poison": true}'}),
    'running', 'the failing queue\'s job is left as it was');

# An ERROR inside a maintenance step (its function is gone): the worker
# logs it and carries on.
$offset = -s $node->logfile;
$node->safe_psql('postgres', q{ALTER FUNCTION jobq._rescue(text, integer, text) RENAME TO _rescue_off});
ok($node->wait_for_log(qr/function jobq\._rescue\(.*\) does not exist/, $offset),
    'the failing maintenance step is logged');
ok($node->poll_query_until('postgres', 'SELECT step_errors >= 2 FROM jobq.worker_status()'),
    'the step is retried at its next turn');
is($node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()'), $pid,
    'the worker survives ERRORs in a step (same process)');

# Wake-ups keep working meanwhile.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN jobq_wakeup');
$node->safe_psql('postgres', q{SELECT jobq.create_queue('other'); SELECT jobq.enqueue('other', '{}')});
my $seen = 0;
for (1 .. 50) {
    my $out = $listener->query('SELECT 1');
    if ($out =~ /payload "other"/) { $seen = 1; last; }
    select(undef, undef, undef, 0.1);
}
ok($seen, 'wake-ups still sent while another step fails');
$listener->quit;

$node->safe_psql('postgres', q{
    ALTER FUNCTION jobq._rescue_off(text, integer, text) RENAME TO _rescue;
    ALTER TABLE jobq.archive DROP CONSTRAINT refuse_dead;
});
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 2 FROM jobq.archive WHERE queue = 'last' AND state = 'dead'}),
    'once the cause is gone the step succeeds');

$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes|server process .* was terminated/,
    'no crash restart in the server log');

done_testing();
