# The runner's backends are terminated again and again during a drain
# (pg_terminate_backend): every kill is a lost connection with a claim or
# settle possibly in flight. The runner reconnects each time, re-sends
# settles whose outcome it did not see, prepares its claim statement again
# on each new session, and every job completes; nothing is left running,
# nothing dead.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('kills');
# A claim lost with its connection leaves its jobs to the lease rescue:
# keep the lease short so that happens quickly.
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
# Every statement in the server log, to see the claim's prepared statement.
$node->append_conf('postgresql.conf', "log_min_duration_statement = 0\n");
$node->restart;
create_queue($node, 'k', lease => "'3 seconds'");
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", "#!/bin/sh\necho \"\$JOBQ_JOB_ID\" >> $ledger\nsleep 0.05\n");
my $port = free_port();

my $runner = start_runner($node, <<"TOML");
[http]
listen = "127.0.0.1:$port"
[runner]
poll_interval = "500ms"
reconnect_min = "20ms"
reconnect_max = "200ms"
[queues.k]
handler = "exec"
command = ["$dir/job.sh"]
concurrency = 4
TOML

my $total = 300;
my $t0 = time;
$node->safe_psql('postgres', "SELECT jobq.enqueue('k', jsonb_build_object('n', g)) FROM generate_series(1, $total) g");
my $kills = 0;
my $deadline = time + 4;
while (time < $deadline) {
    $kills += $node->safe_psql('postgres',
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'jobq-runner') t");
    sleep 0.25;
}
cmp_ok($kills, '>=', 5, "terminated the runner's backends $kills times");

ok(wait_until(60, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state = 'completed'") == $total
}), 'every job completed') or diag(runner_log($runner));
diag(sprintf 'figures: drained in %.1f s', time - $t0);
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state <> 'completed'"), 0,
   'nothing left running, retrying or dead');
my @runs = read_lines($ledger);
my %seen = map { $_ => 1 } @runs;
is(scalar(keys %seen), $total, 'every job ran');
# At least once: a run repeats when its claim's or completion's outcome was
# lost with a killed backend and the lease ran out.
diag(sprintf 'figures: %d kills, %d handler runs for %d jobs (%d repeated)', $kills, scalar(@runs), $total,
     scalar(@runs) - scalar(keys %seen));
my (undef, $metrics) = http_get($port, '/metrics');
my ($reconnects) = $metrics =~ /^jobq_runner_reconnects_total (\d+)/m;
cmp_ok($reconnects // 0, '>=', 5, "reconnected ($reconnects times)");
is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
# The FATAL each terminated backend sends arrives outside any statement;
# it is logged like everything else, not written raw by libpq.
my @log = grep { length } split /\n/, runner_log($runner);
my @raw = grep { !/^ts=\S+ level=\w+ msg=/ } @log[ 1 .. $#log ];
is(scalar(@raw), 0, 'every log line after the first is logfmt') or diag(join("\n", @raw[ 0 .. ($#raw < 5 ? $#raw : 5) ]));
like(runner_log($runner), qr/level=warn msg="server message" conn=\w+ severity=FATAL message="terminating connection due to administrator command"/,
     "the server's reason for closing the connection is logged");
# The claim is a prepared statement: parsed once per work session (so
# again after each reconnect), executed many times in between.
my $server_log = slurp_file($node->logfile);
my $parses = () = $server_log =~ /parse jobq_claim:/g;
my $executions = () = $server_log =~ /execute jobq_claim:/g;
cmp_ok($parses, '>=', 2, "the claim is prepared again on a new work connection ($parses times)");
cmp_ok($executions, '>', $parses, "and executed without parsing it again ($executions executions)");
done_testing();
