# The command line: a wrong or missing setting fails at start (exit 2) with a
# message naming it; --check validates without connecting.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $runner = $ENV{JOBQ_RUNNER} or BAIL_OUT('JOBQ_RUNNER is not set');
my $dir = PostgreSQL::Test::Utils::tempdir();

# Runs the runner; returns (exit status, stdout + stderr).
sub run_runner {
    my @args = @_;
    my $out = `$runner @args 2>&1`;
    return ($? >> 8, $out);
}

write_file("$dir/ok.toml", "[queues.q]\nhandler = \"noop\"\n");
my ($rc, $out) = run_runner('--config', "$dir/ok.toml", '--check');
is($rc, 0, '--check accepts a valid config');
like($out, qr/config ok \(1 queues\)/, 'and says so');

($rc, $out) = run_runner('--check');
isnt($rc, 0, 'no --config: refused');
like($out, qr/--config is required/, 'naming --config');

($rc, $out) = run_runner('--config', "$dir/missing.toml", '--check');
is($rc, 2, 'unreadable config file: exit 2');
like($out, qr/config error: --config: cannot read/, 'naming the file');

write_file("$dir/bad.toml", "[queues.q]\nconcurrency = 5\n");
($rc, $out) = run_runner('--config', "$dir/bad.toml");
is($rc, 2, 'a missing setting fails at start');
like($out, qr/^jobq-runner: config error: queues\.q\.handler: missing/m, 'naming queues.q.handler');
unlike($out, qr/running, Ctrl\+C/, 'before anything starts');

write_file("$dir/typo.toml", "[queues.q]\nhandler = \"noop\"\ntimout = \"5s\"\n");
($rc, $out) = run_runner('--config', "$dir/typo.toml");
is($rc, 2, 'a misspelt setting fails at start');
like($out, qr/queues\.q\.timout: unknown setting/, 'naming it');

($rc, $out) = run_runner('--config', "$dir/ok.toml", '--grace-period', 'soon', '--check');
is($rc, 2, 'a bad command-line override fails');
like($out, qr/--grace-period: invalid duration/, 'naming the option');

($rc, $out) = run_runner('--config', "$dir/ok.toml", '--listen', 'nowhere', '--check');
like($out, qr/--listen: must be "host:port"/, 'a bad --listen is named');

# A port that is already taken fails at start, naming http.listen.
my $port = free_port();
my $blocker = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 1, ReuseAddr => 0)
  or die "listen: $!";
write_file("$dir/busy.toml", "[http]\nlisten = \"127.0.0.1:$port\"\n[database]\ndsn = \"host=/nonexistent\"\n[queues.q]\nhandler = \"noop\"\n");
($rc, $out) = run_runner('--config', "$dir/busy.toml");
is($rc, 2, 'an address in use fails at start');
like($out, qr/http\.listen: cannot listen on 127\.0\.0\.1:$port/, 'naming http.listen');
close $blocker;

done_testing();
