#!/usr/bin/perl
# Chaos producer: enqueues jobs through psql, one autocommit statement per
# batch, and logs the outcome of every enqueue to a file outside the
# database:
#
#   A <tag> <id> <mono> <wall>           COMMIT acknowledged (id returned)
#   U <tag> <mono> <wall> <reason>       outcome unknown (error, crash, timeout)
#   B <tag> <mono> <wall>                enqueued inside a transaction that was
#                                        rolled back on purpose: never visible
#
# Every job's payload carries its tag ({"tag": "<prefix>-<n>", ...}), so the
# checker can find unknown-outcome jobs in the database afterwards.
#
#   producer.pl --dsn DSN --queue Q --log FILE [--count N] [--batch B]
#               [--prefix P] [--extra '"mode":"ok"'] [--rollback-every K]
#               [--pause-ms MS] [--until-file F]
#
# Without --count it runs until SIGTERM/SIGINT or until --until-file exists;
# it always finishes the batch in flight and logs its outcome first.
use strict;
use warnings;
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use Getopt::Long;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC CLOCK_REALTIME sleep);

my %o = (batch => 10, prefix => "p$$", extra => '', rollback_every => 0, pause_ms => 0, count => 0,
         psql => 'psql');
GetOptions(\%o, 'dsn=s', 'queue=s', 'log=s', 'count=i', 'batch=i', 'prefix=s', 'extra=s',
    'rollback-every=i' => \$o{rollback_every}, 'pause-ms=i' => \$o{pause_ms},
    'until-file=s' => \$o{until_file}, 'psql=s') or die "bad arguments\n";
defined $o{$_} or die "--$_ is required\n" for qw(dsn queue log);
$o{extra} = ",$o{extra}" if length $o{extra};

sysopen(my $log, $o{log}, O_WRONLY | O_APPEND | O_CREAT, 0644) or die "open $o{log}: $!\n";
sub out {
    my ($text) = @_;
    syswrite($log, $text) == length($text) or die "write $o{log}: $!\n";
}
sub stamp { sprintf('%.6f %.6f', clock_gettime(CLOCK_MONOTONIC), clock_gettime(CLOCK_REALTIME)) }

my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };

$ENV{PGCONNECT_TIMEOUT} //= 5;
$ENV{PGOPTIONS} = '-c statement_timeout=20s';

# Runs psql with the given -c commands; returns (exit status, output with stderr).
sub psql {
    my (@commands) = @_;
    my $pid = open(my $ph, '-|');
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT or die;
        exec $o{psql}, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $o{dsn},
            map { ('-c', $_) } @commands;
        exit 127;
    }
    local $/;
    my $text = <$ph> // '';
    close $ph;
    return ($? >> 8, $text);
}

my ($n, $batches, $acked, $unknown, $rolled) = (0, 0, 0, 0, 0);
while (!$stop) {
    last if $o{count} && $n >= $o{count};
    last if $o{until_file} && -e $o{until_file};
    my $size = $o{count} ? ($o{count} - $n < $o{batch} ? $o{count} - $n : $o{batch}) : $o{batch};
    my @tags = map { "$o{prefix}-" . ($n + $_) } 1 .. $size;
    $n += $size;
    $batches++;
    my $array = '{' . join(',', @tags) . '}';
    my $select = "SELECT jobq.enqueue('$o{queue}', ('{\"tag\":\"' || t || '\"$o{extra}}')::jsonb), t"
      . " FROM unnest('$array'::text[]) AS t";
    if ($o{rollback_every} && $batches % $o{rollback_every} == 0) {
        psql('BEGIN', $select, 'ROLLBACK');
        out("B $_ " . stamp() . "\n") for @tags;
        $rolled += @tags;
        next;
    }
    my ($rc, $text) = psql($select);
    my %ids;
    for (split /\n/, $text) { $ids{$2} = $1 if /^(\d+)\|(\S+)$/ }
    if ($rc == 0 && keys(%ids) == @tags) {
        out("A $_ $ids{$_} " . stamp() . "\n") for @tags;
        $acked += @tags;
    } else {
        my $reason = (split /\n/, $text)[0] // "exit $rc";
        $reason = "exit $rc: $reason";
        $reason =~ s/\s+/_/g;
        out("U $_ " . stamp() . " $reason\n") for @tags;
        $unknown += @tags;
        sleep 0.05;    # the server is probably restarting
    }
    sleep($o{pause_ms} / 1000) if $o{pause_ms};
}
print "producer $o{prefix}: acknowledged=$acked unknown=$unknown rolled_back=$rolled\n";
exit 0;
