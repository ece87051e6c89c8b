# Errors no retry can heal end the runner at start-up with exit status 2 and
# one clear line: a malformed dsn (also under --check), a wrong password, a
# missing database, a role without jobq_worker. What can heal is retried: a
# server not yet up, too many connections for the role.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $runner_bin = $ENV{JOBQ_RUNNER} or BAIL_OUT('JOBQ_RUNNER is not set');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $toml = "[runner]\npoll_interval = \"200ms\"\n[queues.q]\nhandler = \"noop\"\n";

# --check and a start with a malformed dsn, in the file or on the command line.
write_file("$dir/bad_dsn.toml", "[database]\ndsn = \"not a dsn = = =\"\n$toml");
write_file("$dir/ok.toml", $toml);
my $out = `$runner_bin --config $dir/bad_dsn.toml --check 2>&1`;
is($? >> 8, 2, '--check refuses a malformed dsn');
like($out, qr/^jobq-runner: config error: database\.dsn: invalid connection string: /, 'naming database.dsn');
$out = `$runner_bin --config $dir/ok.toml --dsn 'not a dsn = = =' 2>&1`;
is($? >> 8, 2, 'a malformed --dsn fails at start');
like($out, qr/^jobq-runner: config error: --dsn: invalid connection string: /, 'naming --dsn');
unlike($out, qr/running, Ctrl\+C/, 'before anything starts');

my $node = setup_node('fast');
create_queue($node, 'q');
# Password authentication for the roles below only (the test's own
# connections stay on trust): pg_hba.conf is first match, so prepend.
my $hba = $node->data_dir . '/pg_hba.conf';
my @hba = read_lines($hba);
write_file($hba, join("\n", 'local all pw_user scram-sha-256', @hba) . "\n");
$node->reload;
$node->safe_psql('postgres', q{
    CREATE ROLE pw_user LOGIN PASSWORD 'right' IN ROLE jobq_worker;
    CREATE ROLE no_worker LOGIN;
    CREATE ROLE limited LOGIN CONNECTION LIMIT 1 IN ROLE jobq_worker;
});
my $base = $node->connstr('postgres');

# Starts a runner with $dsn; returns it once it has exited (or after 15 s).
sub run_until_exit {
    my ($dsn) = @_;
    my $r = start_runner($dsn, $toml);
    wait_until(15, sub { !runner_alive($r) });
    return $r;
}

for my $case (
    [ 'a wrong password', "$base user=pw_user password=wrong", qr/password authentication failed for user \\"pw_user\\"/ ],
    [ 'a missing database', $node->connstr('no_such_db'), qr/database \\"no_such_db\\" does not exist/ ],
    [ 'a role without jobq_worker', "$base user=no_worker", qr/role \\"no_worker\\" is not a member of jobq_worker/ ])
{
    my ($what, $dsn, $says) = @$case;
    my $r = run_until_exit($dsn);
    ok(!runner_alive($r), "$what: the runner gives up") or stop_runner($r, 'KILL');
    is(($r->{status} // 0) >> 8, 2, "$what: exit status 2");
    my @errors = grep { /level=error/ } read_lines($r->{log});
    is(scalar @errors, 1, "$what: one error line") or diag(runner_log($r));
    like($errors[0] // '', $says, "$what: it says why");
}

# Too many connections for the role (it may have 1, the runner opens 3):
# retried until the limit is lifted, then the job runs.
my $r = start_runner("$base user=limited", $toml);
sleep 2;
ok(runner_alive($r), 'too many connections: the runner keeps retrying');
like(runner_log($r), qr/too many connections for role/, 'and says why');
$node->safe_psql('postgres', 'ALTER ROLE limited CONNECTION LIMIT -1');
my $id = enqueue($node, 'q');
ok(wait_until(30, sub { job_row($node, $id, 'state') eq 'completed' }), 'then works once the limit is lifted');
is(stop_runner($r, 'TERM'), 0, 'and exits 0 on SIGTERM');

# A server that is not up yet: retried until it is.
$node->stop;
$r = start_runner($node, $toml);
sleep 2;
ok(runner_alive($r), 'server down at start: the runner keeps retrying');
$node->start;
$id = enqueue($node, 'q');
ok(wait_until(30, sub { job_row($node, $id, 'state') eq 'completed' }), 'then works once the server is up');
is(stop_runner($r, 'TERM'), 0, 'and exits 0 on SIGTERM');

done_testing();
