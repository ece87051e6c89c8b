# TLS is verified: an https receiver with a certificate the runner does not
# trust is refused during the handshake (nothing is delivered); with the
# certificate as the queue's ca_file the same receiver gets a signed delivery
# and the job completes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
       '-keyout', "$dir/key.pem", '-out', "$dir/cert.pem", '-subj', '/CN=127.0.0.1',
       '-addext', 'subjectAltName=IP:127.0.0.1') == 0
  or BAIL_OUT('openssl req failed');

my $secret = 'tls-test-secret';
my $server = start_webhook_server($secret, "$dir/cert.pem", "$dir/key.pem");
my $base = "https://127.0.0.1:$server->{port}";

my $node = setup_node('tls');
create_queue($node, $_, max_attempts => 1) for qw(untrusted trusted);

my $runner = start_runner($node, <<"TOML");
[runner]
poll_interval = "500ms"
[queues.untrusted]
handler = "http"
url = "$base/ok"
secret = "$secret"
timeout = "5s"
[queues.trusted]
handler = "http"
url = "$base/ok"
secret = "$secret"
timeout = "5s"
ca_file = "$dir/cert.pem"
TOML

my $untrusted = enqueue($node, 'untrusted');
my $trusted = enqueue($node, 'trusted');
ok(wait_until(30, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE state NOT IN ('completed', 'dead')") == 0
}), 'both jobs reached a final state') or diag(runner_log($runner));

is(job_row($node, $untrusted), 'dead|1', 'an untrusted certificate fails the delivery');
like(job_row($node, $untrusted, 'errors::text'), qr/SSL certificate problem|certificate/i, 'with a certificate error');
my @requests = map { [split / /] } read_lines($server->{ledger});
is(scalar(grep { $_->[2] eq "job_$untrusted" } @requests), 0, 'the untrusted receiver never saw the job');

is(job_row($node, $trusted), 'completed|1', 'a receiver trusted through ca_file gets the job');
my @ok = grep { $_->[2] eq "job_$trusted" } @requests;
is(scalar(@ok), 1, 'one delivery over TLS');
is($ok[0][3], 1, 'signed correctly');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
stop_webhook_server($server);
done_testing();
