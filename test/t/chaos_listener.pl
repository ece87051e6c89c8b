# Chaos 13a: a listener stuck in a transaction while many producers enqueue.
#
# A session LISTENs on jobq_wakeup and then sits in an open transaction, so
# it reads no notification and the server cannot free the NOTIFY queue
# behind it. Meanwhile pgbench clients enqueue (one jobq.enqueue per
# transaction, wake-ups on) and a runner drains. Producers never NOTIFY
# themselves (the worker does, once per queue per tick), so nothing they do
# depends on the NOTIFY queue.
#
# Asserted: no enqueue fails, every acknowledged job is there and drained;
# once the listener's transaction ends, pg_notification_queue_usage() falls
# back. Reported: queue usage growth per 1,000 jobs and the extrapolated
# jobs and time until the queue (8 GB in PostgreSQL 15) would be full.
# Wake-ups on vs off at 32 producers (the other half of RELIABILITY 13) is
# test/t/worker_wakeup_cost.pl.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $clients = chaos_param(short => 16, long => 32);
my $secs = chaos_param(short => 5, long => 120);
# Offered rate (pgbench -R): a rate the runner keeps up with, so the test
# does not end with a long drain; at lower rates each wake-up announces
# fewer jobs, so the queue fills faster per job than flat out.
my $rate = chaos_param(short => 2000, long => 3000);
my $queue_bytes = 8 * 1024**3;    # pg_notification_queue_usage() is a fraction of 8 GB

my $node = chaos_node('listener');
chaos_queue($node, 'lq', lease => "'30 seconds'");
my $dir = chaos_dir();
my $runner = start_runner($node, <<'TOML', dir => $dir, wait => 10);
[runner]
poll_interval = "500ms"
[queues.lq]
handler = "noop"
concurrency = 100
TOML

sub usage { $node->safe_psql('postgres', 'SELECT pg_notification_queue_usage()') }
sub wakeups { $node->safe_psql('postgres', 'SELECT wakeups_sent FROM jobq.worker_status()') }
my $usage0 = usage();

# The stuck listener: LISTEN committed, then an open transaction that has
# taken a snapshot and waits.
my $stuck = $node->background_psql('postgres');
my $stuck_pid = $stuck->query_safe('SELECT pg_backend_pid()');
$stuck->query_safe('LISTEN jobq_wakeup');
$stuck->query_safe('BEGIN');
$stuck->query_safe('SELECT count(*) FROM jobq.queue');
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $stuck_pid"),
    'idle in transaction', 'the listener sits in an open transaction');

my $script = "$dir/enqueue.sql";
open my $fh, '>', $script or die;
print $fh "SELECT jobq.enqueue('lq', '{}');\n";
close $fh;
my $wake0 = wakeups();
my $t0 = time;
# pgbench in the background; the test samples the NOTIFY queue meanwhile.
my ($out, $err) = ('', '');
my $bench = IPC::Run::start([ 'pgbench', '-n', '-c', $clients, '-j', 2, '-T', $secs, '-R', $rate, '-f', $script,
    '-h', $node->host, '-p', $node->port, 'postgres' ], '>', \$out, '2>', \$err);
my @series;
while ($bench->pumpable) {
    $bench->pump_nb;
    push @series, sprintf('%.0fs:%.2e', time - $t0, usage());
    sleep 1;
}
$bench->finish;
my $bench_rc = $? >> 8;
my $elapsed = time - $t0;
my $usage1 = usage();
my $wake1 = wakeups();
my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
my ($tps) = $out =~ /tps = ([\d.]+)/;
is($bench_rc, 0, "pgbench ($clients clients, ${secs}s, $rate/s) exited 0") or diag("$out\n$err");
is($failed // 0, 0, 'no enqueue failed');
cmp_ok($processed // 0, '>', 0, 'producers committed enqueues');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE queue = 'lq'"), $processed // -1,
    'every acknowledged enqueue is in the database');
cmp_ok($usage1, '>', $usage0, 'the stuck listener holds the NOTIFY queue (usage grew)');
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $stuck_pid"),
    'idle in transaction', 'the listener was stuck the whole time');

# The listener goes away (its session ends, so the server can advance the
# queue's tail past what it never read). The tail moves when a later
# NOTIFY crosses a page boundary, so a trickle of enqueues goes on.
my $t_end = time;
$stuck->quit;
my $fell = chaos_wait(60, sub {
    $node->safe_psql('postgres', "SELECT jobq.enqueue('lq', '{}'); SELECT pg_sleep(0.01)");
    usage() <= $usage0 + ($usage1 - $usage0) / 10;
}, 0.05);
my $fall_secs = time - $t_end;
my $usage2 = usage();
ok($fell, 'after the listener ends, NOTIFY queue usage falls back') or diag("usage $usage2, was $usage1");
my $t_drain = time;
ok(wait_quiescent($node, 300, queue => 'lq'), 'the runner drained every job');
note(sprintf('drained the rest in %.1fs', time - $t_drain));
stop_runner($runner, 'TERM');

my $grow = $usage1 - $usage0;
my $per_1000 = $processed ? $grow / $processed * 1000 : 0;
my $jobs_to_fill = $per_1000 > 0 ? 1000 / $per_1000 : 0;
my $secs_to_fill = $grow > 0 ? $elapsed / $grow : 0;
diag(sprintf('chaos_listener: %d producers x %ds at up to %d/s (pgbench -R, one enqueue per transaction), listener stuck in a '
    . 'transaction: %d jobs enqueued (%.0f/s), 0 failed; %d wake-ups sent (%.1f per 1,000 jobs); '
    . 'NOTIFY queue usage %.2e -> %.2e (%.0f kB), growth %.2e per 1,000 jobs (%.1f kB); '
    . 'full after ~%.2e jobs, ~%.1f h at this rate; after the listener ended usage fell to %.2e in %.1fs',
    $clients, $secs, $rate, $processed // 0, $tps // 0, $wake1 - $wake0, $processed ? ($wake1 - $wake0) / $processed * 1000 : 0,
    $usage0, $usage1, $grow * $queue_bytes / 1024, $per_1000, $per_1000 * $queue_bytes / 1024,
    $jobs_to_fill, $secs_to_fill / 3600, $usage2, $fall_secs));
my $every = int(@series / 20) + 1;    # about 20 samples, the last one included
diag('chaos_listener usage series: ' . join(' ', @series[ grep { $_ % $every == 0 || $_ == $#series } 0 .. $#series ]));
check_server_log($node);
done_testing();
