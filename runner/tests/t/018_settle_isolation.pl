# A settle batch isolates its jobs, in two layers:
# - the database: jobq.complete applies the good jobs of a batch and leaves
#   out a job whose own settle raises (here a trigger on jobq.archive raising
#   P0001 for one payload), reporting it in a WARNING;
# - the runner: when the database refuses a whole call (an error that says
#   nothing about one job, here the trigger raising 58030), it settles the
#   batch's jobs in smaller batches, so every good job is completed and only
#   the bad one is reported, alone.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('isolate');
create_queue($node, 'q', lease => "'1 minute'");
$node->safe_psql('postgres', q{
    CREATE FUNCTION public.refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.payload ? 'bad' THEN
            RAISE EXCEPTION 'this job may not be archived'
                USING ERRCODE = CASE WHEN NEW.payload->>'bad' = 'job' THEN 'P0001' ELSE '58030' END;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_bad BEFORE INSERT ON jobq.archive
        FOR EACH ROW EXECUTE FUNCTION public.refuse_bad();
});

# All jobs in one claim and, with the noop handler, in one settle batch.
# enqueue_batch KIND: 50 jobs, the 25th bad of that kind; (ids, bad id).
sub enqueue_batch {
    my ($kind) = @_;
    my $ids = $node->safe_psql('postgres', qq{
        SELECT string_agg(jobq.enqueue('q', CASE WHEN i = 25 THEN '{"bad": "$kind"}' ELSE '{}' END::jsonb)::text, ',')
        FROM generate_series(1, 50) AS i});
    return ($ids, (split /,/, $ids)[24]);
}

# 1. The error of one job: the database isolates it.
my ($ids, $bad) = enqueue_batch('job');
my $port = free_port();
my $runner = start_runner($node, <<"EOF");
[http]
listen = "127.0.0.1:$port"
[runner]
poll_interval = "200ms"
[queues.q]
handler = "noop"
concurrency = 100
EOF

ok(wait_until(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($ids) AND state = 'completed'") == 49 }),
   'the 49 good jobs of the batch are completed');
ok(wait_until(10, sub { runner_log($runner) =~ /severity=WARNING message="jobq: job $bad was not completed: this job may not be archived"/m }),
   'the server reports the bad job, by id');
unlike(runner_log($runner), qr/settle batch failed/, 'the call itself did not fail');
is(job_row($node, $bad, 'state'), 'running', 'the bad job is left to its lease');

# 2. An error that fails the whole call: the runner splits the batch.
($ids, $bad) = enqueue_batch('call');
ok(wait_until(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($ids) AND state = 'completed'") == 49 }),
   'the 49 good jobs of the second batch are completed');
is($node->safe_psql('postgres', "SELECT max(attempt) FROM jobq.jobs WHERE id IN ($ids) AND state = 'completed'"),
   1, 'each on its first attempt');
ok(wait_until(10, sub { runner_log($runner) =~ /msg="completion failed; the job returns to the queue after its lease" job=$bad /m }),
   'the bad job is reported alone, by id');
my $log = runner_log($runner);
like($log, qr/msg="settle batch failed; settling its jobs in smaller batches" error="this job may not be archived" sqlstate=58030/,
     'the batch failure was isolated');
my @reported = $log =~ /msg="completion failed[^\n]* job=(\d+)/g;
is_deeply([ sort { $a <=> $b } keys %{{ map { $_ => 1 } @reported }} ], [$bad], 'no other job was reported');
is(job_row($node, $bad, 'state'), 'running', 'the bad job is left to its lease');
my (undef, $metrics) = http_get($port, '/metrics');
like($metrics, qr/^jobq_runner_jobs_completed_total\{queue="q"\} 98$/m, 'the metrics count 98 completions');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
