# Chaos 2: PostgreSQL crashes while producers enqueue and runners drain.
#
# Two producers enqueue in a loop (every 7th batch inside a transaction that
# is rolled back on purpose) and two runners with the ledger handler drain,
# while the test alternates `kill -9` of a client backend (the postmaster
# then crash-restarts every process) and an immediate stop + start. At
# quiescence: acknowledged enqueues lost = 0, rolled-back enqueues visible =
# 0, no job in an impossible state (constraints re-checked by query, indexes
# by amcheck), every extra run explained by a crash, and the runners
# reconnected by themselves and drained. Reports reconnect times.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);

my $faults = chaos_param(short => 6, long => 40);
my $lease = 2;

my $node = chaos_node('pg_crash', 'restart_after_crash = on');
chaos_queue($node, 'chaos', lease => "'$lease seconds'", max_attempts => 25);
my $dir = chaos_dir();
my $ledger = "$dir/ledger";
my $toml = chaos_runner_toml(ledger => $ledger, concurrency => 4, reconnect_max => '1s', query_timeout => '5s');
my @runners = map { start_runner($node, $toml, dir => $dir, wait => 10) } 1 .. 2;
my @producers = map {
    start_producer($node, dir => $dir, prefix => "pc$_", batch => 10, rollback_every => 7,
                   extra => '"sleep_ms":10', pause_ms => 20)
} 1 .. 2;

sub completed { try_psql($node, "SELECT count(*) FROM jobq.archive WHERE state = 'completed'") // -1 }

ok(chaos_wait(30, sub { completed() >= 50 }), 'jobs flow before the first fault');

my (@killed_pids, @fault_wall, @recover, $backend_kills);
$backend_kills = 0;
for my $i (1 .. $faults) {
    sleep(1 + rand(1.5));
    my $before;
    chaos_wait(30, sub { ($before = completed()) >= 0 });
    my $t = time;
    if ($i % 2) {
        # kill -9 of a client backend: preferably a runner's, while it works.
        my $pid = try_psql($node, q{
            SELECT pid FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
            ORDER BY (state = 'active') DESC, random() LIMIT 1});
        next unless $pid;
        ledger_event($ledger, 'X', 'backend-kill9');
        kill 'KILL', $pid;
        push @killed_pids, $pid;
        $backend_kills++;
        note("fault $i: kill -9 of backend $pid");
        # The postmaster restarts everything; wait until it accepts again.
        chaos_wait(30, sub { defined try_psql($node, 'SELECT 1') }, 0.1);
    } else {
        ledger_event($ledger, 'X', 'immediate-stop');
        $node->stop('immediate');
        note("fault $i: immediate stop + start");
        sleep(rand(1));
        $node->start;
    }
    push @fault_wall, $t;
    # Recovery: completions move again.
    my $back = chaos_wait(60, sub { completed() > $before }, 0.1);
    push @recover, $back ? time - $t : 999;
}
ok(1, "$faults faults injected ($backend_kills backend kills)");

stop_producer($_) for @producers;
ok(wait_quiescent($node, chaos_param(short => 300, long => 1200)), 'runners drained every job after the faults')
  or diag(explain(job_counts($node)));
ok((grep { runner_alive($_) } @runners) == 2, 'both runners survived every fault (no restart by the test)');
stop_runner($_, 'TERM') for @runners;

my ($rc, $fig, $out) = run_checker($node, ledger => $ledger, produced => [ map { $_->{log} } @producers ],
    runner_logs => [ map { $_->{log} } @runners ], lease => $lease, json => "$dir/check.json");
note($out);
cmp_ok($fig->{acknowledged}, '>', 0, 'producers had enqueues acknowledged');
is($fig->{lost}, 0, 'acknowledged enqueues lost = 0');
is($fig->{unexpected}, 0, 'unexpected = 0 (incl. rolled-back enqueues visible)');
is($fig->{unexplained_duplicates}, 0, 'every duplicate explained by a crash');
is($fig->{not_finished}, 0, 'nothing left waiting or running');
is($rc, 0, 'checker verdict PASS');

# Impossible states, re-checked by query (constraints are enforced on
# write, but a crash-recovery bug would show here) and index integrity.
my $impossible = $node->safe_psql('postgres', q{
    SELECT (SELECT count(*) FROM jobq.job j JOIN jobq.archive a USING (id))
         + (SELECT count(*) FROM jobq.job WHERE state NOT IN ('available','scheduled','retryable','running')
               OR (state = 'running') <> (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)
               OR attempt < 0 OR attempt > max_attempts)
         + (SELECT count(*) FROM jobq.archive WHERE state NOT IN ('completed','cancelled','dead')
               OR attempt > max_attempts OR (state = 'completed' AND attempt < 1))});
is($impossible, 0, 'no job in an impossible state');
$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS amcheck');
my ($amrc, $amout, $amerr) = $node->psql('postgres', q{
    SELECT count(*) FROM (
        SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am am ON am.oid = c.relam
        WHERE am.amname = 'btree'
          AND i.indrelid IN ('jobq.job'::regclass, 'jobq.archive'::regclass, 'jobq.queue'::regclass)) s});
is($amrc, 0, 'amcheck: jobq indexes consistent with their tables') or diag($amerr);

# Reconnect time of each runner's work connection after each fault.
my @reconnect;
for my $r (@runners) {
    my @ts;
    for (split /\n/, runner_log($r)) {
        next unless /^ts=(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z .*msg="?reconnected to database"? conn="?work/;
        push @ts, timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1000;
    }
    for my $f (@fault_wall) {
        my ($first) = grep { $_ >= $f } @ts;
        push @reconnect, $first - $f if defined $first && $first - $f < 60;
    }
}
cmp_ok(scalar(@reconnect), '>=', scalar(@fault_wall), 'runners logged their reconnects');
my $fmt = sub { defined $_[0] ? sprintf('%.2fs', $_[0]) : '-' };
diag(sprintf('chaos_pg_crash: faults=%d (backend kill -9: %d, immediate stop: %d) acknowledged=%d unknown=%d '
    . '(committed %d) rolled_back=%d lost=%d duplicated=%d stale settles refused=%d; reconnect p50=%s p99=%s '
    . 'max=%s (n=%d); completions resume p50=%s max=%s',
    $faults, $backend_kills, $faults - $backend_kills, $fig->{acknowledged}, $fig->{unknown_outcome},
    $fig->{unknown_committed}, $fig->{rolled_back}, $fig->{lost}, $fig->{duplicated},
    ($fig->{stale_completions_refused} // 0) + ($fig->{stale_failures_refused} // 0),
    $fmt->(percentile(0.5, @reconnect)), $fmt->(percentile(0.99, @reconnect)),
    $fmt->(percentile(1, @reconnect)), scalar(@reconnect),
    $fmt->(percentile(0.5, @recover)), $fmt->(percentile(1, @recover))));

# Only the crashes this test caused: the killed backends, one crash restart each.
my $pids = join '|', @killed_pids;
my @crash_lines = grep { /terminating any other active server processes/ } server_log_problems($node);
cmp_ok(scalar(@crash_lines), '<=', $backend_kills, 'no crash restart beyond the backend kills');
check_server_log($node, allow => qr/\(PID (?:$pids)\) was terminated by signal 9|terminating any other active server processes/);
done_testing();
