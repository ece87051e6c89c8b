# exec handlers talk back on fd 3 (JOBQ_TALKBACK_FD): a shell script
# reports progress (visible in SQL while it runs), sleeps with state and is
# started again with that state on stdin, and logs; a line the runner
# cannot use is logged once and changes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('exec_talkback');
create_queue($node, $_, lease => "'5 minutes'") for qw(tb_progress tb_sleep tb_bad);
my $dir = PostgreSQL::Test::Utils::tempdir();

write_script("$dir/progress.sh", <<"EOF");
#!/bin/sh
echo '{"type":"progress","progress":{"pct":50}}' >&\$JOBQ_TALKBACK_FD
echo '{"type":"log","level":"warn","message":"half way"}' >&3
while [ ! -e $dir/go.\$JOBQ_JOB_ID ]; do sleep 0.05; done
echo '{"done": true}'
EOF
# First run: sleep with state; second run: the state is on stdin.
write_script("$dir/sleep.sh", <<'EOF');
#!/bin/sh
input=$(cat)
case "$input" in
  *'"state":null'*)
    echo '{"type":"sleep","seconds":0.2,"state":{"step":2}}' >&3
    exit 0 ;;
  *) printf '{"second_run": %s}\n' "$input" ;;
esac
EOF
write_script("$dir/bad.sh", <<'EOF');
#!/bin/sh
echo 'not json' >&3
echo '{"type":"progress","id":1,"progress":1}' >&3
echo '{"type":"complete"}' >&3
echo '{"ok": true}'
EOF

my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "1s"
[queues.tb_progress]
handler = "exec"
command = ["$dir/progress.sh"]
[queues.tb_sleep]
handler = "exec"
command = ["$dir/sleep.sh"]
[queues.tb_bad]
handler = "exec"
command = ["$dir/bad.sh"]
EOF

my $p = enqueue($node, 'tb_progress');
ok(wait_until(30, sub { job_row($node, $p, "state || ' ' || coalesce(progress::text, '')") eq 'running {"pct": 50}' }),
   'progress written to fd 3 is visible while the command runs') or diag(runner_log($runner));
like(runner_log($runner), qr/level=warn msg="half way" job=$p/, 'a log line lands in the runner\'s log');
write_file("$dir/go.$p", '');
ok(wait_until(30, sub { job_row($node, $p, 'state') eq 'completed' }), 'the job completes on exit 0');

my $s = enqueue($node, 'tb_sleep');
ok(wait_until(30, sub { job_row($node, $s, 'state') eq 'completed' }), 'the sleeping job ran again and completed');
is(job_row($node, $s, "attempt || ' ' || (result -> 'second_run' -> 'state')::text"), '1 {"step": 2}',
   'its second run got the saved state on stdin, and sleeping used no attempt');

my $b = enqueue($node, 'tb_bad');
ok(wait_until(30, sub { job_row($node, $b, 'state') eq 'completed' }), 'bad talk-back lines do not stop the job');
is(job_row($node, $b, 'progress IS NULL'), 't', 'and change nothing');
my $log = runner_log($runner);
like($log, qr/exec talk-back line ignored.*job=$b error="not valid JSON"/, 'a line that is not JSON is logged');
like($log, qr/exec talk-back line ignored.*job=$b error="\\"id\\" names another job"/, 'so is one naming another job');
like($log, qr/only progress, sleep and log; the exit status ends the job" job=$b/, 'and a complete');
is(stop_runner($runner, 'TERM', 30), 0, 'the runner exits cleanly');

done_testing();
