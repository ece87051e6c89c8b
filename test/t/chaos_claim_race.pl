# Chaos 9: claim exclusivity under contention (RELIABILITY 5).
#
# 16 pgbench clients claim and complete (separate transactions, like a
# runner) from one queue with batch sizes 1, 10 and 100, logging every
# claimed (job, token, attempt, batch). Then: 0 jobs claimed twice, 0
# batches larger than asked for, every claim completed exactly once, and a
# queue with concurrency 5 never had more than 5 jobs running (sampled while
# claimers race on it). Reports claims/s per batch size.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $clients = 16;
my $secs = chaos_param(short => 4, long => 30);
my $node = chaos_node('claim_race', 'max_connections = 60');
chaos_queue($node, 'cx', lease => "'10 minutes'");
chaos_queue($node, 'cl', lease => "'10 minutes'", concurrency => 5);
$node->safe_psql('postgres', q{
    CREATE TABLE claimlog (id bigint, token bigint, attempt int, claimer int, batch int, n int,
                           done boolean NOT NULL DEFAULT false, at timestamptz DEFAULT clock_timestamp());
    CREATE INDEX ON claimlog (claimer) WHERE NOT done;
});
my $dir = chaos_dir();

sub bench {
    my ($queue, $batch, $jobs) = @_;
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.enqueue_many('$queue',
        (SELECT array_agg(jsonb_build_object('b', $batch, 'n', g)) FROM generate_series(1, $jobs) g))");
    my $script = "$dir/claim-$queue-$batch.sql";
    open my $fh, '>', $script or die;
    print $fh <<"SQL";
WITH c AS (SELECT * FROM jobq.claim(ARRAY['$queue'], 'c' || :client_id, $batch))
INSERT INTO claimlog (id, token, attempt, claimer, batch, n)
SELECT id, lease_token, attempt, :client_id, $batch, (SELECT count(*) FROM c) FROM c;
WITH t AS (UPDATE claimlog SET done = true WHERE claimer = :client_id AND NOT done RETURNING id, token)
SELECT count(*) FROM (SELECT coalesce(array_agg(id ORDER BY id), '{}') i, coalesce(array_agg(token ORDER BY id), '{}') k FROM t) s,
     LATERAL jobq.complete(s.i, s.k);
SQL
    close $fh;
    my $out = "$dir/pgbench-$queue-$batch.out";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec 'pgbench', '-n', '-c', $clients, '-j', 2, '-T', $secs, '-f', $script, $node->connstr('postgres');
        exit 127;
    }
    my $max_running = 0;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        my $r = try_psql($node, "SELECT count(*) FROM jobq.job WHERE queue = '$queue' AND state = 'running'") // 0;
        $max_running = $r if $r > $max_running;
        sleep(0.02);
    }
    my $rc = $? >> 8;
    my $text = do { local $/; open my $o, '<', $out or die; <$o> };
    return ($rc, $text, $max_running);
}

my %fig;
for my $batch (1, 10, 100) {
    $node->safe_psql('postgres', 'TRUNCATE claimlog');
    my ($rc, $text, undef) = bench('cx', $batch, chaos_param(short => 20000, long => 200000));
    is($rc, 0, "batch $batch: pgbench ran") or diag($text);
    my ($claims, $doubles, $over, $not_done, $wrong_attempt, $completed) = split /\|/, $node->safe_psql('postgres', qq{
        SELECT (SELECT count(*) FROM claimlog),
               (SELECT count(*) FROM (SELECT id FROM claimlog GROUP BY id HAVING count(*) > 1) d),
               (SELECT count(*) FROM claimlog WHERE n > batch),
               (SELECT count(*) FROM claimlog WHERE NOT done),
               (SELECT count(*) FROM claimlog WHERE attempt <> 1),
               (SELECT count(*) FROM jobq.archive a JOIN claimlog l USING (id) WHERE a.state = 'completed')});
    cmp_ok($claims, '>', 0, "batch $batch: $claims jobs claimed");
    is($doubles, 0, "batch $batch: no job claimed twice");
    is($over, 0, "batch $batch: no batch over $batch");
    is($wrong_attempt, 0, "batch $batch: every claim was attempt 1");
    is($completed, $claims - $not_done, "batch $batch: every settled claim completed exactly once");
    $fig{$batch} = sprintf('%.0f', $claims / $secs);
}

# Concurrency limit under the same race.
$node->safe_psql('postgres', 'TRUNCATE claimlog');
my ($rc, $text, $max_running) = bench('cl', 10, 5000);
is($rc, 0, 'concurrency-limited queue: pgbench ran') or diag($text);
cmp_ok($max_running, '<=', 5, "queue with concurrency 5: at most 5 running (max seen $max_running)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM (SELECT id FROM claimlog GROUP BY id HAVING count(*) > 1) d'), 0,
   'no job claimed twice');
my $max_batch = $node->safe_psql('postgres', 'SELECT coalesce(max(n), 0) FROM claimlog');
cmp_ok($max_batch, '<=', 5, "no claim returned more than the limit ($max_batch)");

diag(sprintf('chaos_claim_race: %d clients x %ds: claims/s batch 1=%s, 10=%s, 100=%s; 0 double claims, 0 batches over '
    . 'the limit; concurrency 5: max running seen %d', $clients, $secs, @fig{1, 10, 100}, $max_running));
check_server_log($node);
done_testing();
