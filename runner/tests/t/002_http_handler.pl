# http handler against a real local webhook receiver that verifies the
# Standard Webhooks signature: 2xx completes with the body as result, 4xx
# discards, 5xx retries honouring Retry-After with a stable webhook-id,
# timeout fails, a wrong secret is refused by the receiver, redirects are
# followed on the same origin only.
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

my $node = setup_node('http');
create_queue($node, $_) for qw(ok client server redirect seeother badsig);
create_queue($node, $_, max_attempts => 1) for qw(slow elsewhere);

$ENV{JOBQ_TEST_SECRET} = $secret;
my $runner = start_runner($node, <<"EOF");
[runner]
poll_interval = "200ms"
[queues.ok]
handler = "http"
url = "$base/ok"
secret_env = "JOBQ_TEST_SECRET"
[queues.client]
handler = "http"
url = "$base/status/422"
secret_env = "JOBQ_TEST_SECRET"
[queues.server]
handler = "http"
url = "$base/status/503"
secret_env = "JOBQ_TEST_SECRET"
[queues.slow]
handler = "http"
url = "$base/sleep/5"
secret_env = "JOBQ_TEST_SECRET"
timeout = "1s"
[queues.redirect]
handler = "http"
url = "$base/redirect"
secret_env = "JOBQ_TEST_SECRET"
[queues.seeother]
handler = "http"
url = "$base/see-other"
secret_env = "JOBQ_TEST_SECRET"
[queues.elsewhere]
handler = "http"
url = "$base/redirect-other"
secret_env = "JOBQ_TEST_SECRET"
[queues.badsig]
handler = "http"
url = "$base/ok"
secret = "not-the-secret"
EOF

my %id;
$id{$_} = enqueue($node, $_, qq({"queue": "$_"})) for qw(ok client server slow redirect seeother elsewhere badsig);

ok(wait_until(40, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state NOT IN ('completed', 'dead')") == 0
}), 'every http job reached a final state') or diag(runner_log($runner));

my @requests = map { [split / /] } read_lines($server->{ledger});
sub requests_to { my $path = shift; return grep { $_->[1] eq $path } @requests }

is(job_row($node, $id{ok}), 'completed|1', '2xx completes');
is(job_row($node, $id{ok}, "result->>'received'"), "job_$id{ok}", 'the response body is the result; webhook-id is job_<id>');
my @ok = grep { $_->[2] eq "job_$id{ok}" } requests_to('/ok');
is(scalar(@ok), 1, 'one delivery for the 2xx job');
is($ok[0][3], 1, 'the receiver verified the signature');

is(job_row($node, $id{client}), 'dead|1', '4xx discards at once');
like(job_row($node, $id{client}, 'errors::text'), qr/HTTP 422/, '4xx error recorded');

is(job_row($node, $id{server}), 'dead|3', '5xx retries until max_attempts');
like(job_row($node, $id{server}, 'errors::text'), qr/HTTP 503/, '5xx error recorded');
my @server = requests_to('/status/503');
is(scalar(@server), 3, 'three deliveries of the 5xx job');
is(scalar(grep { $_->[2] eq "job_$id{server}" && $_->[3] == 1 } @server), 3,
   'every retry is signed and keeps the same webhook-id');
is(join(',', map { $_->[4] } @server), '1,2,3', 'the attempt number grows in the delivered document');
my $min_gap = 99;
for my $i (1 .. $#server) {
    my $gap = $server[$i][0] - $server[$i - 1][0];
    $min_gap = $gap if $gap < $min_gap;
}
cmp_ok($min_gap, '>=', 0.9, 'Retry-After: 1 is honoured (backoff_max alone would allow 0.1-1s)');

is(job_row($node, $id{slow}), 'dead|1', 'a slow receiver times out');
like(job_row($node, $id{slow}, 'errors::text'), qr/timed out after 1s/, 'timeout recorded');

is(job_row($node, $id{redirect}), 'completed|1', 'a same-origin redirect is followed');
is(scalar(grep { $_->[2] eq "job_$id{redirect}" } requests_to('/ok')), 1, 'the redirected POST reached /ok');

# 303 See Other: the POST was taken; the runner GETs the location (no second POST)
is(job_row($node, $id{seeother}), 'completed|1', 'a 303 completes with the answer to a GET of its location');
is(job_row($node, $id{seeother}, "result->>'result'"), 'ready', 'the GET answer is the result');
is(scalar(grep { $_->[2] eq "job_$id{seeother}" } requests_to('/see-other')), 1, 'one POST');
is(scalar(grep { $_->[2] eq "job_$id{seeother}" } requests_to('/result')), 1, 'one GET of the location, not a re-POST');

is(job_row($node, $id{elsewhere}), 'dead|1', 'a redirect to another host is refused');
like(job_row($node, $id{elsewhere}, 'errors::text'), qr/redirect to another host refused/, 'refusal recorded');
is(scalar(grep { $_->[2] eq "job_$id{elsewhere}" } requests_to('/ok')), 0, 'the other host was never contacted');

is(job_row($node, $id{badsig}), 'dead|1', 'the receiver rejects a delivery signed with the wrong secret (401: discarded)');
my @bad = grep { $_->[2] eq "job_$id{badsig}" } @requests;
is($bad[0][3], 0, 'the receiver saw a signature that does not verify');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
stop_webhook_server($server);
done_testing();
