#!/usr/bin/perl
# Chaos checker: compares what producers were told, what handlers did (the
# ledger) and what the database says at quiescence. Core Perl only.
#
#   check.pl --ledger FILE [--produced FILE ...] (--dsn DSN | --db FILE)
#            [--runner-log FILE ...] [--lease SECONDS] [--json OUT] [--quiet]
#
# Inputs
#   ledger     lines from test/chaos/handler.pl (S/F) and events the harness
#              appended:  K <runner_pid> <mono> <wall>    runner SIGKILLed
#                         X <what> <mono> <wall>          server crashed/stopped
#                         Z <runner_pid> <mono> <wall>    runner stalled (SIGSTOP)
#   produced   producer logs (test/chaos/producer.pl): A / U / B lines
#   db         "id|queue|state|attempt|max_attempts|tag|mode|rescues|last_error"
#              per job (the query $DB_QUERY below, run by psql when --dsn is
#              given); rescues = "attempt:epoch,..." of the rescuer's errors
#   runner-log jobq-runner logs: refused settles are counted from them, and
#              jobs a runner fenced itself (lease not extended in time)
#              explain a re-run
#
# Verdicts
#   lost        acknowledged enqueue (or a committed unknown-outcome one) that
#               is missing from the database or not finished (completed,
#               cancelled, dead) at quiescence
#   unexpected  a job nobody enqueued, a rolled-back enqueue that is visible,
#               a ledger run of a job the database does not have, a job
#               completed although no run of it finished successfully
#   duplicated  extra runs of a job after a run that did not fail on purpose,
#               each with its cause; "unexplained" when no kill, crash or
#               lease expiry accounts for it
#   retries     extra runs after a run that failed on purpose (fail, segv, hang,
#               kill_runner)
#   rescue_*    kill -> the rescuer's error entry for the killed attempt
#               (time-to-rescue); rerun_*: kill -> the job's next start
# Exits 1 when lost, unexpected or unexplained duplicates are not all 0.
use strict;
use warnings;
use Getopt::Long;
use JSON::PP;
use Time::Local qw(timegm);

my (%o, @produced, @runner_logs);
GetOptions(\%o, 'ledger=s', 'produced=s' => \@produced, 'dsn=s', 'db=s', 'runner-log=s' => \@runner_logs,
    'lease=f', 'json=s', 'quiet') or die "bad arguments\n";
defined $o{ledger} or die "--ledger is required\n";
defined $o{dsn} || defined $o{db} or die "--dsn or --db is required\n";
my $lease = $o{lease} // 0;

sub lines {
    my ($path) = @_;
    return () unless defined $path && -e $path;
    open my $fh, '<', $path or die "read $path: $!\n";
    my @l = <$fh>;
    chomp @l;
    return @l;
}

our $DB_QUERY = q{SELECT id, queue, state, attempt, max_attempts, coalesce(payload->>'tag', ''),
  coalesce(payload->>'mode', 'ok'),
  coalesce((SELECT string_agg((e->>'attempt') || ':' || extract(epoch FROM (e->>'at')::timestamptz), ',')
            FROM jsonb_array_elements(errors) e WHERE e->>'error' LIKE '%rescued by%'), ''),
  translate(coalesce(errors->-1->>'error', ''), E'\n\r|', '   ')
  FROM jobq.jobs ORDER BY id};

sub db_rows {
    my @l;
    if (defined $o{dsn}) {
        open(my $ph, '-|', 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $o{dsn}, '-c', $DB_QUERY)
          or die "psql: $!\n";
        @l = <$ph>;
        close $ph or die "psql failed ($?)\n";
        chomp @l;
    } else {
        @l = lines($o{db});
    }
    return @l;
}

# --- inputs -------------------------------------------------------------------
my (%prod, %count);    # tag -> { kind => A|U|B, id => }
for my $file (@produced) {
    for (lines($file)) {
        my @f = split / /;
        if ($f[0] eq 'A') { $prod{$f[1]} = { kind => 'A', id => $f[2] }; }
        elsif ($f[0] eq 'U') { $prod{$f[1]} = { kind => 'U' } unless $prod{$f[1]}; }
        elsif ($f[0] eq 'B') { $prod{$f[1]} = { kind => 'B' }; }
    }
}
$count{$_} = 0 for qw(acknowledged unknown_outcome rolled_back);
for (values %prod) {
    $count{ { A => 'acknowledged', U => 'unknown_outcome', B => 'rolled_back' }->{ $_->{kind} } }++;
}

my (%job, %by_tag);
for (db_rows()) {
    my ($id, $queue, $state, $attempt, $max, $tag, $mode, $rescues, $err) = split /\|/, $_, 9;
    next unless defined $rescues;
    my %rescued = map { split /:/ } grep {length} split /,/, $rescues;
    $job{$id} = { id => $id, queue => $queue, state => $state, attempt => $attempt, max => $max,
                  tag => $tag, mode => $mode, error => $err // '', rescued => \%rescued };
    $by_tag{$tag} = $id if length $tag;
}

my (%runs, @kills, @crashes, @stalls);    # id -> [ run ]
my %by_handler;                  # "runner_pid handler_pid id attempt" -> run
for (lines($o{ledger})) {
    my @f = split / /;
    next unless @f;
    if ($f[0] eq 'S' && @f >= 9) {
        my $r = { id => $f[1], attempt => $f[2], token => $f[3], runner => $f[4], pid => $f[5],
                  start => $f[6], wall => $f[7], mode => $f[8] };
        push @{ $runs{ $f[1] } }, $r;
        $by_handler{"$f[4] $f[5] $f[1] $f[2]"} = $r;
    } elsif ($f[0] eq 'F' && @f >= 9) {
        my $r = $by_handler{"$f[4] $f[5] $f[1] $f[2]"};
        if ($r) { $r->{finish} = $f[6]; $r->{outcome} = $f[8]; }
    } elsif ($f[0] eq 'K') {
        push @kills, { pid => $f[1], at => $f[2], wall => $f[3] };
    } elsif ($f[0] eq 'Z') {
        push @stalls, { pid => $f[1], at => $f[2] };
    } elsif ($f[0] eq 'X') {
        push @crashes, { what => $f[1], at => $f[2] };
    }
}

# Runner logs: refused settles, and jobs a runner gave up on by itself
# (fenced: its lease could not be extended in time; or the lease had
# expired before the handler could start) with the wall time it did so.
my %refused = (completion => 0, failure => 0);
my %fenced;    # job id -> [ wall times ]
for my $file (@runner_logs) {
    for (lines($file)) {
        # Also re-sends after a lost connection that were not applied.
        $refused{completion}++ if /msg="?completion (?:refused|not applied)/;
        $refused{failure}++ if /msg="?failure (?:refused|not applied)/;
        if (/^ts=(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z .*msg="(lease could not be extended[^"]*|lease expired before[^"]*|job no longer held[^"]*)" job=(\d+)/) {
            push @{ $fenced{$9} }, timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1000;
        }
    }
}

# --- verdicts -----------------------------------------------------------------
my (@lost, @unexpected, @dups, %causes, @rescue, @rerun);
my %terminal = map { $_ => 1 } qw(completed cancelled dead);
$count{$_} = 0 for qw(unknown_committed unknown_not_committed completed dead cancelled
                      not_finished runs extra_runs retries overlapping_runs claims_without_run);

if (@produced) {
    for my $tag (sort keys %prod) {
        my $p = $prod{$tag};
        my $id = $by_tag{$tag};
        if ($p->{kind} eq 'B') {
            push @unexpected, "rolled-back enqueue is visible: tag=$tag id=$id" if defined $id;
            next;
        }
        if ($p->{kind} eq 'U') {
            $count{ defined $id ? 'unknown_committed' : 'unknown_not_committed' }++;
            next unless defined $id;
        }
        if (!defined $id) {
            push @lost, "acknowledged enqueue missing from the database: tag=$tag id=$p->{id}";
            next;
        }
        if ($p->{kind} eq 'A' && $p->{id} != $id) {
            push @unexpected, "tag=$tag acknowledged as id=$p->{id} but stored as id=$id";
        }
    }
    for my $j (values %job) {
        next unless length $j->{tag};
        push @unexpected, "job nobody enqueued: id=$j->{id} tag=$j->{tag}" unless $prod{ $j->{tag} };
    }
}

for my $j (sort { $a->{id} <=> $b->{id} } values %job) {
    $count{ $j->{state} }++ if $terminal{ $j->{state} };
    if (!$terminal{ $j->{state} }) {
        $count{not_finished}++;
        my $why = (!@produced || ($j->{tag} && $prod{ $j->{tag} })) ? 'lost' : 'unexpected';
        my $msg = "job not finished at quiescence: id=$j->{id} tag=$j->{tag} state=$j->{state} attempt=$j->{attempt}";
        push @{ $why eq 'lost' ? \@lost : \@unexpected }, $msg;
    }
    my @r = @{ $runs{ $j->{id} } // [] };
    $count{claims_without_run} += $j->{attempt} - @r if $j->{attempt} > @r;
    if ($j->{state} eq 'completed' && $j->{mode} eq 'ok' && !grep { ($_->{outcome} // '') eq 'ok' } @r) {
        push @unexpected, "completed without a successful run in the ledger: id=$j->{id} tag=$j->{tag}";
    }
}
for my $id (keys %runs) {
    push @unexpected, "ledger has runs of job $id, which the database does not have" unless $job{$id};
}

sub cause_of {
    my ($prev, $next) = @_;
    my ($from, $to) = ($prev->{start}, $next->{start});
    if ($prev->{attempt} == $next->{attempt}) {
        # Same attempt number: the claim was undone by a crash (see below).
        for my $c (@crashes) {
            return ("server $c->{what} undid the claim (claims commit asynchronously)", undef)
              if $c->{at} >= $from - ($lease || 0) - 1 && $c->{at} <= $to;
        }
    }
    for my $k (@kills) {
        # A handler forked just before the kill may log its start just after
        # the kill was logged: allow a few seconds of slack before the start.
        next unless $k->{pid} == $prev->{runner} && $k->{at} >= $from - 5 && $k->{at} <= $to;
        if (defined $prev->{finish} && $prev->{finish} <= $k->{at}) {
            return ('runner killed after the handler finished, before the completion was acknowledged', $k);
        }
        return ('runner killed while the handler ran', $k);
    }
    for my $z (@stalls) {
        return ('runner stalled (SIGSTOP) past its lease', undef)
          if $z->{pid} == $prev->{runner} && $z->{at} >= $from - 5 && $z->{at} <= $to;
    }
    for my $c (@crashes) {
        return ("server $c->{what} between the runs (settle outcome unknown, lease expired or claim undone meanwhile)", undef)
          if $c->{at} >= $from && $c->{at} <= $to;
    }
    # A crash up to one lease before the start: the runner had claimed the
    # job before the crash and ran it while reconnecting; its completion
    # reached the database after the lease had expired (refused as stale).
    for my $c (@crashes) {
        return ("server $c->{what} shortly before the run (completion reached the database after the lease expired)", undef)
          if $c->{at} >= $from - ($lease || 0) - 1 && $c->{at} <= $to;
    }
    for my $t (@{ $fenced{ $prev->{id} } // [] }) {
        return ('runner gave the job up by itself (lease could not be extended in time: runner overloaded)', undef)
          if $t >= $prev->{wall} - 1 && $t <= $next->{wall};
    }
    if ($lease && (!defined $prev->{finish} || $prev->{finish} - $from >= $lease) && $to - $from >= $lease) {
        return ('lease expired while the handler ran', undef);
    }
    return (undef, undef);
}

for my $id (sort { $a <=> $b } keys %runs) {
    my @r = sort { $a->{start} <=> $b->{start} } @{ $runs{$id} };
    $count{runs} += @r;
    my %seen_attempt;
    for my $i (0 .. $#r) {
        my $r = $r[$i];
        if (my $first = $seen_attempt{ $r->{attempt} }) {
            # The same attempt number twice: the claim that counted it was
            # undone. Only a server crash does that (runners commit claims
            # asynchronously by default; docs/runner.md durable_claims), and
            # the duplicate is then explained below like any other crash.
            # The crash may come before the first run: claimed, crash, then
            # the handler started while the runner reconnected.
            my $crash = grep { $_->{at} >= $first->{start} - ($lease || 0) - 1 && $_->{at} <= $r->{start} }
              @crashes;
            push @dups, { id => $id, attempt => $r->{attempt}, cause => undef,
                          note => "attempt $r->{attempt} started twice" } unless $crash;
        }
        $seen_attempt{ $r->{attempt} } //= $r;
        next if $i == 0;
        $count{extra_runs}++;
        my $prev = $r[ $i - 1 ];
        $count{overlapping_runs}++ if !defined $prev->{finish} ? 0 : $prev->{finish} > $r->{start};
        my $prev_outcome = $prev->{outcome} // '';
        if ($prev_outcome eq 'fail' || $prev->{mode} =~ /^(fail|segv|hang|kill_runner)$/) {
            $count{retries}++;
            next;
        }
        my ($cause, $kill) = cause_of($prev, $r);
        push @dups, { id => $id, attempt => $r->{attempt}, cause => $cause,
                      note => "after attempt $prev->{attempt} on runner $prev->{runner}"
                        . (defined $prev->{finish} ? " (finished $prev_outcome)" : ' (unfinished)') };
        if ($kill) {
            # Kill -> next start (includes waiting behind the backlog), and
            # kill -> the rescuer's error entry for that attempt (database
            # clock vs wall clock of this machine).
            push @rerun, $r->{start} - $kill->{at};
            my $at = $job{$id} && $job{$id}{rescued}{ $prev->{attempt} };
            push @rescue, $at - $kill->{wall} if defined $at;
        }
    }
}
for my $d (@dups) { $causes{ $d->{cause} // 'UNEXPLAINED' }++ }

my @unexplained = grep { !defined $_->{cause} } @dups;
my %summary = (
    %count,
    lost => scalar(@lost),
    unexpected => scalar(@unexpected),
    duplicated => scalar(@dups),
    duplicated_jobs => scalar(keys %{ { map { $_->{id} => 1 } @dups } }),
    unexplained_duplicates => scalar(@unexplained),
    duplicate_causes => \%causes,
    stale_completions_refused => $refused{completion},
    stale_failures_refused => $refused{failure},
    runner_kills => scalar(@kills),
    runner_stalls => scalar(@stalls),
    server_crashes => scalar(@crashes),
    jobs => scalar(keys %job),
);
for ([ rescue => \@rescue ], [ rerun => \@rerun ]) {
    my ($name, $v) = @$_;
    next unless @$v;
    my @s = sort { $a <=> $b } @$v;
    $summary{"${name}_samples"} = scalar @s;
    $summary{"${name}_p50_s"} = sprintf('%.3f', $s[ int($#s * 0.5) ]);
    $summary{"${name}_p90_s"} = sprintf('%.3f', $s[ int($#s * 0.9) ]);
    $summary{"${name}_max_s"} = sprintf('%.3f', $s[-1]);
}

for my $k (sort keys %summary) {
    next if ref $summary{$k};
    print "chaos-check: $k=$summary{$k}\n";
}
print "chaos-check: cause \"$_\" = $causes{$_}\n" for sort keys %causes;
my $limit = $o{quiet} ? 10 : 1000;
my @detail = ((map {"LOST $_"} @lost), (map {"UNEXPECTED $_"} @unexpected),
              (map { "UNEXPLAINED DUPLICATE job=$_->{id} attempt=$_->{attempt} $_->{note}" } @unexplained));
print "chaos-check: $_\n" for @detail[ 0 .. ($#detail < $limit - 1 ? $#detail : $limit - 1) ];
print "chaos-check: ... " . (@detail - $limit) . " more\n" if @detail > $limit;
if ($o{json}) {
    open my $fh, '>', $o{json} or die "write $o{json}: $!\n";
    print $fh JSON::PP->new->canonical->pretty->encode({ %summary, details => \@detail });
    close $fh;
}
my $ok = !@lost && !@unexpected && !@unexplained;
print 'chaos-check: verdict=' . ($ok ? 'PASS' : 'FAIL') . "\n";
exit($ok ? 0 : 1);
