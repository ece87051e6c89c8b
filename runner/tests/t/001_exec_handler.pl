# exec handler: success (result JSON, stdin document, environment, argv
# without a shell), plain-text output, failure with backoff until dead, the
# retry exit code, the discard exit code, and timeout with no orphan left.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('exec');
create_queue($node, $_) for qw(ok text fail retry discard big);
create_queue($node, $_, max_attempts => 1) for qw(slow crash noexec);
my $dir = PostgreSQL::Test::Utils::tempdir();

write_script("$dir/ok.sh", <<'EOF');
#!/bin/sh
input=$(cat)
printf '{"env": {"id": "%s", "attempt": "%s", "queue": "%s"}, "arg1": "%s", "arg2": "%s", "input": %s}\n' \
  "$JOBQ_JOB_ID" "$JOBQ_ATTEMPT" "$JOBQ_QUEUE" "$1" "$2" "$input"
EOF
write_script("$dir/big.sh", "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x\n");
write_script("$dir/text.sh", "#!/bin/sh\necho 'plain text, not JSON'\n");
write_script("$dir/fail.sh", "#!/bin/sh\necho \"boom on attempt \$JOBQ_ATTEMPT\" >&2\nexit 3\n");
write_script("$dir/retry.sh", "#!/bin/sh\necho 'busy, try later' >&2\nexit 75\n");
write_script("$dir/crash.sh", "#!/bin/sh\necho 'about to crash' >&2\nkill -SEGV \$\$\n");
write_script("$dir/noexec.sh", "#!/bin/sh\nexit 0\n");
write_script("$dir/discard.sh", "#!/bin/sh\necho 'payload makes no sense' >&2\nexit 65\n");
# The handler starts a grandchild in its process group, then hangs past its
# timeout; both must be gone afterwards.
write_script("$dir/slow.sh", <<"EOF");
#!/bin/sh
echo \$\$ > $dir/slow.pid
sleep 300 &
echo \$! > $dir/grandchild.pid
trap '' TERM
sleep 300
EOF

my $runner = start_runner($node, <<"EOF", '--verbose');
[runner]
poll_interval = "1s"
[queues.ok]
handler = "exec"
command = ["$dir/ok.sh", "a b", "\$HOME;*"]
[queues.text]
handler = "exec"
command = ["$dir/text.sh"]
[queues.fail]
handler = "exec"
command = ["$dir/fail.sh"]
[queues.retry]
handler = "exec"
command = ["$dir/retry.sh"]
[queues.discard]
handler = "exec"
command = ["$dir/discard.sh"]
[queues.slow]
handler = "exec"
command = ["$dir/slow.sh"]
timeout = "1s"
kill_grace = "500ms"
[queues.big]
handler = "exec"
command = ["$dir/big.sh"]
max_output = 1000
[queues.crash]
handler = "exec"
command = ["$dir/crash.sh"]
[queues.noexec]
handler = "exec"
command = ["$dir/noexec.sh"]
# Not created in the database: its claims fail, the other queues' must not.
[queues.ghost]
handler = "noop"
EOF

# Checked at start, then made unusable: the exec itself fails.
chmod 0644, "$dir/noexec.sh";
my %id;
$id{$_} = enqueue($node, $_, qq({"queue": "$_", "n": 42})) for qw(ok text fail retry discard slow crash big noexec);

my $all_done = wait_until(40, sub {
    my $left = $node->safe_psql('postgres',
        "SELECT count(*) FROM jobq.jobs WHERE state NOT IN ('completed', 'dead')");
    return $left == 0;
});
ok($all_done, 'every exec job reached a final state') or diag(runner_log($runner));

is(job_row($node, $id{ok}), 'completed|1', 'exit 0 completes on the first attempt');
is(job_row($node, $id{ok}, "result->'env'->>'id' || ',' || (result->'env'->>'attempt') || ',' || (result->'env'->>'queue')"),
   "$id{ok},1,ok", 'JOBQ_JOB_ID, JOBQ_ATTEMPT and JOBQ_QUEUE are set');
is(job_row($node, $id{ok}, "result->>'arg1' || '|' || (result->>'arg2')"), 'a b|$HOME;*',
   'argv is passed without a shell');
is(job_row($node, $id{ok}, "(result->'input'->>'id')::bigint = $id{ok} AND result->'input'->>'queue' = 'ok' AND (result->'input'->>'attempt') = '1' AND result->'input'->'payload' = '{\"queue\": \"ok\", \"n\": 42}'::jsonb"),
   't', 'the job document arrives on stdin');
is(job_row($node, $id{text}, "state, result #>> '{}'"), 'completed|plain text, not JSON',
   'output that is not JSON is kept as a JSON string');

is(job_row($node, $id{fail}), 'dead|3', 'a failing command is retried until max_attempts, then dead');
like(job_row($node, $id{fail}, 'errors::text'), qr/exit status 3: boom on attempt 3/,
     'the last error carries the exit status and the tail of stderr');
is(job_row($node, $id{retry}), 'dead|3', 'exit 75 asks for a retry (until attempts run out)');
like(job_row($node, $id{retry}, 'errors::text'), qr/exit status 75 \(retry requested\): busy, try later/,
     'retry exit is recorded as such');
is(job_row($node, $id{discard}), 'dead|1', 'exit 65 discards the job at once');
like(job_row($node, $id{discard}, 'errors::text'), qr/discarded/, 'discard is recorded');

is(job_row($node, $id{big}, "state, length(result #>> '{}')"), 'completed|1000',
   'stdout is capped at max_output (200000 bytes written, 1000 kept, the command not blocked)');

is(job_row($node, $id{crash}), 'dead|1', 'a command killed by a signal fails the attempt');
like(job_row($node, $id{crash}, 'errors::text'), qr/killed by signal 11 \(SIGSEGV\): about to crash/, 'the signal is the error');

is(job_row($node, $id{noexec}), 'dead|1', 'a command that cannot be executed fails the attempt');
like(job_row($node, $id{noexec}, 'errors::text'), qr/cannot start .*noexec\.sh: Permission denied/,
     'the exec error is the error');

is(job_row($node, $id{slow}), 'dead|1', 'a hanging command times out');
like(job_row($node, $id{slow}, 'errors::text'), qr/timed out after 1s/, 'the timeout is the error');
my ($slow_pid) = read_lines("$dir/slow.pid");
my ($grandchild) = read_lines("$dir/grandchild.pid");
ok(wait_until(5, sub { !kill(0, $slow_pid) && !kill(0, $grandchild) }),
   'the timed-out command and its grandchild were killed (no orphans)');

like(runner_log($runner), qr/level=error msg="claim failed" queue=ghost error=.*ghost.*does not exist/,
     'a queue missing from the database is named in an error and does not block the others');

my $status = stop_runner($runner, 'TERM');
is($status, 0, 'runner exits 0 on SIGTERM');
like(runner_log($runner), qr/msg="job started" job=$id{ok} queue=ok attempt=1/, '--verbose logs per-job lines in logfmt');

done_testing();
