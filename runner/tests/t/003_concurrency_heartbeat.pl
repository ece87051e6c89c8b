# Per-queue concurrency is never exceeded; heartbeats keep a job that runs
# longer than its lease (no second start); a job cancelled while running is
# stopped within a heartbeat interval.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = setup_node('concurrency');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->reload;
create_queue($node, $_) for qw(limited long cancel);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";

# Ledger lines: "start|end <job> <attempt> <time>". The pid file appears
# whole (written aside, then renamed): the test reads it once it exists.
write_script("$dir/work.sh", <<"EOF");
#!/bin/sh
echo "start \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$(date +%s.%N)" >> $ledger
echo \$\$ > $dir/tmp.\$JOBQ_JOB_ID && mv $dir/tmp.\$JOBQ_JOB_ID $dir/pid.\$JOBQ_JOB_ID
sleep "\$1"
echo "end \$JOBQ_JOB_ID \$JOBQ_ATTEMPT \$(date +%s.%N)" >> $ledger
EOF

my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "1s"
[queues.limited]
handler = "exec"
command = ["$dir/work.sh", "0.3"]
concurrency = 2
[queues.long]
handler = "exec"
command = ["$dir/work.sh", "5"]
timeout = "20s"
[queues.cancel]
handler = "exec"
command = ["$dir/work.sh", "60"]
timeout = "120s"
EOF

# 1. concurrency
my @limited = map { enqueue($node, 'limited', qq({"n": $_})) } 1 .. 8;
my $long = enqueue($node, 'long');
my $cancel = enqueue($node, 'cancel');

my $limited_list = join ',', @limited;
ok(wait_until(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($limited_list) AND state = 'completed'") == 8
}), 'all 8 jobs of the limited queue completed') or diag(runner_log($runner));

my %limited = map { $_ => 1 } @limited;
my @events;
for (read_lines($ledger)) {
    my ($kind, $job, $attempt, $t) = split / /;
    next unless $limited{$job};
    push @events, [$t, $kind eq 'start' ? 1 : -1];
}
my ($running, $peak) = (0, 0);
for my $e (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @events) {
    $running += $e->[1];
    $peak = $running if $running > $peak;
}
is($peak, 2, 'never more than concurrency = 2 handlers at once (and the limit is used)');

# 2. cancel while running: the heartbeat result omits the job, the runner
# stops the handler.
ok(wait_until(10, sub { -e "$dir/pid.$cancel" }), 'the long cancel job started');
my ($cancel_pid) = read_lines("$dir/pid.$cancel");
my $t0 = time;
$node->safe_psql('postgres', "SELECT jobq.cancel($cancel)");
ok(wait_until(10, sub { !kill(0, $cancel_pid) }), 'the cancelled job\'s handler was stopped');
cmp_ok(time - $t0, '<', 5, 'within about a heartbeat interval (lease 2s / 3) plus a tick, with slack for a loaded machine');
is(job_row($node, $cancel, 'state'), 'cancelled', 'the job stays cancelled');

# 3. heartbeats: a 5 s job under a 2 s lease runs once.
ok(wait_until(30, sub { job_row($node, $long, 'state') eq 'completed' }), 'the long job completed')
  or diag(runner_log($runner));
is(job_row($node, $long), 'completed|1', 'on its first attempt');
is(scalar(grep { /^start $long / } read_lines($ledger)), 1, 'heartbeats kept the lease: it started exactly once');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
