# Chaos 4: poison jobs. Always-failing, segfaulting (`kill -SEGV $$` in the
# handler) and hanging-past-timeout jobs end dead after exactly
# max_attempts runs with the last error kept; a job that SIGKILLs its own
# runner (restarted by the test each time) also ends dead after exactly
# max_attempts, through the lease rescuer. Meanwhile healthy jobs in another
# queue of the same runner keep flowing. Reports the healthy throughput
# with poison against a clean baseline.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $max_attempts = 3;
my %poison = (fail => 5, segv => 5, hang => 3);
my $healthy = chaos_param(short => 300, long => 3000);

my $node = chaos_node('poison');
chaos_queue($node, 'poison', max_attempts => $max_attempts, lease => "'5 seconds'",
            backoff_base => "'50 milliseconds'", backoff_max => "'200 milliseconds'");
chaos_queue($node, 'healthy', max_attempts => $max_attempts);
my $dir = chaos_dir();
my $ledger = "$dir/ledger";
my $cmd = "[\"/usr/bin/perl\", \"$JobqChaos::HANDLER\", \"$ledger\"]";
my $runner = start_runner($node, <<"TOML", dir => $dir, wait => 10);
[runner]
poll_interval = "500ms"
[queues.healthy]
handler = "exec"
command = $cmd
concurrency = 4
timeout = "30s"
[queues.poison]
handler = "exec"
command = $cmd
concurrency = 3
timeout = "1s"
kill_grace = "200ms"
TOML

sub enqueue_healthy {
    my ($n, $tag) = @_;
    $node->safe_psql('postgres', "SELECT count(jobq.enqueue('healthy', jsonb_build_object('tag', '$tag-' || g, 'sleep_ms', 10)))
        FROM generate_series(1, $n) g");
}
sub drain_time {
    my ($tag, $n, $t0) = @_;
    chaos_wait(chaos_param(short => 120, long => 1200), sub {
        $node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE state = 'completed' AND payload->>'tag' LIKE '$tag-%'") == $n
    }, 0.05) or return undef;
    return time - $t0;
}

# Baseline: healthy jobs alone.
my $t0 = time;
enqueue_healthy($healthy, 'base');
my $base_s = drain_time('base', $healthy, $t0);
ok(defined $base_s, "baseline: $healthy healthy jobs completed");

# Poison and healthy together.
$t0 = time;
my $values = join ',', map { my $m = $_; map {"('{\"mode\":\"$m\",\"tag\":\"$m-$_\"}')"} 1 .. $poison{$m} } sort keys %poison;
$node->safe_psql('postgres', "SELECT jobq.enqueue('poison', p::jsonb) FROM (VALUES $values) v(p)");
enqueue_healthy($healthy, 'mixed');
my $mixed_s = drain_time('mixed', $healthy, $t0);
ok(defined $mixed_s, "with poison jobs running: $healthy healthy jobs completed");
my $n_poison = 0;
$n_poison += $_ for values %poison;
ok(wait_quiescent($node, 60, queue => 'poison'), 'every poison job reached a final state')
  or diag(explain(job_counts($node, 'poison')));

my %expect_error = (fail => qr/exit status 1.*failing on purpose \(job \d+ attempt $max_attempts\)/s,
                    segv => qr/signal 11|SIGSEGV/, hang => qr/tim(e|ed) ?out/i);
for my $mode (sort keys %poison) {
    my $rows = $node->safe_psql('postgres', qq{
        SELECT id, state, attempt, jsonb_array_length(coalesce(errors, '[]')), errors->-1->>'error',
               (errors->-1->>'attempt')
        FROM jobq.jobs WHERE queue = 'poison' AND payload->>'mode' = '$mode' ORDER BY id});
    my @rows = map { [ split /\|/, $_, 6 ] } split /\n/, $rows;
    is(scalar(@rows), $poison{$mode}, "$mode: $poison{$mode} jobs");
    my @bad_state = grep { $_->[1] ne 'dead' || $_->[2] != $max_attempts } @rows;
    ok(!@bad_state, "$mode: every job dead after exactly $max_attempts attempts")
      or diag(explain(\@bad_state));
    my @bad_err = grep { $_->[3] != $max_attempts || ($_->[4] // '') !~ $expect_error{$mode} } @rows;
    ok(!@bad_err, "$mode: one error per attempt kept, the last one says what happened")
      or diag(explain(\@bad_err));
    note("$mode: last error: " . ($rows[0][4] // '(none)')) if @rows;
}

# Ledger: exactly max_attempts runs of each poison job, attempts 1..max.
my %runs;
for (do { open my $fh, '<', $ledger or die; <$fh> }) {
    my @f = split / /;
    next unless $f[0] eq 'S' && $f[8] =~ /^(fail|segv|hang)$/;
    push @{ $runs{ $f[1] } }, $f[2];
}
my @wrong = grep { join(',', sort { $a <=> $b } @{ $runs{$_} }) ne join(',', 1 .. $max_attempts) } keys %runs;
is(scalar(keys %runs), $n_poison, 'the ledger has runs of every poison job');
ok(!@wrong, "each poison job ran exactly $max_attempts times, as attempts 1..$max_attempts")
  or diag(explain({ map { $_ => $runs{$_} } @wrong }));
ok(runner_alive($runner), 'the runner survived its segfaulting and hanging children');

# A job that kills its runner: a dedicated runner, restarted whenever it dies.
chaos_queue($node, 'killer', max_attempts => $max_attempts, lease => "'1 second'",
            backoff_base => "'50 milliseconds'", backoff_max => "'100 milliseconds'");
my $killer_toml = chaos_runner_toml(ledger => $ledger, queue => 'killer', concurrency => 1, poll => '200ms');
my $kid = $node->safe_psql('postgres', q{SELECT jobq.enqueue('killer', '{"mode":"kill_runner","tag":"killer-1"}')});
my $kr = start_runner($node, $killer_toml, dir => $dir, wait => 10);
my $restarts = 0;
my $killer_done = chaos_wait(60, sub {
    if (!runner_alive($kr)) {
        ledger_event($ledger, 'K', $kr->{pid});
        $kr = start_runner($node, $killer_toml, dir => $dir);
        $restarts++;
    }
    $node->safe_psql('postgres', "SELECT state FROM jobq.jobs WHERE id = $kid") eq 'dead';
}, 0.1);
ok($killer_done, "a job that SIGKILLs its runner ends dead ($restarts runner restarts)");
is($node->safe_psql('postgres', "SELECT attempt || '/' || jsonb_array_length(errors) FROM jobq.jobs WHERE id = $kid"),
   "$max_attempts/$max_attempts", "after exactly $max_attempts attempts, one error each");
like($node->safe_psql('postgres', "SELECT errors->-1->>'error' FROM jobq.jobs WHERE id = $kid"),
     qr/lease expired|rescued/, 'the last error names the lease rescue');
my $killer_runs = () = grep { /^S $kid / } do { open my $fh, '<', $ledger or die; <$fh> };
is($killer_runs, $max_attempts, "the killer job ran exactly $max_attempts times");
stop_runner($kr, 'TERM');
is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');

my ($rc, $fig, $out) = run_checker($node, ledger => $ledger, runner_logs => [ $runner->{log} ]);
note($out);
is($rc, 0, 'checker: nothing lost or unexplained');
diag(sprintf('chaos_poison: %d poison jobs (fail %d, segv %d, hang %d) dead after %d attempts; healthy %d jobs: '
    . 'baseline %.2fs (%.0f/s), with poison %.2fs (%.0f/s), throughput ratio %.2f; retries=%d',
    $n_poison, @poison{qw(fail segv hang)}, $max_attempts, $healthy, $base_s // 0, $healthy / ($base_s || 1),
    $mixed_s // 0, $healthy / ($mixed_s || 1), ($base_s // 0) / ($mixed_s || 1), $fig->{retries} // 0));
check_server_log($node);
done_testing();
