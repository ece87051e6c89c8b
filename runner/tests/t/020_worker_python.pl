# The worker handler with the Python helper (clients/python/jobq_worker.py)
# in real python3: progress visible in SQL while the job runs, sleep and
# resume with the saved state (the attempt given back), fail with retry_in,
# discard, sync handlers in threads, a cancel committed in SQL reaching the
# handler through jobq_cancel long before a heartbeat would, 10,000
# concurrent async jobs in one process, and a SIGTERM drain that lets the
# running job finish and then stops the process.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $node = setup_node('worker_python');
# Leases of 5 minutes: heartbeats every 100 s, so only jobq_cancel can stop
# a cancelled job within the test's patience.
create_queue($node, $_, lease => "'5 minutes'") for qw(py_progress py_sleep py_retry py_discard py_sync py_cancel py_many py_slow py_example);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
my $helper = "$ENV{JOBQ_SOURCE}/clients/python";

write_file("$dir/worker.py", <<"EOF");
import asyncio, os, sys, time
sys.path.insert(0, "$helper")
import jobq_worker

worker = jobq_worker.Worker()
LEDGER = "$ledger"
in_flight = 0
peak = 0

def note(*words):
    with open(LEDGER, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")

\@worker.handler("py_progress")
async def progress(job):
    job.set_progress({"pct": 50})
    while not os.path.exists("$dir/go.%d" % job.id):
        await asyncio.sleep(0.05)
    return {"done": True}

\@worker.handler("py_sleep")
async def sleeper(job):
    if job.state is None:
        job.sleep(0.3, {"step": 2})
    return {"resumed_with": job.state, "attempt": job.attempt}

\@worker.handler("py_retry")
async def retry(job):
    if job.attempt == 1:
        raise jobq_worker.Retry("busy, later", retry_in=0.2)
    return {"attempt": job.attempt}

\@worker.handler("py_discard")
async def discard(job):
    raise jobq_worker.Discard("payload makes no sense")

\@worker.handler("py_sync")
def sync(job):
    job.set_progress({"from": "thread"})
    time.sleep(0.1)
    print("print goes to stderr, not into the protocol")
    return {"thread": True}

\@worker.handler("py_cancel")
async def cancel(job):
    note("started", job.id, time.time())
    try:
        await asyncio.sleep(120)
    except asyncio.CancelledError:
        note("cancelled", job.id, time.time())
        raise
    return {"not": "cancelled"}

\@worker.handler("py_many")
async def many(job):
    global in_flight, peak
    in_flight += 1
    peak = max(peak, in_flight)
    await asyncio.sleep(1)
    in_flight -= 1
    return {"peak": peak}

\@worker.handler("py_slow")
async def slow(job):
    note("slow-start", job.id)
    await asyncio.sleep(1.5)
    note("slow-end", job.id)
    return {"slow": True}

worker.run()
EOF

my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "1s"
grace_period = "10s"
[queues.py_progress]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_sleep]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_retry]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_discard]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_sync]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_cancel]
handler = "worker"
command = ["$python", "$dir/worker.py"]
[queues.py_many]
handler = "worker"
command = ["$python", "$dir/worker.py"]
concurrency = 10000
timeout = "5m"
[queues.py_slow]
handler = "worker"
command = ["$python", "$dir/worker.py"]
EOF

sub state_of { job_row($node, $_[0], 'state') }
sub wait_state {
    my ($id, $state, $timeout) = @_;
    return wait_until($timeout // 30, sub { state_of($id) eq $state });
}

# progress, visible while the job runs
my $p = enqueue($node, 'py_progress');
ok(wait_until(30, sub { job_row($node, $p, "state || ' ' || coalesce(progress::text, '')") eq 'running {"pct": 50}' }),
   'progress is visible in jobq.jobs while the job runs') or diag(runner_log($runner));
write_file("$dir/go.$p", '');
ok(wait_state($p, 'completed'), 'the job then completes');
is(job_row($node, $p, 'result'), '{"done": true}', 'with the handler\'s result');

# sleep, then resume with the saved state; the attempt given back
my $s = enqueue($node, 'py_sleep');
ok(wait_state($s, 'completed'), 'the sleeping job ran again and completed') or diag(runner_log($runner));
is(job_row($node, $s, 'result'), '{"attempt": 1, "resumed_with": {"step": 2}}',
   'it resumed with the state it saved, and sleeping used up no attempt');

# fail with retry_in
my $r = enqueue($node, 'py_retry');
ok(wait_state($r, 'completed'), 'the retried job completed');
is(job_row($node, $r, "attempt || ' ' || (errors -> 0 ->> 'error')"), '2 busy, later',
   'after one failed attempt that kept its error');

# discard
my $d = enqueue($node, 'py_discard');
ok(wait_state($d, 'dead'), 'a discarded job is dead at once');
is(job_row($node, $d, "attempt || ' ' || (errors -> 0 ->> 'error')"), '1 payload makes no sense', 'with its error');

# a plain function runs in a thread; print() does not break the protocol
my $y = enqueue($node, 'py_sync');
ok(wait_state($y, 'completed'), 'a sync handler completed');
is(job_row($node, $y, "result::text || ' ' || progress::text"), '{"thread": true} {"from": "thread"}',
   'with its result and the progress it reported from its thread');
like(runner_log($runner), qr/print goes to stderr/, 'print() in a handler lands in the runner\'s log');

# cancel committed in SQL reaches the handler through jobq_cancel
my $c = enqueue($node, 'py_cancel');
ok(wait_until(30, sub { grep { /^started $c / } read_lines($ledger) }), 'the job to cancel started');
my $t0 = time;
$node->safe_psql('postgres', "SELECT jobq.cancel($c)");
ok(wait_until(30, sub { grep { /^cancelled $c / } read_lines($ledger) }), 'the handler saw the cancel');
my ($line) = grep { /^cancelled $c / } read_lines($ledger);
my $latency = (split / /, $line)[2] - $t0;
diag(sprintf('cancel -> handler told: %.3f s', $latency));
cmp_ok($latency, '<', 10, 'long before the first heartbeat (lease 5 min: heartbeat after 100 s)');
is(state_of($c), 'cancelled', 'the job stays cancelled');
unlike(runner_log($runner), qr/refused/, 'the handler\'s late end was not sent as a settle');

# 10,000 concurrent async jobs in one Python process
my $t1 = time;
$node->safe_psql('postgres',
    "SELECT count(*) FROM jobq.enqueue_many('py_many', array_fill('{}'::jsonb, ARRAY[10000]))");
ok(wait_until(300, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE queue = 'py_many' AND state = 'completed'") == 10000
}, 0.5), '10,000 jobs of one process completed') or diag(runner_log($runner));
diag(sprintf('10,000 jobs of 1 s each: done %.1f s after the enqueue', time - $t1));
my $peak = $node->safe_psql('postgres', "SELECT max((result ->> 'peak')::int) FROM jobq.jobs WHERE queue = 'py_many'");
diag("peak jobs in flight in the process: $peak");
cmp_ok($peak, '>=', 1000, 'the process ran them concurrently (>= 1000 in flight at once)');
my $procs = () = grep { /\Q$dir\E\/worker\.py/ } `ps -eo args`;
is($procs, 8, 'one Python process per queue, however many jobs it ran');

# SIGTERM drains: the running job finishes, then the processes stop
my $w = enqueue($node, 'py_slow');
ok(wait_until(30, sub { grep { /^slow-start $w$/ } read_lines($ledger) }), 'a slow job started');
is(stop_runner($runner, 'TERM', 30), 0, 'the runner exited cleanly after SIGTERM');
is(state_of($w), 'completed', 'the running job finished within the grace period');
like(runner_log($runner), qr/shut down cleanly/, 'and said so');
ok(wait_until(10, sub { !grep { /\Q$dir\E\/worker\.py/ } `ps -eo args` }), 'no worker process is left');

# The example, run as its README says: in its folder, --config and --dsn.
my $example_dir = "$ENV{JOBQ_SOURCE}/examples/python";
my $elog = "$dir/example.log";
my $pid = start_process($elog,
    [ $ENV{JOBQ_RUNNER}, '--config', 'runner.toml', '--dsn', $node->connstr('postgres') ],
    cwd => $example_dir);
my $e = enqueue($node, 'py_example', '{"hello": "world"}');
ok(wait_until(30, sub { state_of($e) eq 'completed' }), 'examples/python completes a job')
  or diag(join "\n", read_lines($elog));
is(job_row($node, $e, "result::text || ' ' || (progress ->> 'step')"), '{"ok": true} 1',
   'with {"ok": true} after reporting progress once');
is(stop_process($pid, 'TERM', 30), 0, 'and the example runner exits cleanly on SIGTERM');

done_testing();
