# Periodic jobs: each tick of a schedule is enqueued exactly once, also
# across an immediate stop and a restart; ticks missed while the server was
# down are coalesced into one job (the documented policy); unschedule stops
# it; a schedule whose enqueue fails records last_error and the others go on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $node = PostgreSQL::Test::Cluster->new('worker_schedule');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.worker_restart_delay = '200ms'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION jobq;
    SELECT jobq.create_queue('ticks');
    SELECT jobq.schedule('every-second', '* * * * * *', 'ticks', '{"kind": "tick"}');
});

# Ticks as epoch seconds, from the unique key every scheduled job carries.
my $ticks_sql = q{
    SELECT string_agg(extract(epoch FROM replace(split_part(unique_key, ':', 3) || ':' ||
                      split_part(unique_key, ':', 4) || ':' || split_part(unique_key, ':', 5), 'T', ' ')::timestamptz)::bigint::text,
                      ',' ORDER BY id)
    FROM jobq.jobs WHERE queue = 'ticks'};

sleep 3.5;
$node->stop('immediate');
sleep 2.5;    # ticks missed while down
$node->start;
sleep 3.5;
$node->safe_psql('postgres', q{SELECT jobq.unschedule('every-second')});
my @ticks = split /,/, $node->safe_psql('postgres', $ticks_sql);
note 'ticks: ' . join(' ', map { $_ - $ticks[0] } @ticks);

my %count;
$count{$_}++ for @ticks;
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'no tick enqueued twice');
cmp_ok(scalar @ticks, '>=', 5, 'ticks were enqueued before and after the restart');
my @gaps = map { $ticks[$_] - $ticks[ $_ - 1 ] } 1 .. $#ticks;
is(scalar(grep { $_ <= 0 } @gaps), 0, 'ticks strictly increase');
my $big = grep { $_ > 1 } @gaps;
cmp_ok($big, '<=', 1, 'every tick consecutive except one gap for the downtime (coalesced)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.jobs WHERE queue = 'ticks' AND payload <> '{"kind": "tick"}'}),
    '0', 'each job has the schedule payload');

my $count_after_unschedule = $node->safe_psql('postgres', q{SELECT count(*) FROM jobq.jobs WHERE queue = 'ticks'});
sleep 1.5;
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.jobs WHERE queue = 'ticks'}),
    $count_after_unschedule, 'unschedule stops the ticks');

# A failing schedule records its error and does not stop the others.
$node->safe_psql('postgres', q{
    SELECT jobq.create_queue('strict');
    SELECT jobq.schedule('broken', '* * * * * *', 'strict', '{}', max_attempts => 5);
    SELECT jobq.schedule('fine', '* * * * * *', 'ticks', '{"kind": "fine"}');
    ALTER TABLE jobq.job ADD CONSTRAINT no_strict CHECK (queue <> 'strict') NOT VALID;
});
ok($node->poll_query_until('postgres',
    q{SELECT last_error LIKE '%no_strict%' FROM jobq.schedules WHERE name = 'broken'}),
    'a failing tick records last_error');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) >= 2 FROM jobq.jobs WHERE payload = '{"kind": "fine"}'}),
    'other schedules keep running');
my $pid = $node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()');
$node->safe_psql('postgres', q{ALTER TABLE jobq.job DROP CONSTRAINT no_strict});
ok($node->poll_query_until('postgres',
    q{SELECT last_error IS NULL AND last_job_id IS NOT NULL FROM jobq.schedules WHERE name = 'broken'}),
    'the schedule recovers when its queue accepts jobs again');
is($node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()'), $pid, 'same worker process throughout');

# A C++ exception inside a worker step: a cron expression corrupted behind
# jobq.schedule()'s back makes the C++ parser throw while the worker
# evaluates the schedule. It becomes an ordinary ERROR, recorded on the
# schedule; the worker and the server carry on.
$node->safe_psql('postgres', q{UPDATE jobq.periodic SET cron = 'not a cron' WHERE name = 'broken'});
ok($node->poll_query_until('postgres',
    q{SELECT last_error LIKE 'invalid cron expression%' FROM jobq.schedules WHERE name = 'broken'}),
    'a C++ exception in the cron parser is recorded as the error of the schedule');
is($node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()'), $pid,
    'the worker survives a C++ exception in a step');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) >= 4 FROM jobq.jobs WHERE payload = '{"kind": "fine"}'}),
    'other schedules keep running after it');

# Dropping the queue drops its schedules.
$node->safe_psql('postgres', q{SELECT jobq.drop_queue('strict', force => true)});
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.schedules WHERE name = 'broken'}), '0',
    'drop_queue removes the schedules of the queue');

$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash restart in the server log');
done_testing();
