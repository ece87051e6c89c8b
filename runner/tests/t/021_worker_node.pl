# The worker handler with the Node.js helper (clients/node/jobq_worker.js)
# in real node: progress visible in SQL while the job runs, sleep and
# resume with the saved state, fail with retry_in, a cancel committed in SQL
# reaching the handler (its AbortSignal) through jobq_cancel, and the
# runnable example in examples/node working as documented.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my ($nodejs) = grep { -x } map { ("$_/node", "$_/nodejs") } '/usr/bin', split /:/, $ENV{PATH};
my $node = setup_node('worker_node');
create_queue($node, $_, lease => "'5 minutes'") for qw(js_progress js_sleep js_retry js_cancel node_example);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
my $helper = "$ENV{JOBQ_SOURCE}/clients/node/jobq_worker.js";

write_file("$dir/worker.js", <<"EOF");
const fs = require("fs");
const { Worker, Retry } = require("$helper");
const worker = new Worker();
const note = (...words) => fs.appendFileSync("$ledger", words.join(" ") + "\\n");
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

worker.handler("js_progress", async (job) => {
  job.setProgress({ pct: 50 });
  while (!fs.existsSync("$dir/go." + job.id)) await pause(50);
  return { done: true };
});
worker.handler("js_sleep", async (job) => {
  if (job.state === null) job.sleep(0.3, { step: 2 });
  return { resumed_with: job.state, attempt: job.attempt };
});
worker.handler("js_retry", async (job) => {
  if (job.attempt === 1) throw new Retry("busy, later", 0.2);
  return { attempt: job.attempt };
});
worker.handler("js_cancel", (job) => new Promise((resolve) => {
  note("started", job.id, Date.now() / 1000);
  job.signal.addEventListener("abort", () => {
    note("cancelled", job.id, Date.now() / 1000);
    resolve({ not: "used" });
  });
}));
worker.run();
EOF

my $toml = join '', map { <<"EOF" } qw(js_progress js_sleep js_retry js_cancel);
[queues.$_]
handler = "worker"
command = ["$nodejs", "$dir/worker.js"]
EOF
my $runner = start_runner($node, "[runner]\npoll_interval = \"1s\"\n$toml");

sub state_of { job_row($node, $_[0], 'state') }
sub wait_state {
    my ($id, $state) = @_;
    return wait_until(30, sub { state_of($id) eq $state });
}

my $p = enqueue($node, 'js_progress');
ok(wait_until(30, sub { job_row($node, $p, "state || ' ' || coalesce(progress::text, '')") eq 'running {"pct": 50}' }),
   'progress is visible in jobq.jobs while the job runs') or diag(runner_log($runner));
write_file("$dir/go.$p", '');
ok(wait_state($p, 'completed'), 'the job then completes');
is(job_row($node, $p, 'result'), '{"done": true}', 'with the handler\'s result');

my $s = enqueue($node, 'js_sleep');
ok(wait_state($s, 'completed'), 'the sleeping job ran again and completed');
is(job_row($node, $s, 'result'), '{"attempt": 1, "resumed_with": {"step": 2}}',
   'it resumed with the state it saved, and sleeping used up no attempt');

my $r = enqueue($node, 'js_retry');
ok(wait_state($r, 'completed'), 'the retried job completed');
is(job_row($node, $r, "attempt || ' ' || (errors -> 0 ->> 'error')"), '2 busy, later',
   'after one failed attempt that kept its error');

my $c = enqueue($node, 'js_cancel');
ok(wait_until(30, sub { grep { /^started $c / } read_lines($ledger) }), 'the job to cancel started');
my $t0 = time;
$node->safe_psql('postgres', "SELECT jobq.cancel($c)");
ok(wait_until(30, sub { grep { /^cancelled $c / } read_lines($ledger) }), 'the handler\'s AbortSignal fired');
my ($line) = grep { /^cancelled $c / } read_lines($ledger);
my $latency = (split / /, $line)[2] - $t0;
diag(sprintf('cancel -> handler told: %.3f s', $latency));
cmp_ok($latency, '<', 10, 'long before the first heartbeat (lease 5 min: heartbeat after 100 s)');
is(state_of($c), 'cancelled', 'the job stays cancelled');
is(stop_runner($runner, 'TERM', 30), 0, 'the runner drains and exits cleanly');

# The example, run as its README says: in its folder, --config and --dsn.
my $example_dir = "$ENV{JOBQ_SOURCE}/examples/node";
my $elog = "$dir/example.log";
my $pid = start_process($elog,
    [ $ENV{JOBQ_RUNNER}, '--config', 'runner.toml', '--dsn', $node->connstr('postgres') ],
    cwd => $example_dir);
my $e = enqueue($node, 'node_example', '{"hello": "world"}');
ok(wait_until(30, sub { state_of($e) eq 'completed' }), 'examples/node completes a job')
  or diag(join "\n", read_lines($elog));
is(job_row($node, $e, "result::text || ' ' || (progress ->> 'step')"), '{"ok": true} 1',
   'with {"ok": true} after reporting progress once');
is(stop_process($pid, 'TERM', 30), 0, 'and the example runner exits cleanly on SIGTERM');

done_testing();
