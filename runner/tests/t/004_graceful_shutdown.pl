# SIGTERM: no more claims; a job that finishes within the grace period is
# completed; one that does not is stopped and released (available again,
# attempt given back, not failed); exit 0. A second signal exits at once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('shutdown');
create_queue($node, $_, lease => "'30 seconds'") for qw(quick stuck);
my $dir = PostgreSQL::Test::Utils::tempdir();
# The pid file appears whole (written aside, then renamed): the test reads
# it as soon as it exists.
write_script("$dir/sleep.sh", "#!/bin/sh\necho \$\$ > $dir/tmp.\$JOBQ_JOB_ID && mv $dir/tmp.\$JOBQ_JOB_ID $dir/pid.\$JOBQ_JOB_ID\nsleep \"\$1\"\necho '{\"slept\": true}'\n");

my $config = <<"TOML";
[runner]
poll_interval = "1s"
grace_period = "2s"
[queues.quick]
handler = "exec"
command = ["$dir/sleep.sh", "1"]
[queues.stuck]
handler = "exec"
command = ["$dir/sleep.sh", "60"]
timeout = "120s"
TOML

my $runner = start_runner($node, $config);
my $quick = enqueue($node, 'quick');
my $stuck = enqueue($node, 'stuck');
ok(wait_until(10, sub { -e "$dir/pid.$quick" && -e "$dir/pid.$stuck" }), 'both jobs started');
my ($stuck_pid) = read_lines("$dir/pid.$stuck");

my $t0 = time;
my $status = stop_runner($runner, 'TERM', 15);
my $took = time - $t0;
is($status, 0, 'runner exits 0 after SIGTERM');
cmp_ok($took, '>=', 1.5, 'it waited for the grace period');
cmp_ok($took, '<', 8, 'and not much longer');
is(job_row($node, $quick, 'state, attempt, result'), 'completed|1|{"slept": true}',
   'the job that finished within the grace period was completed');
is(job_row($node, $stuck), 'available|0', 'the unfinished job was released: available, attempt given back');
ok(wait_until(5, sub { !kill(0, $stuck_pid) }), 'its handler was stopped');
like(runner_log($runner), qr/shut down cleanly/, 'clean shutdown logged');

my $late = enqueue($node, 'quick');
sleep 1.5;
is(job_row($node, $late, 'state'), 'available', 'a stopped runner claims nothing');

# Second signal: exit at once, handler killed.
unlink glob("$dir/pid.*");
my $runner2 = start_runner($node, $config =~ s/grace_period = "2s"/grace_period = "60s"/r);
ok(wait_until(10, sub { -e "$dir/pid.$stuck" }), 'the released job runs again on the next runner');
($stuck_pid) = read_lines("$dir/pid.$stuck");
is(job_row($node, $stuck), 'running|1', 'claimed again as attempt 1');
kill 'TERM', $runner2->{pid};
sleep 0.3;
$t0 = time;
$status = stop_runner($runner2, 'INT', 5);
ok(defined $status && time - $t0 < 2, 'a second signal exits at once');
isnt($status, 0, 'with a non-zero status');
ok(wait_until(3, sub { !kill(0, $stuck_pid) }), 'and the handler did not outlive it');

done_testing();
