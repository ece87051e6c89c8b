# Self-fencing: when the database becomes unreachable, a running handler
# whose lease can no longer be extended is killed at its lease deadline
# (it must not keep running while the job may be rescued and re-run
# elsewhere). When the database is back, the runner reconnects on its own
# and the rescued job runs again to completion.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('fencing');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->restart;
create_queue($node, 'f');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
# The first attempt hangs; later attempts finish at once.
write_script("$dir/job.sh", <<"SH");
#!/bin/sh
echo "start \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$\$" >> $ledger
if [ "\$JOBQ_ATTEMPT" = 1 ]; then sleep 60; fi
echo "end \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$\$" >> $ledger
SH

my $runner = start_runner($node, <<"TOML", '--verbose');
[runner]
poll_interval = "500ms"
reconnect_min = "50ms"
reconnect_max = "500ms"
[queues.f]
handler = "exec"
command = ["$dir/job.sh"]
timeout = "120s"
TOML

my $id = enqueue($node, 'f');
ok(wait_until(10, sub { grep { /^start $id 1 / } read_lines($ledger) }), 'the job started');
my $child = (split / /, (grep { /^start $id 1 / } read_lines($ledger))[0])[3];
sleep 2.5;    # longer than the lease: only heartbeats keep it
ok(kill(0, $child), 'heartbeats keep the handler running past its 2 s lease');

my $t0 = time;
$node->stop('immediate');
ok(wait_until(6, sub { !kill(0, $child) }), 'with the database gone, the handler was killed');
my $fenced_after = time - $t0;
cmp_ok($fenced_after, '<=', 4, "at its lease deadline (2 s lease; killed after ${\ sprintf '%.1f', $fenced_after} s)");
like(runner_log($runner), qr/lease could not be extended in time; handler stopped \(fenced\)/, 'fencing is logged');
ok(runner_alive($runner), 'the runner itself keeps running');

$node->start;
ok(wait_until(30, sub { job_row($node, $id, 'state') eq 'completed' }),
   'after the restart the runner reconnected and the rescued job ran again')
  or diag(runner_log($runner));
is(job_row($node, $id), 'completed|2', 'completed on attempt 2');
is(scalar(grep { /^end $id 1 / } read_lines($ledger)), 0, 'the fenced attempt never finished');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
