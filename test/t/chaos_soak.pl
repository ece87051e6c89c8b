# Chaos 12: long soak with retention on. Cycle after cycle, a producer
# enqueues a steady stream (small committed batches) while a runner drains
# it; the queue keeps 2 s of history, so the background worker prunes the
# archive all the time. After every cycle the test samples the hot table
# (jobq.job heap and indexes), the archive and their dead tuples.
#
# Asserted: every cycle drains; the hot table plus its indexes at the end
# (smallest of the last three samples) is no bigger than a bound taken
# from the early cycles (a leak or bloat that grows with the number of
# jobs would pass it), the same for the archive; no finished job outlives
# its retention by more than a generous slack; the archive empties once
# the load stops; no crash. The series is printed, never asserted against
# a speed.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

# A cycle offers its jobs over about one second, so the run spans many
# retention periods whatever the machine's speed.
my $cycles = chaos_param(short => 15, long => 200);
my $per_cycle = chaos_param(short => 1000, long => 2000);
my $retention = 2;    # seconds
my $slack = 8;        # seconds a finished job may outlive its retention (loaded machine)

# autovacuum_naptime 1s: jobq.job's own autovacuum thresholds are low, but
# the default 1-minute naptime would leave a 30 s test without any vacuum
# (see docs/benchmarks.md, W5).
my $node = chaos_node('soak', 'autovacuum_naptime = 1s', "jobq.prune_interval = '200ms'",
    'jobq.prune_batch_size = 500');
chaos_queue($node, 'soak', lease => "'30 seconds'", retention => "'$retention seconds'");
my $dir = chaos_dir();
my $runner = start_runner($node, <<'TOML', dir => $dir, wait => 10);
[runner]
poll_interval = "200ms"
[queues.soak]
handler = "noop"
concurrency = 100
TOML

my $chunk = 50;
my $chunks = $per_cycle / $chunk;
my $pause = sprintf('%.4f', 1 / $chunks);
my $sample_sql = qq{
    SELECT pg_relation_size('jobq.job'), pg_indexes_size('jobq.job'),
           pg_total_relation_size('jobq.archive'), (SELECT count(*) FROM jobq.archive),
           coalesce((SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobq.job'::regclass), 0),
           coalesce((SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobq.archive'::regclass), 0),
           coalesce(extract(epoch FROM now() - (SELECT min(finished_at) FROM jobq.archive
                                                 WHERE state IN ('completed', 'cancelled'))), 0)};
my (@series, $undrained);
my $t0 = time;
for my $c (1 .. $cycles) {
    my $tc = time;
    # Steady enqueue: small batches, each committed on its own and paced
    # over about a second, while the runner drains (a DO block may COMMIT
    # between statements).
    $node->safe_psql('postgres', qq{
        DO \$\$ BEGIN
            FOR i IN 1 .. $chunks LOOP
                PERFORM jobq.enqueue_many('soak',
                    (SELECT array_agg(jsonb_build_object('c', $c, 'n', g)) FROM generate_series(1, $chunk) g));
                COMMIT;
                PERFORM pg_sleep($pause);
            END LOOP;
        END \$\$});
    my $drained = chaos_wait(120, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM jobq.job') == 0 }, 0.05);
    $undrained++ unless $drained;
    my ($heap, $idx, $arch, $arch_rows, $dead, $arch_dead, $oldest) =
      split /\|/, $node->safe_psql('postgres', $sample_sql);
    push @series, { c => $c, end => time - $t0, heap => $heap, idx => $idx, hot => $heap + $idx, arch => $arch, arch_rows => $arch_rows,
                    dead => $dead, arch_dead => $arch_dead, oldest => $oldest, secs => time - $tc };
}
my $elapsed = time - $t0;
ok(!$undrained, "all $cycles cycles of $per_cycle jobs drained") or diag("$undrained cycles did not drain");
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.archive WHERE state <> 'completed'}), '0',
    'every job completed');

my $kb = sub { sprintf('%.0f', $_[0] / 1024) };
note(sprintf('cycle %3d: %5.2fs  jobq.job heap %6s kB + indexes %6s kB, dead %6d | archive %6s kB, %6d rows, '
    . 'dead %6d, oldest finished %4.1fs', $_->{c}, $_->{secs}, $kb->($_->{heap}), $kb->($_->{idx}), $_->{dead},
    $kb->($_->{arch}), $_->{arch_rows}, $_->{arch_dead}, $_->{oldest})) for @series;

# Flatness: the end of the run against the largest of the early cycles, taken
# once the first retention period is over (before it the archive only
# grows). Sizes move in steps with autovacuum's timing, so the bound is 2x
# plus one cycle's worth of rows; a per-job leak grows roughly linearly and,
# over 4x as many cycles as the early window, exceeds it.
my $early = int($cycles / 4) > 3 ? int($cycles / 4) : 3;
my $warm = grep { $_->{end} < $retention + 1 } @series;
$warm = $cycles - 2 * $early if $warm > $cycles - 2 * $early;    # a run slower than expected
my @early = @series[ $warm .. $warm + $early - 1 ];
my $max = sub { my ($k) = @_; my $m = 0; for (@early) { $m = $_->{$k} if $_->{$k} > $m } $m };
my ($hot_early, $arch_early) = ($max->('hot'), $max->('arch'));
my $cycle_bytes = $per_cycle * 400;    # generous: heap row + index entries of one cycle's jobs
my $last = $series[-1];
# The smallest of the last three samples: an autovacuum pass that the
# machine's load delayed inflates one sample for a while, a leak all of them.
my $end_min = sub { my ($k) = @_; my $m; for (@series[ -3 .. -1 ]) { $m = $_->{$k} if !defined $m || $_->{$k} < $m } $m };
cmp_ok($end_min->('hot'), '<=', 2 * $hot_early + $cycle_bytes,
    "jobq.job heap + indexes at the end within 2x the early cycles' maximum (+ one cycle)");
cmp_ok($end_min->('arch'), '<=', 2 * $arch_early + $cycle_bytes,
    "archive size at the end within 2x the early cycles' maximum (+ one cycle)");
my $oldest = 0;
for (@series) { $oldest = $_->{oldest} if $_->{oldest} > $oldest }
cmp_ok($oldest, '<=', $retention + $slack, "no finished job outlived its ${retention}s retention by more than ${slack}s");

stop_runner($runner, 'TERM');
ok(chaos_wait(60, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM jobq.archive') == 0 }),
    'once the load stops, the archive is pruned to nothing');
my ($pruned, $step_errors) = split /\|/, $node->safe_psql('postgres', 'SELECT jobs_pruned, step_errors FROM jobq.worker_status()');
is($step_errors, 0, 'no maintenance step of the worker failed');

my $total = $cycles * $per_cycle;
my $first = $series[0];
my $peak_hot = 0;
$peak_hot = $_->{hot} > $peak_hot ? $_->{hot} : $peak_hot for @series;
diag(sprintf('chaos_soak: %d cycles x %d jobs = %d jobs in %.0fs (%.0f jobs/s), retention %ds, prune interval 200ms; '
    . 'jobq.job heap+indexes (kB): cycle 1 %s, early (cycles %d-%d) max %s, peak %s, last %s (heap %s + indexes %s, dead %d); '
    . 'archive (kB): cycle 1 %s, early max %s, last %s (%d rows); oldest finished job seen %.1fs; pruned %d',
    $cycles, $per_cycle, $total, $elapsed, $total / $elapsed, $retention,
    $kb->($first->{hot}), $early[0]{c}, $early[-1]{c}, $kb->($hot_early), $kb->($peak_hot), $kb->($last->{hot}), $kb->($last->{heap}),
    $kb->($last->{idx}), $last->{dead}, $kb->($first->{arch}), $kb->($arch_early), $kb->($last->{arch}),
    $last->{arch_rows}, $oldest, $pruned));
diag('chaos_soak series (cycle:hot kB/archive kB): '
    . join(' ', map { "$_->{c}:" . $kb->($_->{hot}) . '/' . $kb->($_->{arch}) } @series));
check_server_log($node);
done_testing();
