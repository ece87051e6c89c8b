#!/usr/bin/perl
# Runs jobq-runner in a network namespace of its own, for the partition
# test. Start it as
#
#   unshare -rn netns_runner.pl --socket SOCKET --events FILE --forwarder-log FILE \
#       --ip PATH --tc PATH --dsn 'dbname=postgres user=...' -- RUNNER ARGS...
#
# unshare -rn gives a new user and network namespace with only a loopback
# device. This script brings lo up, starts pg_proxy.pl (next to it) as a
# forwarder from 127.0.0.1 inside the namespace to the cluster's Unix
# socket SOCKET (Unix sockets are not confined by network namespaces), and
# runs the runner with --dsn "<dsn> host=127.0.0.1 port=<forwarder port>".
# The runner's only way to the database is then a TCP connection over the
# namespace's lo:
#
#   SIGUSR1  partition: tc qdisc add dev lo root blackhole (every packet on
#            lo is dropped silently, as on a dead network)
#   SIGUSR2  heal: tc qdisc del dev lo root
#   SIGTERM  passed on to the runner; exits with the runner's status
#
# Each partition and heal is appended to FILE as "<what> <unix time>" once
# tc has done it. Core Perl only.
use strict;
use warnings;

use File::Basename qw(dirname);
use Getopt::Long;
use IO::Handle;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my ($socket, $events_file, $forwarder_log, $ip, $tc, $dsn);
GetOptions(
    'socket=s'        => \$socket,
    'events=s'        => \$events_file,
    'forwarder-log=s' => \$forwarder_log,
    'ip=s'            => \$ip,
    'tc=s'            => \$tc,
    'dsn=s'           => \$dsn) or die "usage: see the header of $0\n";
my @runner = @ARGV or die "no runner command after --\n";

open my $events, '>>', $events_file or die "$events_file: $!\n";
$events->autoflush(1);
sub event { printf $events "%s %.6f\n", $_[0], time }

system($ip, 'link', 'set', 'lo', 'up') == 0 or die "ip link set lo up failed\n";

my $dir = dirname(__FILE__);
my $port_file = "$events_file.port";
my $forwarder = fork // die "fork: $!\n";
if ($forwarder == 0) {
    open STDOUT, '>>', $forwarder_log or die;
    open STDERR, '>>', $forwarder_log or die;
    exec $^X, "$dir/pg_proxy.pl", '--target', $socket, '--port-file', $port_file;
    die "exec: $!";
}
my $deadline = time + 10;
sleep 0.02 until -s $port_file || time > $deadline;
open my $pf, '<', $port_file or die "the forwarder did not start\n";
chomp(my $port = <$pf>);
close $pf;

my $runner = fork // die "fork: $!\n";
if ($runner == 0) {
    exec @runner, '--dsn', "$dsn host=127.0.0.1 port=$port";
    die "exec $runner[0]: $!";
}

# Signal handlers only note the request; the loop below acts on it, so tc
# never runs inside a handler.
my @requests;
$SIG{USR1} = sub { push @requests, 'partition' };
$SIG{USR2} = sub { push @requests, 'heal' };
$SIG{TERM} = $SIG{INT} = sub { push @requests, 'stop' };

my $status;
while (1) {
    while (my $what = shift @requests) {
        if ($what eq 'partition') {
            system($tc, 'qdisc', 'add', 'dev', 'lo', 'root', 'blackhole') == 0
              ? event('partition') : event('partition-failed');
        } elsif ($what eq 'heal') {
            system($tc, 'qdisc', 'del', 'dev', 'lo', 'root') == 0 ? event('heal') : event('heal-failed');
        } else {
            kill 'TERM', $runner;
        }
    }
    my $got = waitpid($runner, WNOHANG);
    if ($got == $runner) {
        $status = $?;
        last;
    }
    sleep 0.02;
}
kill 'TERM', $forwarder;
waitpid($forwarder, 0);
exit($status & 127 ? 128 + ($status & 127) : $status >> 8);
