# Server restart mid-drain: the runner reconnects (jittered backoff), LISTENs
# again, re-sends settles whose outcome it did not see, and finishes every
# job. Also /metrics and /healthz over the runner's HTTP endpoint.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('restart');
create_queue($node, 'drain', lease => "'30 seconds'");
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", "#!/bin/sh\necho \"\$JOBQ_JOB_ID\" >> $ledger\nsleep 0.05\n");
my $port = free_port();

my $runner = start_runner($node, <<"TOML");
[http]
listen = "127.0.0.1:$port"
[runner]
poll_interval = "1s"
reconnect_min = "50ms"
reconnect_max = "1s"
[queues.drain]
handler = "exec"
command = ["$dir/job.sh"]
concurrency = 4
TOML

ok(wait_until(5, sub { (http_get($port, '/healthz'))[0] == 200 }), '/healthz is 200 once connected');

my $total = 300;
$node->safe_psql('postgres', "SELECT jobq.enqueue('drain', jsonb_build_object('n', g)) FROM generate_series(1, $total) g");
ok(wait_until(20, sub { scalar(read_lines($ledger)) >= 40 }), 'the drain is under way');
$node->restart;
my $done_before = $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state = 'completed'");
cmp_ok($done_before, '<', $total, "restarted mid-drain ($done_before of $total completed)");

ok(wait_until(60, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state = 'completed'") == $total
}), 'the runner reconnected and completed every job') or diag(runner_log($runner));
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state <> 'completed'"), 0, 'nothing left behind');
my %seen = map { $_ => 1 } read_lines($ledger);
is(scalar(keys %seen), $total, 'every job ran');
like(runner_log($runner), qr/msg="reconnected to database"/, 'the reconnect was logged');

my ($status, $body) = http_get($port, '/metrics');
is($status, 200, '/metrics answers');
like($body, qr/^jobq_runner_reconnects_total [1-9]/m, 'reconnects counted');
like($body, qr/^jobq_runner_jobs_claimed_total\{queue="drain"\} \d+/m, 'claims counted per queue');
my ($completed) = $body =~ /^jobq_runner_jobs_completed_total\{queue="drain"\} (\d+)/m;
cmp_ok($completed // 0, '>=', $total - 10, 'completions counted (minus settles whose ack was lost in the restart)');
like($body, qr/^jobq_runner_handler_duration_seconds_count\{queue="drain"\} \d+/m, 'handler duration histogram');
like($body, qr/^jobq_runner_claim_round_trip_seconds_bucket\{le="\+Inf"\} \d+/m, 'claim round-trip histogram');
like($body, qr/^jobq_runner_jobs_running\{queue="drain"\} 0$/m, 'running gauge back to 0');
is((http_get($port, '/nope'))[0], 404, 'unknown path is 404');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
