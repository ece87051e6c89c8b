# kill -9 of the runner mid-job: the handler dies with it (no orphan), the
# background worker rescues the expired lease, and the job runs again on
# another runner, counted as attempt 2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('kill9');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->restart;
create_queue($node, 'k');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", <<"SH");
#!/bin/sh
echo "start \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$\$" >> $ledger
sleep 3
echo "end \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$\$" >> $ledger
SH
my $config = <<"TOML";
[runner]
poll_interval = "500ms"
[queues.k]
handler = "exec"
command = ["$dir/job.sh"]
timeout = "30s"
TOML

my $runner = start_runner($node, $config);
my $id = enqueue($node, 'k');
ok(wait_until(10, sub { grep { /^start $id 1 / } read_lines($ledger) }), 'the job started');
my ($first) = grep { /^start $id 1 / } read_lines($ledger);
my $child = (split / /, $first)[3];
stop_runner($runner, 'KILL');
ok(!runner_alive($runner), 'runner killed with SIGKILL');
ok(wait_until(3, sub { !kill(0, $child) }), 'its handler died with it (no orphan)');
# Still leased to the dead runner, or (on a slow machine, past its short
# lease) already rescued: either way not lost and attempt 1 was counted.
like(job_row($node, $id), qr/^(running|retryable)\|1$/, 'the job is leased or rescued, attempt 1 counted');

my $runner2 = start_runner($node, $config);
ok(wait_until(30, sub { job_row($node, $id, 'state') eq 'completed' }),
   'after the lease expired the job was rescued and ran again')
  or diag(runner_log($runner2));
is(job_row($node, $id), 'completed|2', 'completed on attempt 2');
my @lines = read_lines($ledger);
is(scalar(grep { /^start $id / } @lines), 2, 'two starts');
is(scalar(grep { /^end $id 1 / } @lines), 0, 'the first run never finished');
is(stop_runner($runner2, 'TERM'), 0, 'second runner exits 0');
done_testing();
