#!/usr/bin/perl
# A TCP proxy in front of a PostgreSQL Unix socket, for the runner tests.
#
#   pg_proxy.pl --target SOCKET --port-file FILE [--listen HOST:PORT]
#               [--events FILE] [--cut-completions N]
#
# Listens on HOST:PORT (default 127.0.0.1:0; the chosen port is written to
# FILE once listening) and forwards every byte both ways unchanged to the
# Unix socket SOCKET (the cluster's .s.PGSQL.nnnn). It also reads the wire
# protocol, to find the messages that call jobq.complete.
#
# --cut-completions N: the first N statements that call jobq.complete (a
# simple Query, or Parse .. Sync of the extended protocol; a named prepared
# statement is recognised again at its Bind) are forwarded to the server,
# but nothing the server sends after them is passed on: once the server's
# ReadyForQuery for that statement has arrived (the statement is committed),
# both sides are closed. The client sees its connection die with the
# completion's outcome unknown: a lost acknowledgement.
#
# --events FILE gets one line per event, "<what> <conn> <unix time>":
# accept, complete (a jobq.complete statement passed to the server), cut,
# close. Core Perl only; stops on SIGTERM.
use strict;
use warnings;

use Getopt::Long;
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time);

my ($target, $port_file, $events_file);
my $listen = '127.0.0.1:0';
my $cuts = 0;
GetOptions(
    'target=s'          => \$target,
    'port-file=s'       => \$port_file,
    'listen=s'          => \$listen,
    'events=s'          => \$events_file,
    'cut-completions=i' => \$cuts) or die "usage: see the header of $0\n";
die "--target and --port-file are required\n" unless $target && $port_file;

my ($lhost, $lport) = $listen =~ /^(.*):(\d+)$/ or die "--listen HOST:PORT\n";
my $server = IO::Socket::INET->new(
    LocalAddr => $lhost, LocalPort => $lport, Proto => 'tcp', Listen => 64, ReuseAddr => 1)
  or die "listen $listen: $!\n";
my $events;
if ($events_file) {
    open $events, '>>', $events_file or die "$events_file: $!\n";
    $events->autoflush(1);
}
sub event { printf $events "%s %d %.6f\n", $_[0], $_[1], time if $events }

# The port file is written last (renamed into place), so a reader that sees
# it can connect.
open my $pf, '>', "$port_file.tmp" or die "$port_file: $!\n";
print $pf $server->sockport, "\n";
close $pf;
rename "$port_file.tmp", $port_file or die "rename: $!\n";

$SIG{TERM} = $SIG{INT} = sub { exit 0 };

# One pair per accepted connection. Each side: socket, bytes waiting to be
# written to it, and a parse buffer of what it sent.
my $next_conn = 0;
my %pairs;      # conn => pair
my %by_fh;      # fileno => [pair, 'client' | 'server']
my $sel_r = IO::Select->new($server);

sub close_pair {
    my ($p, $why) = @_;
    return if $p->{closed}++;
    for my $side (qw(client server)) {
        my $fh = $p->{$side}{fh};
        $sel_r->remove($fh);
        delete $by_fh{ fileno $fh };
        close $fh;
    }
    delete $pairs{ $p->{conn} };
    event($why, $p->{conn});
}

sub queue_out {
    my ($side, $bytes) = @_;
    $side->{out} .= $bytes;
}

# Protocol messages the client sent: after the startup phase, type byte +
# int32 length (including itself) + body. The startup phase is untyped:
# int32 length + int32 code; SSLRequest and GSSENCRequest are answered with
# one unframed byte and followed by another startup packet.
sub client_messages {
    my ($p) = @_;
    my $c = $p->{client};
    while (1) {
        if ($p->{startup}) {
            last if length($c->{in}) < 8;
            my ($len, $code) = unpack 'NN', $c->{in};
            last if length($c->{in}) < $len;
            my $msg = substr($c->{in}, 0, $len, '');
            if ($code == 80877103 || $code == 80877104) {
                $p->{single_byte_replies}++;
            } else {
                $p->{startup} = 0;
            }
            queue_out($p->{server}, $msg);
            next;
        }
        last if length($c->{in}) < 5;
        my ($type, $len) = unpack 'a1N', $c->{in};
        last if length($c->{in}) < 1 + $len;
        my $msg = substr($c->{in}, 0, 1 + $len, '');
        my $body = substr($msg, 5);
        my $calls_complete = 0;
        if ($type eq 'Q') {
            $calls_complete = $body =~ /jobq\.complete\s*\(/;
        } elsif ($type eq 'P') {
            my ($name, $query) = unpack 'Z*Z*', $body;
            if ($query =~ /jobq\.complete\s*\(/) {
                $calls_complete = 1;
                $p->{named}{$name} = 1 if length $name;
            }
        } elsif ($type eq 'B') {
            my (undef, $stmt) = unpack 'Z*Z*', $body;
            $calls_complete = length($stmt) && $p->{named}{$stmt} && !$p->{armed};
        }
        if ($calls_complete) {
            event('complete', $p->{conn});
            if ($cuts > 0 && !$p->{armed}) {
                $cuts--;
                $p->{armed} = 1;    # withhold every reply from here on
            }
        }
        # The statement is complete at its Sync (extended protocol) or at
        # once (simple Query); its ReadyForQuery then ends it.
        $p->{await_ready} = 1 if $p->{armed} && ($type eq 'S' || $type eq 'Q');
        queue_out($p->{server}, $msg);
    }
}

sub server_messages {
    my ($p) = @_;
    my $s = $p->{server};
    while (1) {
        if ($p->{single_byte_replies} && length $s->{in}) {
            $p->{single_byte_replies}--;
            queue_out($p->{client}, substr($s->{in}, 0, 1, ''));
            next;
        }
        last if length($s->{in}) < 5;
        my ($type, $len) = unpack 'a1N', $s->{in};
        last if length($s->{in}) < 1 + $len;
        my $msg = substr($s->{in}, 0, 1 + $len, '');
        if (!$p->{armed}) {
            queue_out($p->{client}, $msg);
            next;
        }
        # Armed: the reply is dropped; once the statement is over, cut.
        if ($type eq 'Z' && $p->{await_ready}) {
            event('cut', $p->{conn});
            close_pair($p, 'close');
            return;
        }
    }
}

while (1) {
    my $sel_w = IO::Select->new(map { $_->{fh} } grep { length $_->{out} }
                                map { ($_->{client}, $_->{server}) } values %pairs);
    my ($readable, $writable) = IO::Select::select($sel_r, $sel_w, undef, 1);
    for my $fh (@{ $writable // [] }) {
        my $ref = defined fileno($fh) && $by_fh{ fileno $fh } or next;
        my ($p, $which) = @$ref;
        my $side = $p->{$which};
        my $n = syswrite $fh, $side->{out};
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            close_pair($p, 'close');
            next;
        }
        substr($side->{out}, 0, $n, '');
    }
    for my $fh (@{ $readable // [] }) {
        if ($fh == $server) {
            my $client = $server->accept or next;
            my $upstream = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $target);
            if (!$upstream) {
                close $client;
                next;
            }
            $_->blocking(0) for $client, $upstream;
            my $p = { conn => ++$next_conn, startup => 1,
                      client => { fh => $client, in => '', out => '' },
                      server => { fh => $upstream, in => '', out => '' } };
            $pairs{ $p->{conn} } = $p;
            $by_fh{ fileno $client } = [ $p, 'client' ];
            $by_fh{ fileno $upstream } = [ $p, 'server' ];
            $sel_r->add($client, $upstream);
            event('accept', $p->{conn});
            next;
        }
        my $ref = defined fileno($fh) && $by_fh{ fileno $fh } or next;    # closed meanwhile
        my ($p, $which) = @$ref;
        my $n = sysread $fh, my $buf, 65536;
        next if !defined $n && ($!{EAGAIN} || $!{EINTR});
        if (!$n) {
            # EOF or error on one side: pass the close on, after what is
            # still queued for the other side (best effort, no waiting).
            my $other = $p->{ $which eq 'client' ? 'server' : 'client' };
            syswrite $other->{fh}, $other->{out} if length $other->{out};
            close_pair($p, 'close');
            next;
        }
        $p->{$which}{in} .= $buf;
        if ($which eq 'client') {
            client_messages($p);
        } else {
            server_messages($p);
        }
    }
}
