# Lost acknowledgement of a completion (RELIABILITY.md test 6): a proxy
# between the runner and the cluster forwards the runner's first
# jobq.complete statement, lets the server commit it, and then closes both
# sides without passing the reply on. The runner cannot know whether its
# completion was applied. It must reconnect by itself and send the
# completion again; the re-sent completion is not applied and harms
# nothing: the job is completed exactly once, the handler ran once, nothing
# is left running, and later jobs keep flowing. Then the same at the SQL
# level: a second jobq.complete with the same id and token changes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use lib "$FindBin::RealBin/../../../test/perl";
use JobqChaos ();    # check_server_log
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('lostack');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->restart;
create_queue($node, 'ack');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", <<"SH");
#!/bin/sh
echo "S \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$JOBQ_LEASE_TOKEN" >> $ledger
echo "{\\"job\\": \$JOBQ_JOB_ID}"
echo "F \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$JOBQ_LEASE_TOKEN" >> $ledger
SH

# The proxy cuts the connection after the first completion only; every
# later statement (the re-send included) passes unchanged.
my $events = "$dir/proxy.events";
my $proxy = start_process("$dir/proxy.log", [
    $^X, "$FindBin::RealBin/../../../test/perl/pg_proxy.pl",
    '--target', $node->host . '/.s.PGSQL.' . $node->port,
    '--port-file', "$dir/proxy.port", '--events', $events, '--cut-completions', 1 ]);
wait_until(10, sub { -s "$dir/proxy.port" }) or BAIL_OUT('the proxy did not start');
my ($proxy_port) = read_lines("$dir/proxy.port");

# (at, what, conn) of every proxy event, in order.
sub proxy_events {
    return map { my ($what, $conn, $at) = split / /; { what => $what, conn => $conn, at => $at } }
      read_lines($events);
}

my $port = free_port();
my $runner = start_runner("host=127.0.0.1 port=$proxy_port dbname=postgres", <<"TOML", '--verbose');
[http]
listen = "127.0.0.1:$port"
[runner]
poll_interval = "500ms"
reconnect_min = "50ms"
reconnect_max = "500ms"
[queues.ack]
handler = "exec"
command = ["$dir/job.sh"]
TOML

my $id = enqueue($node, 'ack');
ok(wait_until(20, sub { grep { $_->{what} eq 'cut' } proxy_events() }),
   'the proxy cut the connection after the server answered the completion')
  or diag(runner_log($runner));
my ($cut) = grep { $_->{what} eq 'cut' } proxy_events();
ok(wait_until(20, sub { runner_log($runner) =~ /completion not applied when re-sent after a lost connection.* job=$id / }),
   'the runner sent the completion again; it was reported not applied, as a re-send')
  or diag(runner_log($runner));

my $log = runner_log($runner);
unlike($log, qr/msg="job completed" job=$id /, 'the runner never saw the answer to its first completion');
like($log, qr/msg="database connection lost" conn=settle/, 'the runner noticed the lost settle connection');
like($log, qr/msg="reconnected to database" conn=settle/, 'and reconnected it by itself');
unlike($log, qr/msg="database connection lost" conn=(?:work|listen)/, 'the work and listen connections were not touched');
my ($reconnect) = grep { $_->{what} eq 'accept' && $_->{at} > $cut->{at} } proxy_events();
my ($resent) = grep { $_->{what} eq 'complete' && $_->{at} > $cut->{at} } proxy_events();
ok($reconnect && $resent && $resent->{conn} == $reconnect->{conn},
   'the completion was re-sent on the new connection');

# The completion the runner never heard about is the one that counts.
is(job_row($node, $id, 'state, attempt, result'), qq{completed|1|{"job": $id}},
   'the job is completed, attempt 1, with the handler\'s result');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE id = $id"), 1, 'archived once');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job WHERE id = $id"), 0, 'not live any more');
my $finished = $node->safe_psql('postgres', "SELECT extract(epoch FROM finished_at) FROM jobq.archive WHERE id = $id");
cmp_ok($finished, '<', $cut->{at}, 'finished before the cut: the re-send changed nothing');
my @runs = grep { /^[SF] $id / } read_lines($ledger);
is_deeply([ map { substr $_, 0, 1 } @runs ], [ 'S', 'F' ], 'the handler ran once');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job WHERE state = 'running'"), 0,
   'no job left running (no wait for a lease rescue)');

my ($status, $metrics) = http_get($port, '/metrics');
like($metrics, qr/^jobq_runner_settles_refused_total\{queue="ack"\} 1$/m, 'one settle not applied: the re-send');
like($metrics, qr/^jobq_runner_jobs_running\{queue="ack"\} 0$/m, 'the runner holds no running job');
like($metrics, qr/^jobq_runner_jobs_lost_total\{queue="ack"\} 0$/m, 'and stopped none');
is((http_get($port, '/healthz'))[0], 200, '/healthz is 200 again');
unlike(runner_log($runner), qr/level=error/, 'no error logged');

# Later jobs keep flowing through the same proxy.
my $more = 20;
my @ids = split /\n/, $node->safe_psql('postgres',
    "SELECT jobq.enqueue('ack', jsonb_build_object('n', g)) FROM generate_series(1, $more) g");
ok(wait_until(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE queue = 'ack' AND state = 'completed'")
      == $more + 1 }), "the $more later jobs completed") or diag(runner_log($runner));
like(runner_log($runner), qr/msg="job completed" job=$ids[0] /, 'their completions are acknowledged again');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE queue = 'ack' AND attempt <> 1"), 0,
   'every job on its first attempt');
my %starts;
$starts{ (split / /)[1] }++ for grep { /^S / } read_lines($ledger);
is(scalar(grep { ($starts{$_} // 0) == 1 } @ids), $more, 'each ran exactly once');
is(job_row($node, $id, 'state, attempt, extract(epoch FROM finished_at)'), "completed|1|$finished",
   'the first job is still as its first completion left it');

my ($accepts) = scalar grep { $_->{what} eq 'accept' } proxy_events();
diag(sprintf 'figures: cut -> settle connection back %.3f s, cut -> completion re-sent %.3f s, '
     . '%d proxied connections (3 at start, 1 reconnect)',
     $reconnect->{at} - $cut->{at}, $resent->{at} - $cut->{at}, $accepts);
is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
stop_process($proxy);

# The SQL level: complete twice with the same id and token.
$node->safe_psql('postgres', "SELECT jobq.create_queue('direct', lease => '1 minute')");
$node->safe_psql('postgres', "SELECT jobq.enqueue('direct', jsonb_build_object('n', g)) FROM generate_series(1, 2) g");
my @claimed = map { [ split /\|/ ] } split /\n/,
  $node->safe_psql('postgres', "SELECT id, lease_token FROM jobq.claim(ARRAY['direct'], 'test', 2) ORDER BY id");
my ($j1, $j2) = @claimed;
my $complete_1 = "SELECT count(*) FROM jobq.complete(ARRAY[$j1->[0]], ARRAY[$j1->[1]], ARRAY['{\"r\": 1}'::jsonb])";
is($node->safe_psql('postgres', $complete_1), 1, 'SQL: the first complete is applied');
my $row = "SELECT row_to_json(a)::text FROM jobq.archive a WHERE id = $j1->[0]";
my $before = $node->safe_psql('postgres', $row);
is($node->safe_psql('postgres', $complete_1), 0, 'SQL: the same complete again is not applied (no error)');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.complete(ARRAY[$j1->[0]], ARRAY[$j1->[1]], "
                    . "ARRAY['{\"r\": 2}'::jsonb])"), 0, 'SQL: nor with another result');
is($node->safe_psql('postgres', $row), $before, 'SQL: the completed job is unchanged');
is($node->safe_psql('postgres', "SELECT string_agg(x::text, ',') FROM jobq.complete(ARRAY[$j1->[0], $j2->[0]], "
                    . "ARRAY[$j1->[1], $j2->[1]]) x"), $j2->[0],
   'SQL: in a batch, the repeated completion is skipped and the other applied');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job"), 0, 'SQL: nothing left live');

JobqChaos::check_server_log($node);
done_testing();
