# The worker handler against a child that breaks the protocol, each case
# once: malformed lines, a bad field naming a job, unknown job ids, a
# second complete for one job, an oversized result, binary garbage, a log
# flood, a child that closes its stdout, exits, or hangs past a job's
# deadline. Each gets one clear log line; the job concerned fails (a
# counted attempt) or the bad line is ignored; the runner, and the jobs
# the same process runs meanwhile, keep running; the process is restarted
# when it broke; nothing is lost.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $node = setup_node('worker_bad');
create_queue($node, 'bad', lease => "'5 minutes'", max_attempts => 1);
create_queue($node, 'slowpoke', lease => "'5 minutes'", max_attempts => 1);
my $dir = PostgreSQL::Test::Utils::tempdir();

# A raw child (no helper): what it does with a job is in the payload's "do".
write_file("$dir/child.py", <<'EOF');
import json, os, sys, time

out = os.fdopen(os.dup(1), "w", buffering=1)

def send(obj):
    out.write(json.dumps(obj) + "\n")

for line in sys.stdin:
    m = json.loads(line)
    if m["type"] == "hello":
        send({"type": "ready", "protocol": 1})
        continue
    if m["type"] == "cancel":
        # Every cancel is answered with the job's end (the protocol's rule).
        send({"type": "fail", "id": m["id"], "error": "cancelled"})
        continue
    if m["type"] != "start":
        continue
    i, do = m["id"], m["payload"].get("do")
    if do == "malformed":
        out.write("this is not json\n")
        out.write('{"no": "type"}\n')
        send({"type": "complete", "id": i, "result": {"after": "malformed"}})
    elif do == "bad_field":
        send({"type": "fail", "id": i, "retry_in": "soon"})
    elif do == "unknown_id":
        send({"type": "complete", "id": 987654321})
        send({"type": "complete", "id": i, "result": {"after": "unknown"}})
    elif do == "double":
        send({"type": "complete", "id": i, "result": {"first": True}})
        send({"type": "complete", "id": i, "result": {"second": True}})
    elif do == "oversized":
        send({"type": "complete", "id": i, "result": "x" * 300000})
    elif do == "garbage":
        out.write("\x00\x01\x02\x7f binary \x1b[31m\n")
        out.buffer.write(b"\xff\xfe\xfd\n") if hasattr(out, "buffer") else None
        out.flush()
        send({"type": "complete", "id": i, "result": {"after": "garbage"}})
    elif do == "flood":
        for n in range(5000):
            send({"type": "log", "level": "warn", "message": "flood line %d" % n})
        send({"type": "complete", "id": i, "result": {"after": "flood"}})
    elif do == "close_stdout":
        out.close()
        os.close(1)
        time.sleep(60)
    elif do == "exit":
        sys.exit(3)
    elif do == "hang":
        time.sleep(60)  # ignores its cancel, blocks everything else
    elif do == "wait":
        pass  # never ends on its own; ended by the runner
    else:
        send({"type": "complete", "id": i, "result": {"ok": True}})
EOF

my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "1s"
[queues.bad]
handler = "worker"
command = ["$python", "$dir/child.py"]
concurrency = 20
max_output = 100000
timeout = "60s"
kill_grace = "1s"
[queues.slowpoke]
handler = "worker"
command = ["$python", "$dir/child.py"]
timeout = "1s"
kill_grace = "1s"
EOF

sub job { my ($do) = @_; return enqueue($node, 'bad', qq({"do": "$do"})) }
sub row { job_row($node, $_[0], "state || ' ' || attempt || ' ' || coalesce(result::text, errors -> -1 ->> 'error', '')") }
sub settled {
    my ($id) = @_;
    wait_until(30, sub { row($id) =~ /^(completed|dead)/ });
    return row($id);
}
sub log_count { my ($re) = @_; my @l = grep { /$re/ } split /\n/, runner_log($runner); scalar @l }

my $bystander = enqueue($node, 'bad', '{"do": "wait"}');
ok(wait_until(30, sub { job_row($node, $bystander, 'state') eq 'running' }), 'a bystander job runs on the same process');

my $id = job('malformed');
is(settled($id), 'completed 1 {"after": "malformed"}', 'malformed lines: ignored, the job goes on');
is(log_count(qr/malformed line; ignored.*not valid JSON/), 1, 'one log line for the line that is not JSON');
is(log_count(qr/malformed line; ignored.*"type\\" missing/), 1, 'one for the line without a type');

$id = job('bad_field');
like(settled($id), qr/^dead 1 worker protocol error: "retry_in" must be a number of seconds$/,
     'a bad field of a running job: that job fails with the reason');
is(log_count(qr/malformed line; the job fails/), 1, 'one log line');

$id = job('unknown_id');
is(settled($id), 'completed 1 {"after": "unknown"}', 'an unknown job id: ignored');
is(log_count(qr/not running \(unknown or finished\); ignored.*job=987654321/), 1, 'one log line naming the id');

$id = job('double');
is(settled($id), 'completed 1 {"first": true}', 'a second complete: the first one counts');
ok(wait_until(10, sub { log_count(qr/not running \(unknown or finished\); ignored" .*type=complete job=$id\b/) == 1 }),
   'the second is logged once and fenced');

$id = job('oversized');
like(settled($id), qr/^dead 1 result too large: the worker's line of \d+ bytes exceeds 165536/,
     'an oversized result: the job fails, nothing truncated');
is(log_count(qr/line over the size limit; the job fails/), 1, 'one log line');

$id = job('garbage');
is(settled($id), 'completed 1 {"after": "garbage"}', 'garbage lines are skipped');
cmp_ok(log_count(qr/malformed line; ignored/), '>=', 3, 'each logged');

$id = job('flood');
is(settled($id), 'completed 1 {"after": "flood"}', 'a log flood: the job still completes');
ok(wait_until(10, sub { log_count(qr/worker log lines dropped/) >= 1 }), 'the flood is cut, and that is logged');
cmp_ok(log_count(qr/flood line/), '<=', 200, 'only a bounded number of flood lines reached the log');

is(job_row($node, $bystander, 'state'), 'running', 'the bystander is still running on that process');

# A child that closes its stdout: broken; its started jobs fail (the
# bystander too), it restarts, and the next job completes.
$id = job('close_stdout');
like(settled($id), qr/^dead 1 worker process \d+ closed its stdout while the job ran$/,
     'closed stdout: the job fails with the cause');
like(row($bystander), qr/^dead 1 worker process \d+ closed its stdout while the job ran$/,
     'so does the other job it had started (a counted attempt)');
is(log_count(qr/worker process failed; restarting.*reason="closed its stdout"/), 1, 'one log line');
$id = job('ok');
is(settled($id), 'completed 1 {"ok": true}', 'the restarted process runs the next job');

$id = job('exit');
like(settled($id), qr/^dead 1 worker process \d+ exited with status 3 while the job ran$/,
     'a child that exits: the job fails with its exit status');
$id = job('ok');
is(settled($id), 'completed 1 {"ok": true}', 'and the restarted process runs the next job');

# A hung child: the deadline fails the job; the cancel goes unanswered
# past kill_grace, so the process is restarted.
$id = enqueue($node, 'slowpoke', '{"do": "hang"}');
like(settled($id), qr/^dead 1 timed out after 1s$/, 'a job past its deadline fails');
ok(wait_until(30, sub { log_count(qr/queue=slowpoke.*reason="did not end job $id within 1s of its cancel \(hung\)"/) == 1 }),
   'the hung process is restarted, with one log line');
$id = enqueue($node, 'slowpoke', '{"do": "ok"}');
is(settled($id), 'completed 1 {"ok": true}', 'and its replacement runs the next job');

ok(runner_alive($runner), 'the runner kept running throughout');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job"), '0', 'nothing is left unfinished');
is(stop_runner($runner, 'TERM', 30), 0, 'the runner exits cleanly');

done_testing();
