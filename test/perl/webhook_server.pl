#!/usr/bin/perl
# A small HTTP/1.1 webhook receiver for the runner's http-handler tests.
#
# Usage: webhook_server.pl SECRET LEDGER PORT_FILE [CERT KEY]
# With CERT and KEY it speaks HTTPS (IO::Socket::SSL) instead of HTTP.
# Binds 127.0.0.1 on a free port (written to PORT_FILE), forks per
# connection, verifies the Standard Webhooks signature of every request
# (answering 401 when it does not verify), and appends one ledger line per
# request: "<unix time> <path> <webhook-id> <signature ok 0|1> <attempt>".
# Routes:
#   /ok                 200 {"received": "<webhook-id>", "attempt": N}
#   /status/NNN         that status (503 and 429 add Retry-After: 1)
#   /sleep/N            answers 200 after N seconds
#   /redirect           307 to /ok on the same origin
#   /redirect-other     307 to http://localhost:<port>/ok (another host)
#   /see-other          303 to /result (the POST was taken)
#   GET /result         200 {"result": "ready"}, no signature needed (a GET
#                       after a 303 carries no body to sign); a POST there
#                       is 405
#   /reset-reused       keeps the connection alive: its first request is
#                       answered 200; every later request on it is read
#                       whole (body and all, ledger line "reset") and then
#                       the connection is reset (RST), as a receiver that
#                       crashes after taking the request would
# Every other route answers with Connection: close.
use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_base64);
use Fcntl qw(:flock);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use POSIX qw(setsid);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);

my ($secret, $ledger, $port_file, $cert, $key_file) = @ARGV;
die "usage: $0 SECRET LEDGER PORT_FILE\n" unless defined $port_file;
my $key = $secret =~ /^whsec_(.*)$/ ? decode_base64($1) : $secret;

setsid();    # our own group: TERM below reaches every request child
$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = sub { local $SIG{TERM} = 'IGNORE'; kill 'TERM', -$$; exit 0 };

my $server = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => 0,
    Proto     => 'tcp',
    Listen    => 256,
    ReuseAddr => 1) or die "listen: $!";
my $port = $server->sockport;
open my $pf, '>', "$port_file.tmp" or die;
print $pf "$port\n";
close $pf;
rename "$port_file.tmp", $port_file or die;

while (1) {
    my $client = $server->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $client; next; }
    if ($pid == 0) {
        close $server;
        $SIG{TERM} = 'DEFAULT';
        alarm 30;
        if ($cert) {
            require IO::Socket::SSL;
            # A client that rejects our certificate ends the handshake: log it.
            IO::Socket::SSL->start_SSL($client, SSL_server => 1, SSL_cert_file => $cert, SSL_key_file => $key_file)
              or do { ledger_line('-', '-', 0, 0, 'tls-handshake-failed'); exit 0 };
        }
        handle($client);
        exit 0;
    }
    close $client;
}

sub ledger_line {
    my ($path, $id, $sig_ok, $attempt, $note) = @_;
    open my $lf, '>>', $ledger or die;
    flock $lf, LOCK_EX;
    printf $lf "%.3f %s %s %d %d%s\n", time, $path, $id, $sig_ok, $attempt, $note ? " $note" : '';
    close $lf;
}

sub handle {
    my ($c) = @_;
    binmode $c;
    my $buffer = '';
    for (my $served = 0; ; ++$served) {
        my ($method, $path, $h, $body) = read_request($c, \$buffer) or return;
        return unless handle_request($c, $method, $path, $h, $body, $served);
    }
}

# One request from the connection (bytes past it stay in $$buffer); empty
# list at end of stream.
sub read_request {
    my ($c, $buffer) = @_;
    while ($$buffer !~ /\r\n\r\n/) {
        my $n = sysread($c, my $buf, 16384);
        return unless $n;
        $$buffer .= $buf;
    }
    my ($header_text, $rest) = split /\r\n\r\n/, $$buffer, 2;
    my @lines = split /\r\n/, $header_text;
    my ($method, $path) = split / /, shift @lines;
    my %h;
    for (@lines) {
        my ($k, $v) = split /:\s*/, $_, 2;
        $h{ lc $k } = $v;
    }
    my $length = $h{'content-length'} // 0;
    while (length($rest) < $length) {
        my $n = sysread($c, my $buf, 16384);
        last unless $n;
        $rest .= $buf;
    }
    my $body = substr($rest, 0, $length);
    $$buffer = length($rest) > $length ? substr($rest, $length) : '';
    return ($method, $path, \%h, $body);
}

# Answers one request; false when the connection is done.
sub handle_request {
    my ($c, $method, $path, $hr, $body, $served) = @_;
    my %h = %$hr;
    my $id = $h{'webhook-id'} // '';
    my $ts = $h{'webhook-timestamp'} // '';
    my $expected = hmac_sha256_base64("$id.$ts.$body", $key);
    $expected .= '=' while length($expected) % 4;
    my $sig_ok = 0;
    for my $sig (split / /, $h{'webhook-signature'} // '') {
        $sig_ok = 1 if $sig eq "v1,$expected";
    }
    $sig_ok = 0 unless $ts =~ /^\d+$/ && abs(time - $ts) < 300;
    my $attempt = eval { decode_json($body)->{attempt} } // 0;

    if ($path eq '/reset-reused' && $served > 0) {
        ledger_line($path, $id || '-', $sig_ok, $attempt, 'reset');
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));    # close sends RST
        close $c;
        return 0;
    }
    ledger_line($path, $id || '-', $sig_ok, $attempt);

    my ($status, $reply, @extra) = (200, '', ());
    if ($path eq '/result') {
        ($status, $reply) = $method eq 'GET' ? (200, '{"result": "ready"}') : (405, 'GET only');
    } elsif (!$sig_ok) {
        ($status, $reply) = (401, 'bad signature');
    } elsif ($method ne 'POST') {
        ($status, $reply) = (405, 'POST only');
    } elsif ($path eq '/ok' || $path eq '/reset-reused') {
        $reply = encode_json({ received => $id, attempt => $attempt });
    } elsif ($path =~ m{^/status/(\d{3})$}) {
        ($status, $reply) = ($1, "status $1");
        push @extra, 'Retry-After: 1' if $status == 503 || $status == 429;
    } elsif ($path =~ m{^/sleep/(\d+)$}) {
        sleep $1;
        $reply = '{"slept": true}';
    } elsif ($path eq '/redirect') {
        ($status, $reply) = (307, '');
        push @extra, "Location: http://127.0.0.1:$port/ok";
    } elsif ($path eq '/see-other') {
        ($status, $reply) = (303, '');
        push @extra, "Location: http://127.0.0.1:$port/result";
    } elsif ($path eq '/redirect-other') {
        ($status, $reply) = (307, '');
        push @extra, "Location: http://localhost:$port/ok";
    } else {
        ($status, $reply) = (404, 'no such route');
    }
    my $keep = $path eq '/reset-reused';
    my $response = "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: "
      . length($reply) . "\r\nConnection: " . ($keep ? 'keep-alive' : 'close') . "\r\n"
      . join('', map { "$_\r\n" } @extra) . "\r\n" . $reply;
    syswrite($c, $response);
    return 1 if $keep;
    close $c;
    return 0;
}
