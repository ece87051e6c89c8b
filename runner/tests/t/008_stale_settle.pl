# Stale settles are refused: runner A stalls (SIGSTOP) past its lease while
# its handler finishes; the job is rescued and completed by runner B; when A
# resumes, its late completion carries a stale lease token, changes nothing,
# and is counted as refused (or A fences the job before sending it).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('stale');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->restart;
create_queue($node, 's');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
write_script("$dir/job.sh", <<"SH");
#!/bin/sh
echo "start \$JOBQ_JOB_ID \$JOBQ_ATTEMPT" >> $ledger
if [ "\$JOBQ_ATTEMPT" = 1 ]; then sleep 1; fi
echo "{\\"attempt\\": \$JOBQ_ATTEMPT}"
SH
my $toml = <<"TOML";
[runner]
poll_interval = "500ms"
[queues.s]
handler = "exec"
command = ["$dir/job.sh"]
TOML

my $port_a = free_port();
my $a = start_runner($node, $toml, '--listen', "127.0.0.1:$port_a");
my $id = enqueue($node, 's');
ok(wait_until(10, sub { grep { /^start $id 1$/ } read_lines($ledger) }), 'runner A started the job');
kill 'STOP', $a->{pid};

my $b = start_runner($node, $toml);
ok(wait_until(30, sub { job_row($node, $id, 'state') eq 'completed' }),
   'A stalled past its lease; the job was rescued and completed by B');
is(job_row($node, $id, "state, attempt, result->>'attempt'"), 'completed|2|2', 'B\'s attempt 2 is the completion');
stop_runner($b, 'TERM');

# On SIGCONT, A sees its handler's exit and its own lease deadline at once.
# Either order is right: it sends the completion, which is refused as stale,
# or it fences the job first and sends nothing. Either way nothing changes.
kill 'CONT', $a->{pid};
my ($refused, $fenced) = (qr/completion not applied: the lease was no longer ours/, qr/handler stopped \(fenced\)/);
ok(wait_until(10, sub { my $log = runner_log($a); $log =~ $refused || $log =~ $fenced }),
   'A\'s late completion was refused, or A fenced the job itself') or diag(runner_log($a));
is(job_row($node, $id, "state, attempt, result->>'attempt'"), 'completed|2|2', 'and changed nothing');
my (undef, $metrics) = http_get($port_a, '/metrics');
my $sent = runner_log($a) =~ $refused ? 1 : 0;
diag($sent ? 'A sent its completion (refused)' : 'A fenced the job before sending its completion');
like($metrics, qr/^jobq_runner_settles_refused_total\{queue="s"\} $sent$/m, 'a sent completion counted as refused');
like($metrics, qr/^jobq_runner_jobs_completed_total\{queue="s"\} 0$/m, 'not counted as completed');
is(stop_runner($a, 'TERM'), 0, 'runner A exits 0');
done_testing();
