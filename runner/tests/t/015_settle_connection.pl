# Claims and settles travel on separate connections: in pg_stat_activity
# the runner has three backends (work, settle, listen; all with
# application_name jobq-runner), and the backend that claims never settles.
# Then the settle backend alone is terminated again and again during a
# drain: the work and listen connections are untouched, settles whose
# outcome was lost are re-sent on the new settle connection, and every job
# is completed exactly once (archived once, attempt 1, its handler run
# once: no claim was lost, so no lease had to be rescued). Back-pressure:
# while the settle backend waits on a lock, claims go on only until a queue
# holds twice its concurrency (running plus unsettled), then wait.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('settle_conn');
# A minute of lease: a job runs twice only if a claim or a lease is lost,
# and killing the settle backend must lose neither.
create_queue($node, $_, lease => "'1 minute'") for qw(d bp);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", "#!/bin/sh\necho \"\$JOBQ_JOB_ID\" >> $ledger\n");
my $port = free_port();
my $conc = 16;
my $runner = start_runner($node, <<"TOML");
[http]
listen = "127.0.0.1:$port"
[runner]
poll_interval = "500ms"
reconnect_min = "20ms"
reconnect_max = "200ms"
[queues.d]
handler = "exec"
command = ["$dir/job.sh"]
concurrency = $conc
claim_batch = 8
[queues.bp]
handler = "noop"
concurrency = 10
TOML
ok(wait_until(10, sub { (http_get($port, '/healthz'))[0] == 200 }), '/healthz is 200 once work and settle are up')
  or diag(runner_log($runner));

# The runner's backends, by the statement each last ran.
my $backends_sql = q{SELECT pid, CASE WHEN query ~ 'jobq\.claim\(' THEN 'claim'
                                      WHEN query ~ 'jobq\.(complete|fail_many|heartbeat|release)\(' THEN 'settle'
                                      WHEN query ~ '^LISTEN' THEN 'listen' ELSE 'other' END
                       FROM pg_stat_activity WHERE application_name = 'jobq-runner'};
sub backends {
    return map { [ split /\|/ ] } split /\n/, $node->safe_psql('postgres', $backends_sql);
}

# Part 1: a drain shows which backend does what.
my $total = 400;
$node->safe_psql('postgres', "SELECT jobq.enqueue('d', jsonb_build_object('n', g)) FROM generate_series(1, $total) g");
my (%role_pids, $max_held, $samples);
$max_held = 0;
wait_until(60, sub {
    for my $b (backends()) { $role_pids{ $b->[1] }{ $b->[0] } = 1 }
    my $held = $node->safe_psql('postgres', "SELECT count(*) FROM jobq.job WHERE state = 'running'");
    $max_held = $held if $held > $max_held;
    $samples++;
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'd'") == $total;
}) or diag(runner_log($runner));
# Once more after the drain: a drain can end between two samples, and an
# idle backend still shows its last statement.
my @backends = backends();
for my $b (@backends) { $role_pids{ $b->[1] }{ $b->[0] } = 1 }
is(scalar(@backends), 3, 'the runner has three backends') or diag(explain(\@backends));
is(scalar(keys %{ $role_pids{claim} // {} }), 1, 'one backend claims');
is(scalar(keys %{ $role_pids{settle} // {} }), 1, 'one backend settles');
is(scalar(keys %{ $role_pids{listen} // {} }), 1, 'one backend listens');
my %claim_pids = %{ $role_pids{claim} // {} };
ok(!grep({ $claim_pids{$_} } keys %{ $role_pids{settle} // {} }), 'the claiming backend never settled');
cmp_ok($max_held, '<=', 2 * $conc, "at most 2 x concurrency held at once ($max_held in $samples samples)");
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'd' AND state = 'completed'"), $total,
   "the first $total jobs completed");

# Part 2: terminate only the settle backend, again and again, mid-drain.
unlink $ledger;
my $log_before = length(runner_log($runner));
my $more = 1500;
my @ids = split /\n/, $node->safe_psql('postgres',
    "SELECT jobq.enqueue('d', jsonb_build_object('m', g)) FROM generate_series(1, $more) g");
my $done_sql = "SELECT count(*) FROM jobq.archive WHERE queue = 'd' AND id >= $ids[0]";
my ($kills, %killed) = (0);
my $t0 = time;
while (time < $t0 + 20 && $node->safe_psql('postgres', $done_sql) < $more * 0.8) {
    for my $b (grep { $_->[1] eq 'settle' } backends()) {
        next if $killed{ $b->[0] }++;
        $kills += $node->safe_psql('postgres', "SELECT count(*) FROM pg_terminate_backend($b->[0]) t WHERE t");
    }
    sleep 0.15;
}
cmp_ok($kills, '>=', 3, "terminated the settle backend $kills times mid-drain");
ok(wait_until(60, sub { $node->safe_psql('postgres', $done_sql) == $more }), "all $more jobs archived")
  or diag(runner_log($runner));
diag(sprintf 'figures: %d settle backend kills; drained in %.1f s', $kills, time - $t0);
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job"), 0, 'nothing left running, waiting or retrying');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'd' AND id >= $ids[0] AND state = 'completed'"),
   $more, 'every one completed');
is($node->safe_psql('postgres', "SELECT count(*) FROM (SELECT id FROM jobq.archive GROUP BY id HAVING count(*) > 1) d"), 0,
   'none archived twice');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'd' AND id >= $ids[0] AND attempt <> 1"), 0,
   'every job on its first attempt: no claim was lost');
my @runs = read_lines($ledger);
my %seen;
$seen{$_}++ for @runs;
is(scalar(keys %seen), $more, 'every handler ran');
is(scalar(grep { $seen{$_} > 1 } keys %seen), 0, 'and none ran twice');

my $log = substr(runner_log($runner), $log_before);
my $lost = () = $log =~ /msg="database connection lost" conn=settle/g;
cmp_ok($lost, '>=', $kills, "the runner saw the settle connection lost $lost times");
like($log, qr/msg="reconnected to database" conn=settle/, 'and reconnected it');
unlike($log, qr/msg="database connection lost" conn=(?:work|listen)/, 'the work and listen connections were never lost');
unlike($log, qr/level=error/, 'no error logged');
my $resent = () = $log =~ /not applied when re-sent after a lost connection/g;
diag("figures: $resent re-sent settles reported not applied (their first send had committed)");
my (undef, $metrics) = http_get($port, '/metrics');
my ($reconnects) = $metrics =~ /^jobq_runner_reconnects_total (\d+)/m;
cmp_ok($reconnects // 0, '>=', $kills, "reconnects counted ($reconnects)");
like($metrics, qr/^jobq_runner_jobs_running\{queue="d"\} 0$/m, 'no handler running');
like($metrics, qr/^jobq_runner_jobs_lost_total\{queue="d"\} 0$/m, 'none stopped');
like($metrics, qr/^jobq_runner_database_up 1$/m, 'database_up is 1 again');

# Part 3: settles blocked (a session holds a lock the archive insert waits
# for); the noop handlers end at once, so only back-pressure stops claims.
my $locker = start_process("$dir/locker.log", [
    'psql', '-X', '-d', $node->connstr('postgres'), '-c', 'BEGIN',
    '-c', 'LOCK TABLE jobq.archive IN EXCLUSIVE MODE', '-c', 'SELECT pg_sleep(4)', '-c', 'COMMIT' ]);
ok(wait_until(10, sub { $node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE relation = 'jobq.archive'::regclass
                                                      AND mode = 'ExclusiveLock' AND granted") == 1 }),
   'a session holds the archive lock');
my $bp = 200;
$node->safe_psql('postgres', "SELECT jobq.enqueue('bp', jsonb_build_object('n', g)) FROM generate_series(1, $bp) g");
my $held_sql = "SELECT count(*) FROM jobq.job WHERE queue = 'bp' AND state = 'running'";
ok(wait_until(5, sub { $node->safe_psql('postgres', $held_sql) >= 20 }), 'the runner claimed while settles waited');
my @held;
for (1 .. 10) {
    push @held, $node->safe_psql('postgres', $held_sql);
    sleep 0.1;
}
is_deeply([ grep { $_ != 20 } @held ], [], 'then held exactly 2 x concurrency (20) and claimed no more')
  or diag("held: @held");
like($node->safe_psql('postgres', "SELECT string_agg(wait_event_type, ',') FROM pg_stat_activity
                                    WHERE application_name = 'jobq-runner' AND query ~ 'jobq[.]complete[(]'"),
     qr/^Lock$/, 'the settle backend is the one waiting');
ok(wait_until(30, sub { $node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'bp'") == $bp }),
   "once the lock was gone, all $bp jobs completed") or diag(runner_log($runner));
stop_process($locker);    # done by now: its pg_sleep is over
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'bp' AND attempt <> 1"), 0,
   'each on its first attempt');
unlike(runner_log($runner), qr/level=error/, 'no error logged');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
