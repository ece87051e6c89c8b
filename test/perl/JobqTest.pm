# The helpers every TAP test shares (runner/tests/t and, through
# JobqChaos, test/t): clusters with jobq, queues, jobq-runner processes,
# the webhook receiver and the proxies next to this file.
#
# Vocabulary: a *node* is a PostgreSQL::Test::Cluster with jobq preloaded
# and the extension created; a *runner* is a jobq-runner process started
# from $ENV{JOBQ_RUNNER} with its stderr in a log file; a *ledger* is a file
# the test handlers append one line per event to (O_APPEND, so lines from
# concurrent handlers never interleave), read back by the test.
package JobqTest;

use strict;
use warnings;

use Exporter 'import';
use JobqChildren;
use File::Basename qw(dirname);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT = qw(setup_node create_queue enqueue job_row wait_until write_file
  write_script read_lines start_runner stop_runner runner_alive runner_log
  http_get start_webhook_server stop_webhook_server free_port start_process stop_process);

my $lib_dir = dirname(__FILE__);

# PostgreSQL::Test::Cluster->init runs $ENV{PG_REGRESS} --config-auth; the
# test runner may not set it, so find the installed pg_regress.
if (!$ENV{PG_REGRESS} || !-x $ENV{PG_REGRESS}) {
    my $pgxs = `pg_config --pgxs`;
    chomp $pgxs;
    $ENV{PG_REGRESS} = dirname(dirname($pgxs)) . '/test/regress/pg_regress';
}

# Extra postgresql.conf lines may follow the name.
sub setup_node {
    my ($name, @conf) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init;
    $node->append_conf('postgresql.conf', join("\n", "shared_preload_libraries = 'jobq'", @conf) . "\n");
    $node->start;
    $node->safe_psql('postgres', 'CREATE EXTENSION jobq');
    return $node;
}

# Defaults keep every test fast: short lease and backoff.
sub create_queue {
    my ($node, $name, %opt) = @_;
    my %args = (
        lease        => "'2 seconds'",
        max_attempts => 3,
        backoff_base => "'100 milliseconds'",
        backoff_max  => "'1 second'",
        %opt);
    my $named = join ', ', map { "$_ => $args{$_}" } sort keys %args;
    $node->safe_psql('postgres', "SELECT jobq.create_queue('$name', $named)");
}

sub enqueue {
    my ($node, $queue, $payload) = @_;
    $payload //= '{}';
    $payload =~ s/'/''/g;
    return $node->safe_psql('postgres', "SELECT jobq.enqueue('$queue', '$payload'::jsonb)");
}

# One column list of jobq.jobs for a job, '|'-separated.
sub job_row {
    my ($node, $id, $columns) = @_;
    $columns //= 'state, attempt';
    return $node->safe_psql('postgres', "SELECT $columns FROM jobq.jobs WHERE id = $id");
}

# Polls $check every $step seconds (0.1) until it returns true or $timeout
# seconds pass.
sub wait_until {
    my ($timeout, $check, $step) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return 1 if $check->();
        sleep($step // 0.1);
    }
    return $check->() ? 1 : 0;
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "write $path: $!";
    print $fh $text;
    close $fh;
}

sub write_script {
    my ($path, $text) = @_;
    write_file($path, $text);
    chmod 0755, $path;
    return $path;
}

sub read_lines {
    my ($path) = @_;
    return () unless -e $path;
    open my $fh, '<', $path or die "read $path: $!";
    my @lines = <$fh>;
    close $fh;
    chomp @lines;
    return @lines;
}

sub free_port {
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
      or die "socket: $!";
    my $port = $sock->sockport;
    close $sock;
    return $port;
}

# Starts jobq-runner against $node (or a dsn string) with the given TOML (a
# [database] table is not needed: --dsn is passed). Returns { pid, log, config }.
sub start_runner {
    my ($node, $toml, @args) = @_;
    my $dsn = ref $node ? $node->connstr('postgres') : $node;
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my $config = "$dir/runner.toml";
    my $log = "$dir/runner.log";
    write_file($config, $toml);
    my $runner = $ENV{JOBQ_RUNNER} or die "JOBQ_RUNNER is not set";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', $log or die;
        open STDERR, '>>', $log or die;
        exec $runner, '--config', $config, '--dsn', $dsn, @args;
        die "exec $runner: $!";
    }
    track_child($pid);
    my $r = { pid => $pid, log => $log, config => $config };
    wait_until(10, sub { runner_log($r) =~ /jobq-runner: running, Ctrl\+C to stop/ })
      or diag("runner did not start:\n" . runner_log($r));
    return $r;
}

sub runner_log {
    my ($r) = @_;
    return join("\n", read_lines($r->{log})) . "\n";
}

sub runner_alive {
    my ($r) = @_;
    return 0 if defined $r->{status};
    my $got = waitpid($r->{pid}, WNOHANG);
    if ($got == $r->{pid}) {
        $r->{status} = $?;
        untrack_child($r->{pid});    # reaped: its pid may be reused
        return 0;
    }
    return 1;
}

# Signals the runner and waits up to $timeout seconds; returns the exit
# status (as from $?), or undef when it is still running.
sub stop_runner {
    my ($r, $signal, $timeout) = @_;
    $signal  //= 'TERM';
    $timeout //= 20;
    return $r->{status} unless runner_alive($r);
    kill $signal, $r->{pid};
    wait_until($timeout, sub { !runner_alive($r) });
    return $r->{status};
}

sub http_get {
    my ($port, $path) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5)
      or return (0, '');
    print $sock "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    local $/;
    my $response = <$sock> // '';
    close $sock;
    my ($status) = $response =~ m{^HTTP/1\.1 (\d+)};
    my (undef, $body) = split /\r\n\r\n/, $response, 2;
    return ($status // 0, $body // '');
}

# Starts webhook_server.pl (next to this file) (HTTPS when a cert and key are given);
# returns { pid, port, ledger }.
sub start_webhook_server {
    my ($secret, @tls) = @_;
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my $ledger = "$dir/requests.log";
    my $port_file = "$dir/port";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/server.log" or die;
        open STDERR, '>>', "$dir/server.log" or die;
        exec $^X, "$lib_dir/webhook_server.pl", $secret, $ledger, $port_file, @tls;
        die "exec: $!";
    }
    track_child($pid);
    wait_until(10, sub { -s $port_file }) or die "webhook server did not start";
    my ($port) = read_lines($port_file);
    return { pid => $pid, port => $port, ledger => $ledger };
}

sub stop_webhook_server {
    my ($server) = @_;
    kill 'TERM', $server->{pid};
    waitpid($server->{pid}, 0);
    untrack_child($server->{pid});
}

# Starts a helper process (argv, no shell) with stdout and stderr appended
# to $log; killed when the test exits. group => 1 puts it in a process group
# of its own, and the cleanup then kills the whole group; cwd => DIR runs
# it in DIR. Returns the pid.
sub start_process {
    my ($log, $argv, %opt) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        POSIX::setpgid(0, 0) if $opt{group};
        open STDOUT, '>>', $log or die;
        open STDERR, '>>', $log or die;
        # After the log is open: $log may be relative to the test's own cwd.
        if (defined $opt{cwd}) { chdir $opt{cwd} or die "chdir $opt{cwd}: $!"; }
        exec @$argv;
        die "exec $argv->[0]: $!";
    }
    POSIX::setpgid($pid, $pid) if $opt{group};    # no race with the first kill
    track_child($opt{group} ? -$pid : $pid);
    return $pid;
}

# SIGTERM (or $signal), then waits up to $timeout seconds, then SIGKILL (and
# for a group started with group => 1, SIGKILL to what is left of the group).
# Returns the exit status (as from $?).
sub stop_process {
    my ($pid, $signal, $timeout) = @_;
    $timeout //= 10;
    kill $signal // 'TERM', $pid;
    my $deadline = time + $timeout;
    my $status;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $?;
            last;
        }
        sleep 0.05;
    }
    if (!defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $status = $?;
    }
    # A group leader gone: sweep whatever it left in its group.
    kill 'KILL', -$pid if untrack_child(-$pid);
    untrack_child($pid);
    return $status;
}

1;
