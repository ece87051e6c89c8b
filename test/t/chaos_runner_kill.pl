# Chaos 1: runners SIGKILLed at random moments during a drain.
#
# 2-3 runners with the ledger handler drain a queue while the test kills a
# random runner every few hundred ms (and starts a new one). At quiescence:
# no acknowledged job lost, every job completed, every extra run explained by
# a kill in the ledger, nothing left waiting or running. Reports the time
# from a kill to the rescued job's next start against lease + rescue
# interval.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $jobs = chaos_param(short => 1500, long => 10000);
my $kills_max = chaos_param(short => 25, long => 200);
my $n_runners = 3;
my $lease = 2;
my $rescue_ms = 200;

my $node = chaos_node('runner_kill', "jobq.rescue_interval = ${rescue_ms}ms");
chaos_queue($node, 'chaos', lease => "'$lease seconds'", max_attempts => 25);
my $dir = chaos_dir();
my $ledger = "$dir/ledger";
my $toml = chaos_runner_toml(ledger => $ledger, concurrency => 6);

my @runners = map { start_runner($node, $toml, dir => $dir, wait => 10) } 1 .. $n_runners;
my @all_runners = @runners;
my $t0 = JobqChaos::mono();
my $producer = start_producer($node, dir => $dir, prefix => 'rk', count => $jobs, batch => 250,
                              extra => '"sleep_ms":' . chaos_param(short => 20, long => 40));

# Kill a random runner every 200-600 ms (long: 50-350 ms, and 40 ms jobs, so the
# 200 kills land inside the drain) until the kill budget is used or the drain is done.
my ($kills, $done) = (0, 0);
my $kill_deadline = $t0 + chaos_param(short => 60, long => 600);
while ($kills < $kills_max && JobqChaos::mono() < $kill_deadline) {
    sleep(chaos_param(short => 0.2, long => 0.05) + rand(chaos_param(short => 0.4, long => 0.3)));
    my $left = $node->safe_psql('postgres',
        "SELECT count(*) FROM jobq.job");
    my $acked = () = do { open my $fh, '<', $producer->{log}; <$fh> };
    last if $acked >= $jobs && $left == 0;
    my $i = int(rand(@runners));
    kill_runner($runners[$i], $ledger);
    $kills++;
    $runners[$i] = start_runner($node, $toml, dir => $dir);
    push @all_runners, $runners[$i];
}
note("kills: $kills");
ok(wait_producer($producer, 120), 'producer finished');

my $quiet = wait_quiescent($node, chaos_param(short => 90, long => 600), min => $jobs);
my $drain_s = JobqChaos::mono() - $t0;
ok($quiet, "the queue drained after $kills runner kills")
  or diag(explain(job_counts($node)));
stop_runner($_, 'TERM') for @runners;

my ($rc, $fig, $out) = run_checker($node, ledger => $ledger, produced => [ $producer->{log} ],
    runner_logs => [ map { $_->{log} } @all_runners ], lease => $lease, json => "$dir/check.json");
note($out);
is($fig->{acknowledged}, $jobs, "all $jobs enqueues acknowledged");
is($fig->{lost}, 0, 'lost = 0');
is($fig->{unexpected}, 0, 'unexpected = 0');
is($fig->{unexplained_duplicates}, 0, 'every duplicate explained (runner kill, or the runner fencing itself)');
is($fig->{completed}, $jobs, 'every job completed');
is($fig->{not_finished}, 0, 'nothing left waiting or running');
is($rc, 0, 'checker verdict PASS');
cmp_ok($fig->{runner_kills}, '>=', chaos_param(short => 5, long => 50), 'runners were really killed');

my $bound = $lease + $rescue_ms / 1000;
diag(sprintf('chaos_runner_kill: jobs=%d kills=%d drain=%.1fs duplicated=%d (jobs %d, %s after the handler had '
    . 'finished) claims_without_run=%d time-to-rescue (kill -> rescued) p50=%ss p90=%ss max=%ss (n=%s) vs '
    . 'lease+rescue_interval=%.1fs; kill -> next run p50=%ss max=%ss (FIFO: behind the backlog); stale settles refused=%d',
    $jobs, $fig->{runner_kills}, $drain_s, $fig->{duplicated}, $fig->{duplicated_jobs},
    ($out =~ /before the completion was acknowledged" = (\d+)/)[0] // 0,
    $fig->{claims_without_run}, $fig->{rescue_p50_s} // '-', $fig->{rescue_p90_s} // '-',
    $fig->{rescue_max_s} // '-', $fig->{rescue_samples} // 0, $bound, $fig->{rerun_p50_s} // '-',
    $fig->{rerun_max_s} // '-',
    ($fig->{stale_completions_refused} // 0) + ($fig->{stale_failures_refused} // 0)));
if (defined $fig->{rescue_max_s}) {
    # Rescue happens once the lease (extended by the last heartbeat) expired
    # and the next sweep ran: within lease + rescue_interval, plus slack for
    # a loaded 2-core machine.
    cmp_ok($fig->{rescue_max_s}, '<', $bound + 1.5, 'every killed job was rescued within lease + rescue_interval (+1.5 s)');
}

check_server_log($node);
done_testing();
