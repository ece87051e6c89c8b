#!/usr/bin/perl
# Chaos test handler for jobq-runner's exec handler.
#
#   command = ["/usr/bin/perl", ".../test/chaos/handler.pl", "/path/to/ledger"]
#
# Appends one line when it starts and one when it finishes to the ledger, a
# file outside the database (O_APPEND, one write(2) per line, so lines of
# concurrent handlers never interleave):
#
#   S <job> <attempt> <token> <runner_pid> <handler_pid> <mono> <wall> <mode>
#   F <job> <attempt> <token> <runner_pid> <handler_pid> <mono> <wall> <outcome>
#
# <runner_pid> is the parent process (the runner forks the handler itself),
# <token> is $JOBQ_LEASE_TOKEN when the runner exports it, else "-"; <mono>
# is CLOCK_MONOTONIC (comparable between processes on one machine) and
# <wall> the epoch, both in seconds with microseconds.
#
# What the handler does comes from the job's payload (parsed with regular
# expressions: Perl's startup is the whole cost of this handler):
#   "mode": "ok" (default)  sleeps sleep_ms (default 0), writes F ... ok, exits 0
#           "fail"          writes F ... fail, prints an error, exits 1
#           "segv"          kills itself with SIGSEGV (no F line)
#           "hang"          sleeps an hour (the runner's timeout kills it)
#           "kill_runner"   SIGKILLs its runner (the parent), then itself
#           "fail_until"    fails while attempt < "ok_at", then behaves as "ok"
#   "sleep_ms": n           milliseconds to sleep before finishing
use strict;
use warnings;
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC CLOCK_REALTIME sleep);

my $ledger = $ARGV[0] // $ENV{CHAOS_LEDGER} or die "usage: handler.pl LEDGER\n";
my $input = do { local $/; <STDIN> } // '';

my $id = $ENV{JOBQ_JOB_ID} // (($input =~ /"id"\s*:\s*(\d+)/)[0]) // 0;
my $attempt = $ENV{JOBQ_ATTEMPT} // (($input =~ /"attempt"\s*:\s*(\d+)/)[0]) // 0;
my $token = $ENV{JOBQ_LEASE_TOKEN} // '-';
my ($mode) = $input =~ /"mode"\s*:\s*"([a-z_]+)"/;
$mode //= 'ok';
my ($sleep_ms) = $input =~ /"sleep_ms"\s*:\s*(\d+)/;
$sleep_ms //= 0;
my ($ok_at) = $input =~ /"ok_at"\s*:\s*(\d+)/;
$mode = ($attempt >= ($ok_at // 1) ? 'ok' : 'fail') if $mode eq 'fail_until';

sysopen(my $fh, $ledger, O_WRONLY | O_APPEND | O_CREAT, 0644) or die "open $ledger: $!\n";

sub record {
    my ($kind, $what) = @_;
    my $line = sprintf("%s %s %s %s %d %d %.6f %.6f %s\n", $kind, $id, $attempt, $token, getppid(), $$,
        clock_gettime(CLOCK_MONOTONIC), clock_gettime(CLOCK_REALTIME), $what);
    syswrite($fh, $line) == length($line) or die "write $ledger: $!\n";
}

record('S', $mode);
if ($mode eq 'segv') {
    kill 'SEGV', $$;
    sleep 10;    # not reached
    exit 3;
}
if ($mode eq 'kill_runner') {
    kill 'KILL', getppid();
    kill 'KILL', $$;
    exit 3;
}
if ($mode eq 'hang') {
    sleep 3600;
    exit 0;
}
sleep($sleep_ms / 1000) if $sleep_ms > 0;
if ($mode eq 'fail') {
    record('F', 'fail');
    print STDERR "chaos: failing on purpose (job $id attempt $attempt)\n";
    exit 1;
}
record('F', 'ok');
print "{\"chaos\":\"ok\",\"attempt\":$attempt}\n";
exit 0;
