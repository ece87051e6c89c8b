# Chaos 7: heartbeats and a stalled runner, with the real runner.
#
# Phase 1: handlers that run 2.5x longer than the lease finish exactly once
# on attempt 1: heartbeats keep their leases.
# Phase 2: a runner is frozen with SIGSTOP while its handlers run (they go
# on and finish: they are their own process group). Its heartbeats stop, the
# rescuer takes the jobs back after the lease, a second runner runs them
# again and completes them. Then the frozen runner is resumed (SIGCONT): its
# completions carry stale lease tokens and are refused (0 rows), the jobs
# stay completed by the second runner, and the checker explains every extra
# run by the stall. Reports time-to-rescue after the stall.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $lease = 2;
my $node = chaos_node('stall');
chaos_queue($node, 'hb', lease => "'$lease seconds'", max_attempts => 5);
my $dir = chaos_dir();
my $ledger = "$dir/ledger";
my $toml = chaos_runner_toml(ledger => $ledger, queue => 'hb', concurrency => 4, poll => '200ms');

# --- phase 1: long handlers, heartbeats ---------------------------------------
my $r1 = start_runner($node, $toml, dir => $dir, wait => 10);
$node->safe_psql('postgres', q{SELECT jobq.enqueue('hb', jsonb_build_object('tag', 'long-' || g, 'sleep_ms', 5000))
    FROM generate_series(1, 4) g});
ok(wait_quiescent($node, 30, queue => 'hb'), 'long handlers (5 s, lease 2 s) finished');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT state || '/' || attempt, ',') FROM jobq.jobs
    WHERE payload->>'tag' LIKE 'long-%'}), 'completed/1', 'each completed on attempt 1');
my $long_runs = () = grep { /^S / } do { open my $fh, '<', $ledger or die; <$fh> };
is($long_runs, 4, 'each ran exactly once: heartbeats kept the leases');

# --- phase 2: freeze a runner -------------------------------------------------
my $n = 4;
my $first = $node->safe_psql('postgres', "SELECT min(id) FROM (SELECT jobq.enqueue('hb', jsonb_build_object('tag', 'stall-' || g, 'sleep_ms', 3000))
    AS id FROM generate_series(1, $n) g) s");
ok(chaos_wait(10, sub {
    my @s = grep { /^S \d+ 1 \S+ $r1->{pid} / } do { open my $fh, '<', $ledger or die; <$fh> };
    @s >= $long_runs + $n;
}), "runner 1 started all $n jobs");
ledger_event($ledger, 'Z', $r1->{pid});
kill 'STOP', $r1->{pid};
my $t_stop = time;
my $r2 = start_runner($node, $toml, dir => $dir, wait => 10);
my $rescued = chaos_wait(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id >= $first AND errors::text LIKE '%rescued by%'") == $n
});
my $rescue_s = time - $t_stop;
ok($rescued, 'the stalled runner\'s jobs were rescued after their lease');
ok(chaos_wait(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id >= $first AND state = 'completed'") == $n
}), 'runner 2 ran and completed them');
my $before = $node->safe_psql('postgres', "SELECT id, state, attempt, worker, result, finished_at FROM jobq.jobs WHERE id >= $first ORDER BY id");
like($before, qr/\|completed\|2\|/, 'completed on attempt 2');
# Wake runner 1: its handlers finished long ago; it settles with stale tokens.
kill 'CONT', $r1->{pid};
ok(chaos_wait(15, sub { my @r = runner_log($r1) =~ /completion not applied: the lease was no longer ours/g; @r >= $n }),
   "runner 1's $n late completions were refused (stale lease tokens)") or diag(runner_log($r1));
is($node->safe_psql('postgres', "SELECT id, state, attempt, worker, result, finished_at FROM jobq.jobs WHERE id >= $first ORDER BY id"),
   $before, 'the jobs are exactly as runner 2 left them');
ok(runner_alive($r1), 'runner 1 carries on after the refusals');
stop_runner($_, 'TERM') for $r1, $r2;

my ($rc, $fig, $out) = run_checker($node, ledger => $ledger, runner_logs => [ $r1->{log}, $r2->{log} ], lease => $lease);
note($out);
is($fig->{lost}, 0, 'lost = 0');
is($fig->{unexplained_duplicates}, 0, 'every extra run explained by the stall');
is($rc, 0, 'checker verdict PASS');
diag(sprintf('chaos_stall: 4 handlers of 2.5x the lease ran once each; stalled runner: %d jobs rescued %.2fs after '
    . 'SIGSTOP (lease %ds + rescue_interval 0.2s), re-run and completed by runner 2, %d stale completions refused, '
    . 'duplicated=%d (all explained)', $n, $rescue_s, $lease, $fig->{stale_completions_refused}, $fig->{duplicated}));
check_server_log($node);
done_testing();
