# Chaos 3: deterministic stale-settle fencing through the SQL API, across
# real connections.
#
# Part 1: A claims, stalls past its lease, the background worker rescues the
# job, B claims it. Every write A can make (complete, fail, fail_many,
# heartbeat, snooze, set_progress, release) changes 0 rows and leaves B's
# job exactly as it was; after B completes, A's settles still change nothing.
# Part 2: the rescuer racing a completion, both orders forced with row locks:
# a completion in flight is skipped by the rescuer and commits; a rescue in
# flight makes the blocked completion change 0 rows. The rescuer never
# reverts a completed job.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $node = chaos_node('stale_settle');
$node->safe_psql('postgres', q{SELECT jobq.create_queue('stale', lease => '1 second', max_attempts => 5,
    backoff_base => '1 millisecond', backoff_max => '1 millisecond', backoff_jitter => 0)});
my $a = $node->background_psql('postgres');
my $b = $node->background_psql('postgres');
my $c = $node->background_psql('postgres');

# A fingerprint of everything a settle could change on a live job.
sub live_row {
    my ($id) = @_;
    return $node->safe_psql('postgres', "SELECT state, attempt, worker, lease_token, lease_expires_at, run_at,
        progress, errors FROM jobq.job WHERE id = $id");
}
sub archived_row {
    my ($id) = @_;
    return $node->safe_psql('postgres', "SELECT state, attempt, worker, progress, errors, result, finished_at
        FROM jobq.archive WHERE id = $id");
}
sub claim {
    my ($s, $who, $queue) = @_;
    my $r = $s->query_safe("SELECT id, lease_token, attempt FROM jobq.claim(ARRAY['$queue'], '$who', 1)");
    return split /\|/, $r;
}

# Every write of the stale holder; returns { call => rows/value }.
sub stale_writes {
    my ($s, $id, $tok) = @_;
    my %r;
    $r{heartbeat} = $s->query_safe("SELECT count(*) FROM jobq.heartbeat(ARRAY[$id]::bigint[], ARRAY[$tok]::bigint[])");
    $r{set_progress} = $s->query_safe("SELECT coalesce(jobq.set_progress($id, $tok, '{\"p\":1}')::text, 'null')");
    $r{snooze} = $s->query_safe("SELECT coalesce(jobq.snooze($id, $tok, '1 hour')::text, 'null')");
    $r{fail} = $s->query_safe("SELECT coalesce(jobq.fail($id, $tok, 'stale failure'), 'null')");
    $r{fail_discard} = $s->query_safe("SELECT coalesce(jobq.fail($id, $tok, 'stale discard', discard => true), 'null')");
    $r{fail_many} = $s->query_safe("SELECT count(*) FROM jobq.fail_many(ARRAY[$id]::bigint[], ARRAY[$tok]::bigint[], ARRAY['stale'])");
    $r{release} = $s->query_safe("SELECT count(*) FROM jobq.release(ARRAY[$id]::bigint[], ARRAY[$tok]::bigint[])");
    $r{complete} = $s->query_safe("SELECT count(*) FROM jobq.complete(ARRAY[$id]::bigint[], ARRAY[$tok]::bigint[], ARRAY['{\"stale\":true}'::jsonb])");
    return \%r;
}
my %zero = (heartbeat => 0, set_progress => 'false', snooze => 'false', fail => 'null', fail_discard => 'null',
            fail_many => 0, release => 0, complete => 0);
sub norm { my ($h) = @_; my %n = %$h; $n{$_} = 'false' for grep { $n{$_} eq 'f' } keys %n; \%n }

# --- part 1: A stalls, the worker rescues, B claims -------------------------
my $id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('stale', '{"n":1}')});
my ($ida, $tok_a, $att_a) = claim($a, 'A', 'stale');
is("$ida/$att_a", "$id/1", 'A claimed the job (attempt 1)');
my $t0 = time;
my $rescued = chaos_wait(30, sub {
    $node->safe_psql('postgres', "SELECT state <> 'running' AND errors::text LIKE '%rescued by%' FROM jobq.job WHERE id = $id") eq 't'
});
ok($rescued, 'the background worker rescued the expired lease (bounded wait: 30 s)')
  or BAIL_OUT('the lease rescuer did not run; the remaining checks need it');
my $rescue_s = time - $t0;
my ($idb, $tok_b, $att_b) = claim($b, 'B', 'stale');
is("$idb/$att_b", "$id/2", 'B claimed the rescued job (attempt 2)');
isnt($tok_b, $tok_a, 'B holds a new lease token');

my $before = live_row($id);
is_deeply(norm(stale_writes($a, $id, $tok_a)), \%zero, "every write of A (stale token) changed 0 rows");
is(live_row($id), $before, "B's job is exactly as before A's writes");
is($b->query_safe("SELECT count(*) FROM jobq.heartbeat(ARRAY[$id]::bigint[], ARRAY[$tok_b]::bigint[])"), 1,
   "B's heartbeat is applied");
is($b->query_safe("SELECT count(*) FROM jobq.complete(ARRAY[$id]::bigint[], ARRAY[$tok_b]::bigint[])"), 1,
   'B completes');
my $done = archived_row($id);
is_deeply(norm(stale_writes($a, $id, $tok_a)), \%zero, 'after completion, every write of A still changes 0 rows');
is_deeply(norm(stale_writes($b, $id, $tok_b)), \%zero, "and so does B's own token once completed");
is(archived_row($id), $done, 'the completed job is unchanged');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.job WHERE id = $id"), 0, 'and not live again');

# A token of one job never settles another.
my ($x, $y) = split /\n/, $node->safe_psql('postgres',
    q{SELECT jobq.enqueue('stale', '{"n":2}') UNION ALL SELECT jobq.enqueue('stale', '{"n":3}')});
my ($i1, $t1) = claim($a, 'A', 'stale');
my ($i2, $t2) = claim($b, 'B', 'stale');
is_deeply(norm(stale_writes($a, $i2, $t1)), \%zero, "a token of job $i1 changes nothing on job $i2");
# A cancelled job refuses its holder's settles.
ok($node->safe_psql('postgres', "SELECT jobq.cancel($i1)") eq 't', "job $i1 cancelled while running");
is_deeply(norm(stale_writes($a, $i1, $t1)), \%zero, 'settles of a cancelled job change 0 rows');
is($node->safe_psql('postgres', "SELECT state FROM jobq.jobs WHERE id = $i1"), 'cancelled', 'it stays cancelled');
$b->query_safe("SELECT jobq.complete(ARRAY[$i2]::bigint[], ARRAY[$t2]::bigint[])");

# --- part 2: the rescuer racing a completion ---------------------------------
# (a) completion first: C's complete holds the row lock past the lease
# expiry; the rescuer (worker, and a manual _rescue) skips the locked row.
my $k = $node->safe_psql('postgres', q{SELECT jobq.enqueue('stale', '{"n":4}')});
my ($ik, $tk) = claim($c, 'C', 'stale');
is($ik, $k, 'C claimed job k');
$c->query_safe('BEGIN');
is($c->query_safe("SELECT count(*) FROM jobq.complete(ARRAY[$k]::bigint[], ARRAY[$tk]::bigint[])"), 1,
   'C completes k inside an open transaction');
sleep(1.6);    # lease expired; the worker swept at least once meanwhile
is($node->safe_psql('postgres', "SELECT jobq._rescue('test')"), 0,
   'a rescue while the completion is uncommitted skips the locked job');
$c->query_safe('COMMIT');
is($node->safe_psql('postgres', "SELECT state FROM jobq.jobs WHERE id = $k"), 'completed', 'k completed');
sleep(0.5);
is($node->safe_psql('postgres', "SELECT jobq._rescue('test')"), 0, 'a later rescue finds nothing');
is($node->safe_psql('postgres', "SELECT state || '/' || attempt FROM jobq.jobs WHERE id = $k"), 'completed/1',
   'the rescuer never reverted the completed job');

# (b) rescue first: the rescuer's open transaction holds m; C's completion
# blocks, then changes 0 rows. The worker's own sweep is slowed down so the
# manual rescue is the one that takes m (a transaction's now() is its start,
# so the rescue runs in a transaction begun after the lease expired).
$node->safe_psql('postgres', "ALTER SYSTEM SET jobq.rescue_interval = '1h'; SELECT pg_reload_conf()");
sleep(0.5);
my $m = $node->safe_psql('postgres', q{SELECT jobq.enqueue('stale', '{"n":5}')});
my ($im, $tm) = claim($c, 'C', 'stale');
is($im, $m, 'C claimed job m');
my $r = $node->background_psql('postgres');
sleep(1.3);
$r->query_safe('BEGIN');
my $n_rescued = $r->query_safe("SELECT jobq._rescue('test')");
is($n_rescued, 1, 'the rescue (in an open transaction) took m');
my $cpid = $c->query_safe('SELECT pg_backend_pid()');
$c->query_until(qr/sent/, "\\echo sent\nSELECT 'completed=' || count(*) FROM jobq.complete(ARRAY[$m]::bigint[], ARRAY[$tm]::bigint[]);\n");
ok(chaos_wait(10, sub {
    $node->safe_psql('postgres', "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $cpid") eq 'Lock'
}), "C's completion waits for the rescuer's lock");
$r->query_safe('COMMIT');
my $got = $c->query('SELECT 1');
like($got, qr/completed=0/, 'the blocked completion changed 0 rows once the rescue committed');
is($node->safe_psql('postgres', "SELECT state, attempt, lease_token IS NULL FROM jobq.job WHERE id = $m"),
   'retryable|1|t', 'm is waiting to run again, not completed');
$_->quit for $a, $b, $c, $r;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jobq.rescue_interval; SELECT pg_reload_conf()');

diag(sprintf('chaos_stale_settle: rescued %.2f s after the claim (lease 1 s, rescue_interval 200 ms); '
    . 'stale writes tried %d, applied 0; rescuer/completion races: 2 orders, 0 reverts', $rescue_s, 5 * 8));
check_server_log($node);
done_testing();
