# Chaos 6 (short): xmin pinned by a long REPEATABLE READ transaction while
# runners drain. Two phases with the same load: clean, then with a snapshot
# held open from before the phase started (so every claimed, completed and
# archived row stays as a dead tuple). Reports the drain throughput ratio
# pinned/clean, the empty-queue claim latency p50/p99 after each phase, the
# dead tuples left in the hot table, and how old the snapshots of jobq's own
# connections (runner, background worker) got. Figures only: not asserted,
# except that both phases drain and jobq's own connections never sit idle in
# a transaction.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $n = chaos_param(short => 20000, long => 200000);
my $node = chaos_node('xmin', 'autovacuum_naptime = 1s');
chaos_queue($node, 'xq', lease => "'30 seconds'");
$node->safe_psql('postgres', q{
    CREATE FUNCTION claim_probe(n int) RETURNS text LANGUAGE plpgsql AS $$
    DECLARE
        t timestamptz;
        ms double precision[] := '{}';
    BEGIN
        FOR i IN 1 .. n LOOP
            t := clock_timestamp();
            PERFORM * FROM jobq.claim(ARRAY['xq'], 'probe', 10);
            ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
        END LOOP;
        RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3) || '|'
                    || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY x)::numeric, 3) FROM unnest(ms) x);
    END $$});
my $dir = chaos_dir();
my $runner = start_runner($node, <<'TOML', dir => $dir, wait => 10);
[runner]
poll_interval = "200ms"
[queues.xq]
handler = "noop"
concurrency = 200
TOML

# Samples jobq's own sessions while a phase drains.
my $pin_pid = 0;
my $app_filter;
my @idle_seen;
sub phase {
    my ($name) = @_;
    $app_filter = "backend_type IN ('client backend', 'background worker') AND pid <> pg_backend_pid()
                   AND query NOT LIKE '%claim_probe%' AND pid <> $pin_pid";
    my ($max_age, $idle_tx) = (0, 0);
    my $t0 = time;
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.enqueue_many('xq',
        (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, $n) g))");
    my $done = chaos_wait(300, sub {
        my ($age, $idle, $left) = split /\|/, $node->safe_psql('postgres', qq{
            SELECT coalesce(max(age(backend_xmin)) FILTER (WHERE backend_type = 'client backend' OR backend_type LIKE 'jobq%'), 0),
                   count(*) FILTER (WHERE state LIKE 'idle in transaction%'),
                   (SELECT count(*) FROM jobq.job)
            FROM pg_stat_activity WHERE ($app_filter) AND (backend_xmin IS NOT NULL OR state LIKE 'idle in transaction%')});
        $max_age = $age if $age > $max_age;
        $idle_tx += $idle;
        push @idle_seen, $node->safe_psql('postgres', qq{SELECT string_agg(backend_type || ' app=' || application_name
            || ' query=' || left(query, 80), '; ') FROM pg_stat_activity WHERE ($app_filter) AND state LIKE 'idle in transaction%'})
          if $idle;
        return $left == 0;
    }, 0.1);
    my $secs = time - $t0;
    my ($p50, $p99) = split /\|/, $node->safe_psql('postgres', 'SELECT claim_probe(200)');
    my $dead = $node->safe_psql('postgres', q{SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobq.job'::regclass});
    return { name => $name, done => $done, secs => $secs, rate => $n / $secs, p50 => $p50, p99 => $p99,
             dead => $dead, max_xmin_age => $max_age, idle_tx => $idle_tx };
}

my $clean = phase('clean');
ok($clean->{done}, "clean phase: $n jobs drained");
my $pin = $node->background_psql('postgres');
$pin_pid = $pin->query_safe('SELECT pg_backend_pid()');
$pin->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$pin->query_safe('SELECT count(*) FROM jobq.archive');    # takes the snapshot: xmin pinned from here
my $pinned = phase('pinned');
ok($pinned->{done}, "pinned phase: $n jobs drained with xmin held");
my $pin_age = $node->safe_psql('postgres', q{SELECT max(age(backend_xmin)) FROM pg_stat_activity
    WHERE backend_xmin IS NOT NULL AND state = 'idle in transaction'});
$pin->query_safe('COMMIT');
$pin->quit;
is($clean->{idle_tx} + $pinned->{idle_tx}, 0, "jobq's own connections were never seen idle in a transaction")
  or diag(join("\n", @idle_seen));
stop_runner($runner, 'TERM');

for my $p ($clean, $pinned) {
    note(sprintf('%-6s drain %.2fs (%.0f jobs/s), claim on the drained queue p50=%sms p99=%sms, '
        . 'dead tuples in jobq.job=%s, oldest snapshot age of jobq connections=%s xids',
        $p->{name}, $p->{secs}, $p->{rate}, $p->{p50}, $p->{p99}, $p->{dead}, $p->{max_xmin_age}));
}
diag(sprintf('chaos_xmin: %d jobs per phase; throughput pinned/clean = %.2f (%.0f vs %.0f jobs/s); '
    . 'empty-queue claim p99 %sms pinned vs %sms clean; dead tuples in jobq.job %s vs %s; pinning snapshot age %s xids; '
    . 'max snapshot age of jobq connections %s xids',
    $n, $pinned->{rate} / $clean->{rate}, $pinned->{rate}, $clean->{rate}, $pinned->{p99}, $clean->{p99},
    $pinned->{dead}, $clean->{dead}, $pin_age || '?', $clean->{max_xmin_age} > $pinned->{max_xmin_age}
      ? $clean->{max_xmin_age} : $pinned->{max_xmin_age}));
check_server_log($node);
done_testing();
