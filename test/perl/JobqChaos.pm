# Shared helpers for the chaos TAP tests (test/t/chaos_*.pl).
#
# The harness pieces live in test/chaos/: handler.pl (the exec handler that
# writes the ledger), producer.pl (enqueues and logs every outcome) and
# check.pl (lost / unexpected / duplicated / stale settles). This module
# starts nodes, runners and producers for a TAP test, appends fault events
# (runner kills, server crashes) to the same ledger, and runs the checker.
# What every TAP test needs (clusters, waiting, runner processes) comes
# from JobqTest, the one library of both TAP trees.
#
# CHAOS_MODE=long (set by test/chaos/run.sh --long) scales the tests up;
# chaos_param(short => x, long => y) picks the value for the current mode.
package JobqChaos;

use strict;
use warnings;

use Exporter 'import';
use JobqChildren;
use JobqTest qw(setup_node wait_until runner_alive runner_log);
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use File::Basename qw(dirname);
use POSIX qw(:sys_wait_h);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC CLOCK_REALTIME time sleep);

our @EXPORT = qw(chaos_mode chaos_param chaos_dir chaos_node chaos_queue chaos_wait
  chaos_runner_toml start_runner stop_runner kill_runner runner_alive runner_log
  ledger_event start_producer stop_producer wait_producer run_checker
  server_log_problems check_server_log job_counts wait_quiescent percentile mono try_psql);

my $source = $ENV{JOBQ_SOURCE} // dirname(dirname(dirname(__FILE__)));
our $HANDLER = "$source/test/chaos/handler.pl";
our $PRODUCER = "$source/test/chaos/producer.pl";
our $CHECKER = "$source/test/chaos/check.pl";
our $runner_seq = 0;

sub chaos_mode { ($ENV{CHAOS_MODE} // 'short') eq 'long' ? 'long' : 'short' }

sub chaos_param {
    my (%v) = @_;
    return $v{ chaos_mode() };
}

sub mono { clock_gettime(CLOCK_MONOTONIC) }

# A directory for ledgers, producer logs and runner logs. Under $TESTDIR
# (kept after the test, so a failure can be examined) when it is set.
my $dir_seq = 0;
sub chaos_dir {
    return PostgreSQL::Test::Utils::tempdir() unless $ENV{TESTDIR} && -d $ENV{TESTDIR};
    my $dir = sprintf('%s/chaos-%d-%d', $ENV{TESTDIR}, $$, ++$dir_seq);
    mkdir $dir or die "mkdir $dir: $!";
    return $dir;
}

# A node with jobq preloaded, the extension created and a fast rescuer.
# Extra postgresql.conf lines may be passed as a list.
sub chaos_node {
    my ($name, @conf) = @_;
    return setup_node($name, 'max_connections = 100', 'jobq.rescue_interval = 200ms',
        'jobq.naptime = 200ms', "log_line_prefix = '%m [%p] %b '", @conf);
}

# Short lease and backoff so faults resolve in seconds.
sub chaos_queue {
    my ($node, $name, %opt) = @_;
    my %args = (lease => "'2 seconds'", max_attempts => 25, backoff_base => "'100 milliseconds'",
                backoff_max => "'500 milliseconds'", backoff_jitter => 0.2, %opt);
    my $named = join ', ', map {"$_ => $args{$_}"} sort keys %args;
    $node->safe_psql('postgres', "SELECT jobq.create_queue('$name', $named)");
}

# Polls $check every $step seconds (default 0.1) until true or $timeout passes.
sub chaos_wait { return wait_until(@_) }

# TOML for a runner with one exec queue running handler.pl into $ledger.
sub chaos_runner_toml {
    my (%a) = @_;
    my $queues = $a{queues} // [ $a{queue} // 'chaos' ];
    my $toml = "[runner]\npoll_interval = \"" . ($a{poll} // '500ms') . "\"\n"
      . "reconnect_min = \"50ms\"\nreconnect_max = \"" . ($a{reconnect_max} // '1s') . "\"\n"
      . "query_timeout = \"" . ($a{query_timeout} // '10s') . "\"\n";
    for my $q (@$queues) {
        $toml .= "[queues.$q]\nhandler = \"exec\"\ncommand = [\"/usr/bin/perl\", \"$HANDLER\", \"$a{ledger}\"]\n"
          . 'concurrency = ' . ($a{concurrency} // 8) . "\n"
          . 'timeout = "' . ($a{timeout} // '30s') . "\"\n";
        $toml .= "kill_grace = \"$a{kill_grace}\"\n" if $a{kill_grace};
    }
    return $toml;
}

# Starts jobq-runner; returns { pid, log, config, started }. Does not wait
# for it unless wait => seconds is given.
sub start_runner {
    my ($node, $toml, %a) = @_;
    my $dir = $a{dir} // chaos_dir();
    my $n = ++$runner_seq;
    my $config = "$dir/runner$n.toml";
    my $log = "$dir/runner$n.log";
    open my $fh, '>', $config or die "write $config: $!";
    print $fh $toml;
    close $fh;
    my $bin = $ENV{JOBQ_RUNNER} or die "JOBQ_RUNNER is not set";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', $log or die;
        open STDERR, '>>', $log or die;
        exec $bin, '--config', $config, '--dsn', $node->connstr('postgres'), @{ $a{args} // [] };
        die "exec $bin: $!";
    }
    track_child($pid);
    my $r = { pid => $pid, log => $log, config => $config, started => mono() };
    if ($a{wait}) {
        chaos_wait($a{wait}, sub { runner_log($r) =~ /running, Ctrl\+C to stop/ })
          or diag("runner $pid did not start:\n" . runner_log($r));
    }
    return $r;
}

# SIGTERM (or $signal), wait up to $timeout s; returns the wait status.
sub stop_runner {
    my ($r, $signal, $timeout) = @_;
    return $r->{status} unless runner_alive($r);
    kill($signal // 'TERM', $r->{pid});
    chaos_wait($timeout // 30, sub { !runner_alive($r) });
    if (runner_alive($r)) {
        kill 'KILL', $r->{pid};
        chaos_wait(5, sub { !runner_alive($r) });
    }
    return $r->{status};
}

# SIGKILL a runner by pid and record it in the ledger (K event) first, so
# the event time is never after the death.
sub kill_runner {
    my ($r, $ledger) = @_;
    ledger_event($ledger, 'K', $r->{pid});
    kill 'KILL', $r->{pid};
    chaos_wait(5, sub { !runner_alive($r) }, 0.01);
    $r->{killed_at} = mono();
}

# Appends "<kind> <what> <mono> <wall>" to the ledger.
sub ledger_event {
    my ($ledger, $kind, $what) = @_;
    sysopen(my $fh, $ledger, O_WRONLY | O_APPEND | O_CREAT, 0644) or die "open $ledger: $!";
    my $line = sprintf("%s %s %.6f %.6f\n", $kind, $what, mono(), clock_gettime(CLOCK_REALTIME));
    syswrite($fh, $line);
    close $fh;
}

# Starts test/chaos/producer.pl in the background; returns { pid, log, out }.
sub start_producer {
    my ($node, %a) = @_;
    my $dir = $a{dir} // chaos_dir();
    my $prefix = $a{prefix} // "p$$";
    my $log = $a{log} // "$dir/produced-$prefix.log";
    my $out = "$dir/producer-$prefix.out";
    my @args = ('--dsn', $node->connstr('postgres'), '--queue', $a{queue} // 'chaos', '--log', $log,
                '--prefix', $prefix, '--batch', $a{batch} // 10);
    push @args, '--count', $a{count} if $a{count};
    push @args, '--extra', $a{extra} if defined $a{extra};
    push @args, '--rollback-every', $a{rollback_every} if $a{rollback_every};
    push @args, '--pause-ms', $a{pause_ms} if $a{pause_ms};
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', $out or die;
        open STDERR, '>>', $out or die;
        exec $^X, $PRODUCER, @args;
        die "exec: $!";
    }
    track_child($pid);
    return { pid => $pid, log => $log, out => $out };
}

sub wait_producer {
    my ($p, $timeout) = @_;
    my $done = chaos_wait($timeout // 300, sub { waitpid($p->{pid}, WNOHANG) == $p->{pid} });
    return $done;
}

sub stop_producer {
    my ($p) = @_;
    kill 'TERM', $p->{pid};
    wait_producer($p, 60) or do { kill 'KILL', $p->{pid}; waitpid($p->{pid}, 0) };
}

# Runs check.pl; returns ($exit_code, \%figures, $output). Figures are the
# "chaos-check: key=value" lines.
sub run_checker {
    my ($node, %a) = @_;
    my @args = ('--ledger', $a{ledger}, '--dsn', $node->connstr('postgres'));
    push @args, map { ('--produced', $_) } @{ $a{produced} // [] };
    push @args, map { ('--runner-log', $_) } @{ $a{runner_logs} // [] };
    push @args, '--lease', $a{lease} if $a{lease};
    push @args, '--json', $a{json} if $a{json};
    my $pid = open(my $ph, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec $^X, $CHECKER, @args;
        exit 127;
    }
    local $/;
    my $out = <$ph> // '';
    close $ph;
    my $rc = $? >> 8;
    my %fig;
    while ($out =~ /^chaos-check: (\w+)=(\S*)$/mg) { $fig{$1} = $2 }
    return ($rc, \%fig, $out);
}

# Lines of the server log that show a crash: a process "terminated by
# signal" or a crash restart. allow => qr// names the ones the test caused.
sub server_log_problems {
    my ($node, %a) = @_;
    open my $fh, '<', $node->logfile or return ("cannot read " . $node->logfile);
    my @bad;
    while (my $l = <$fh>) {
        next unless $l =~ /terminated by signal|terminating any other active server processes/;
        next if $a{allow} && $l =~ $a{allow};
        chomp $l;
        push @bad, $l;
    }
    return @bad;
}

sub check_server_log {
    my ($node, %a) = @_;
    my @bad = server_log_problems($node, %a);
    ok(!@bad, 'server log: no process terminated by signal, no crash restart'
        . ($a{allow} ? ' (beyond the ones this test caused)' : ''))
      or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 20) ]));
}

# Runs one statement with psql -c (no stdin, so a server that is crashing
# cannot make IPC::Run die on a broken pipe). Never dies: returns
# (exit code, stdout) in list context, stdout or undef in scalar context.
sub try_psql {
    my ($node, $sql) = @_;
    my $pid = open(my $ph, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        exec 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql;
        exit 127;
    }
    my $out = do { local $/; <$ph> } // '';
    close $ph;
    my $rc = $? >> 8;
    $out =~ s/\n\z//;
    return wantarray ? ($rc, $out) : ($rc == 0 ? $out : undef);
}

# { state => count } over jobq.jobs, optionally for one queue.
sub job_counts {
    my ($node, $queue) = @_;
    my $where = defined $queue ? "WHERE queue = '$queue'" : '';
    my %c = map { split /\|/ } split /\n/,
      $node->safe_psql('postgres', "SELECT state, count(*) FROM jobq.jobs $where GROUP BY state");
    return \%c;
}

# Waits until no job is waiting or running (and at least min => n jobs
# exist). Gives up after $timeout seconds, or earlier when the number of
# unfinished jobs has not gone down for stall => seconds (default 60): a
# slow, loaded machine still drains, a stuck system fails fast enough.
sub wait_quiescent {
    my ($node, $timeout, %a) = @_;
    my $q = defined $a{queue} ? "AND queue = '$a{queue}'" : '';
    my $stall = $a{stall} // 60;
    my ($best, $best_at) = (undef, time);
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = try_psql($node,
            "SELECT count(*) FILTER (WHERE state NOT IN ('completed','cancelled','dead')), count(*) FROM jobq.jobs WHERE true $q");
        if (defined $r) {
            my ($live, $all) = split /\|/, $r;
            return 1 if $live == 0 && $all >= ($a{min} // 0);
            ($best, $best_at) = ($live, time) if !defined $best || $live < $best;
        }
        return 0 if time - $best_at > $stall;
        sleep 0.25;
    }
    return 0;
}

sub percentile {
    my ($p, @v) = @_;
    return undef unless @v;
    @v = sort { $a <=> $b } @v;
    return $v[ int($#v * $p) ];
}

1;
