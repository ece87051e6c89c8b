# One POST per attempt: a receiver that reads the whole request on a
# kept-alive connection and then resets it must not get the attempt again
# (libcurl would silently re-send a request on a reused connection that died
# before any response). The reset is a failed attempt, retried with backoff
# as a new attempt; every attempt reaches the receiver exactly once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $secret = 'whsec_' . 'c2VjcmV0LWtleS1mb3ItdGVzdHM=';    # "secret-key-for-tests"
my $server = start_webhook_server($secret);
my $base = "http://127.0.0.1:$server->{port}";

my $node = setup_node('once');
create_queue($node, 'reset', max_attempts => 4);

# One transfer at a time, so each job after the first goes out on the
# connection the previous one kept alive.
$ENV{JOBQ_TEST_SECRET} = $secret;
my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "200ms"
[queues.reset]
handler = "http"
url = "$base/reset-reused"
secret_env = "JOBQ_TEST_SECRET"
concurrency = 1
claim_batch = 1
EOF

my @ids = map { enqueue($node, 'reset', qq({"n": $_})) } 1 .. 4;
my $list = join ',', @ids;
ok(wait_until(60, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($list) AND state IN ('completed', 'dead')") == 4 }),
   'every job settled');

my @requests = grep { (split / /)[1] eq '/reset-reused' } read_lines($server->{ledger});
my %per_attempt;
$per_attempt{ join ' ', (split / /)[2, 4] }++ for @requests;
my @repeated = grep { $per_attempt{$_} > 1 } sort keys %per_attempt;
is_deeply(\@repeated, [], 'no attempt reached the receiver twice')
  or diag(join "\n", @requests);
my @resets = grep { / reset$/ } @requests;
cmp_ok(scalar @resets, '>=', 1, 'the receiver reset a kept-alive connection after reading a request');

my $attempts = $node->safe_psql('postgres', "SELECT sum(attempt) FROM jobq.jobs WHERE id IN ($list)");
is($attempts, scalar @requests, 'each POST was one counted attempt');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($list) AND state = 'completed'"),
   4, 'every job completed on a later attempt');
like($node->safe_psql('postgres', "SELECT string_agg(errors::text, ' ') FROM jobq.jobs WHERE id IN ($list)"),
     qr/not re-sent/, 'the reset attempt failed with an error saying the request was not re-sent');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
stop_webhook_server($server);
done_testing();
