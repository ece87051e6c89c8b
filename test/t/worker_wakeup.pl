# Wake-ups: after an enqueue commits, the background worker (never the
# producer) sends NOTIFY jobq_wakeup with the queue name; nothing is sent for
# a rolled-back enqueue or a rolled-back savepoint; a job scheduled for later
# is announced when it comes due; many queues in one transaction are all
# announced; one notification per queue per tick; jobq.wakeups = off
# silences the worker.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = PostgreSQL::Test::Cluster->new('worker_wakeup');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.naptime = '5s'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION jobq;
    SELECT jobq.create_queue('mail');
    SELECT jobq.create_queue('later');
    SELECT jobq.create_queue('q' || g) FROM generate_series(1, 20) g;
});
$node->poll_query_until('postgres', 'SELECT running FROM jobq.worker_status()');
my $worker_pid = $node->safe_psql('postgres', 'SELECT pid FROM jobq.worker_status()');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN jobq_wakeup');

# Notifications seen by the listener within $seconds: list of [payload, pid, time].
sub collect {
    my ($seconds, $until) = @_;
    my @seen;
    my $deadline = time + $seconds;
    while (time < $deadline) {
        my $out = $listener->query('SELECT 1');
        my $now = time;
        while ($out =~ /Asynchronous notification "jobq_wakeup" with payload "([^"]*)" received from server process with PID (\d+)/g) {
            push @seen, [ $1, $2, $now ];
        }
        last if $until && grep { $_->[0] eq $until } @seen;
        sleep 0.02;
    }
    return @seen;
}

collect(0.5);    # drain start-up wake-ups

my $producer_pid;
my $t0 = time;
$producer_pid = $node->safe_psql('postgres', q{SELECT pg_backend_pid() FROM (SELECT jobq.enqueue('mail', '{}')) s});
my @seen = collect(3, 'mail');
my @mail = grep { $_->[0] eq 'mail' } @seen;
is(scalar @mail, 1, 'one wake-up after the enqueue committed');
is($mail[0][1], $worker_pid, 'sent by the background worker, not the producer') if @mail;
isnt($mail[0][1], $producer_pid, 'the producer never notifies') if @mail;
note sprintf('commit -> notification seen by a polling psql: %.0f ms', ($mail[0][2] - $t0) * 1000) if @mail;

$node->safe_psql('postgres', q{BEGIN; SELECT jobq.enqueue('mail', '{}'); ROLLBACK;});
@seen = collect(1);
is(scalar(grep { $_->[0] eq 'mail' } @seen), 0, 'no wake-up after a rollback');

$node->safe_psql('postgres', q{
    BEGIN;
    SAVEPOINT s;
    SELECT jobq.enqueue('mail', '{}');
    ROLLBACK TO SAVEPOINT s;
    SELECT jobq.enqueue('q1', '{}');
    COMMIT;});
@seen = collect(1.5, 'q1');
is(scalar(grep { $_->[0] eq 'mail' } @seen), 0, 'no wake-up for an enqueue rolled back to a savepoint');
is(scalar(grep { $_->[0] eq 'q1' } @seen), 1, 'the rest of that transaction is announced');

# 100 jobs in one transaction: one notification.
$node->safe_psql('postgres', q{SELECT count(jobq.enqueue('mail', jsonb_build_object('n', g))) FROM generate_series(1, 100) g});
@seen = collect(1.5);
is(scalar(grep { $_->[0] eq 'mail' } @seen), 1, 'one notification per queue per tick');

# More queues in one transaction than a backend remembers (16): all announced.
$node->safe_psql('postgres', q{SELECT count(jobq.enqueue('q' || g, '{}')) FROM generate_series(1, 20) g});
@seen = collect(3, 'q20');
my %queues = map { $_->[0] => 1 } @seen;
is(scalar(grep { $queues{"q$_"} } 1 .. 20), 20, 'every queue of a 20-queue transaction is announced');

# A job scheduled 2 seconds ahead is announced when due, not before.
my $sched_t0 = time;
$node->safe_psql('postgres', q{SELECT jobq.enqueue('later', '{}', run_at => now() + interval '2 seconds')});
@seen = collect(1.2);
is(scalar(grep { $_->[0] eq 'later' } @seen), 0, 'a job due later is not announced at commit');
@seen = collect(4, 'later');
my @later = grep { $_->[0] eq 'later' } @seen;
is(scalar @later, 1, 'it is announced when it comes due (before the 5 s poll)');
if (@later) {
    my $lateness = $later[0][2] - $sched_t0 - 2;
    cmp_ok($lateness, '<', 1.0, 'announced within a second of its run_at');
    note sprintf('scheduled job announced %.0f ms after its run_at (polling psql)', $lateness * 1000);
}

# A retry via fail(retry_in) is announced when due too.
$node->safe_psql('postgres', q{
    SELECT jobq.fail(id, lease_token, 'again', retry_in => '1 second')
    FROM jobq.claim('{later}', 'w', 1)});
@seen = collect(3, 'later');
is(scalar(grep { $_->[0] eq 'later' } @seen), 1, 'a retry is announced when due');

# jobq.wakeups = off: producers publish nothing.
$node->append_conf('postgresql.conf', "jobq.wakeups = off\n");
$node->reload;
sleep 0.5;
$node->safe_psql('postgres', q{SELECT jobq.enqueue('mail', '{}')});
@seen = collect(1);
is(scalar(grep { $_->[0] eq 'mail' } @seen), 0, 'jobq.wakeups = off: no wake-up');

$listener->quit;
$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash restart in the server log');
done_testing();
