# Behind PgBouncer (Debian's pgbouncer, started here on its own port):
# - transaction mode with pool_mode = "transaction": two runners both claim
#   and every job completes; the one with listen_dsn (a direct session)
#   gets wake-ups, the one without says once that it polls;
# - transaction mode with the default config: the runner notices the lost
#   prepared statement, says so once, and keeps working unprepared;
# - session mode: prepared claims and wake-ups through the pool work;
# - claims refused again and again turn /healthz to 503, and back.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $pgbouncer = '/usr/sbin/pgbouncer';
plan skip_all => 'pgbouncer is not installed (scripts/install-deps.sh)' unless -x $pgbouncer;

my $node = setup_node('pool');
create_queue($node, 'q', lease => "'10 seconds'");
$node->safe_psql('postgres', 'CREATE ROLE pool_worker LOGIN IN ROLE jobq_worker');
my $me = $node->safe_psql('postgres', 'SELECT current_user');

# One pgbouncer, two pools onto the same database. Round robin over at least
# two server connections: consecutive transactions of one client land on
# different server connections, as on a busy pool.
# PgBouncer 1.21 and later can keep protocol-level prepared statements
# across a transaction pool (max_prepared_statements, on by default from
# 1.22); the pool tested here is the one without that support, as Debian
# bookworm's 1.18 is, so newer versions get it turned off.
my ($bouncer_major, $bouncer_minor) = `$pgbouncer --version` =~ /PgBouncer (\d+)\.(\d+)/;
my $no_prepared = ($bouncer_major // 1) > 1 || ($bouncer_minor // 0) >= 21
    ? "max_prepared_statements = 0\n" : '';
my $dir = PostgreSQL::Test::Utils::tempdir();
my $port = free_port();
my ($host, $pgport) = ($node->host, $node->port);
write_file("$dir/userlist.txt", qq("$me" ""\n"pool_worker" ""\n));
write_file("$dir/pgbouncer.ini", <<"EOF");
[databases]
txdb = host=$host port=$pgport dbname=postgres pool_mode=transaction
sessdb = host=$host port=$pgport dbname=postgres pool_mode=session
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = session
default_pool_size = 4
min_pool_size = 2
server_round_robin = 1
max_client_conn = 100
logfile = $dir/pgbouncer.log
$no_prepared
EOF
my $bouncer = start_process("$dir/pgbouncer.out", [ $pgbouncer, "$dir/pgbouncer.ini" ]);
ok(wait_until(10, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) }), 'pgbouncer listens');
my $tx = "host=127.0.0.1 port=$port dbname=txdb user=$me";
my $session = "host=127.0.0.1 port=$port dbname=sessdb user=$me";
my $direct = $node->connstr('postgres');

my $queue_toml = <<'EOF';
[queues.q]
handler = "exec"
command = ["sleep", "0.1"]
concurrency = 3
claim_batch = 3
EOF

sub count_done {
    my ($ids) = @_;
    return $node->safe_psql('postgres', "SELECT count(*) FROM jobq.jobs WHERE id IN ($ids) AND state = 'completed'");
}

sub enqueue_many {
    my ($n) = @_;
    return $node->safe_psql('postgres', "SELECT string_agg(jobq.enqueue('q', '{}')::text, ',') FROM generate_series(1, $n)");
}

# Two runners in transaction mode, one with a direct listen connection.
my $with_listen = start_runner($tx, <<"EOF" . $queue_toml, '--worker', 'with-listen');
[database]
pool_mode = "transaction"
listen_dsn = "$direct"
[runner]
poll_interval = "1s"
EOF
my $polling = start_runner($tx, <<"EOF" . $queue_toml, '--worker', 'polling');
[database]
pool_mode = "transaction"
[runner]
poll_interval = "200ms"
EOF
my $ids = enqueue_many(60);
ok(wait_until(90, sub { count_done($ids) == 60 }), 'transaction mode: every job completed');
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT worker, ',' ORDER BY worker) FROM jobq.jobs WHERE id IN ($ids)"),
   'polling,with-listen', 'both runners claimed jobs');
my @said = grep { /wake-ups off/ } read_lines($polling->{log});
is(scalar @said, 1, 'the runner without listen_dsn says once that it polls');
like($said[0] // '', qr/pool_mode is \\"transaction\\" and no listen_dsn is set; claims poll" poll_interval=200ms/, 'and why');
unlike(runner_log($with_listen), qr/wake-ups off|pooled per transaction/, 'the runner with listen_dsn does not');
unlike(runner_log($_), qr/claim failed|prepared statement/, 'no claim failed') for $with_listen, $polling;
is(stop_runner($_, 'TERM'), 0, 'a transaction-mode runner exits 0') for $with_listen, $polling;

# Wake-ups through listen_dsn: with polling off in practice, a job enqueued
# now is claimed within seconds.
my $woken = start_runner($tx, <<"EOF" . $queue_toml);
[database]
pool_mode = "transaction"
listen_dsn = "$direct"
[runner]
poll_interval = "10m"
EOF
sleep 1;
$ids = enqueue_many(1);
ok(wait_until(20, sub { count_done($ids) == 1 }), 'transaction mode with listen_dsn: a wake-up starts the job');
is(stop_runner($woken, 'TERM'), 0, 'and the runner exits 0');

# The default config (session) pointed at the transaction pool, whose server
# connections already hold a "jobq_claim" another client prepared (as a
# second runner would have): the runner's own PREPARE fails with 42P05.
for (1 .. 8) {
    $node->psql('postgres', 'PREPARE jobq_claim AS SELECT 1', connstr => $tx);
}
like($node->safe_psql('postgres', 'SELECT 1', connstr => $tx), qr/^1$/, 'the pool still answers');
my $unaware = start_runner($tx, <<"EOF" . $queue_toml);
[runner]
poll_interval = "200ms"
EOF
$ids = enqueue_many(30);
ok(wait_until(60, sub { count_done($ids) == 30 }), 'a session-mode config on a transaction pool still completes every job');
@said = grep { /pooled per transaction/ } read_lines($unaware->{log});
is(scalar @said, 1, 'and says once that the connection is pooled per transaction');
like($said[0] // '', qr/claims unprepared, wake-ups off, claims poll; set \[database\] pool_mode/, 'and what to set');
unlike(runner_log($unaware), qr/claim failed/, 'no claim failed on the way');
is(stop_runner($unaware, 'TERM'), 0, 'and exits 0');

# Session mode: prepared claims and LISTEN through the pool.
my $sess = start_runner($session, <<"EOF" . $queue_toml);
[runner]
poll_interval = "10m"
EOF
sleep 1;
$ids = enqueue_many(5);
ok(wait_until(30, sub { count_done($ids) == 5 }), 'session mode: jobs complete, woken through the pool');
unlike(runner_log($sess), qr/pooled per transaction|wake-ups off|claim failed/, 'without a warning');
is(stop_runner($sess, 'TERM'), 0, 'and the runner exits 0');

# Claims that keep failing turn /healthz unhealthy.
my $http = free_port();
my $failing = start_runner("host=127.0.0.1 port=$port dbname=txdb user=pool_worker", <<"EOF" . $queue_toml);
[database]
pool_mode = "transaction"
listen_dsn = "$direct user=pool_worker"
[http]
listen = "127.0.0.1:$http"
[runner]
poll_interval = "200ms"
EOF
ok(wait_until(20, sub { (http_get($http, '/healthz'))[0] == 200 }), '/healthz is 200 while claims work');
$node->safe_psql('postgres', 'REVOKE jobq_worker FROM pool_worker');
ok(wait_until(40, sub { (http_get($http, '/healthz'))[0] == 503 }), '/healthz turns 503 when claims keep failing');
like((http_get($http, '/healthz'))[1], qr/^claims failing: permission denied/, 'saying why');
$node->safe_psql('postgres', 'GRANT jobq_worker TO pool_worker');
ok(wait_until(30, sub { (http_get($http, '/healthz'))[0] == 200 }), 'and 200 again once a claim succeeds');
is(stop_runner($failing, 'TERM'), 0, 'the runner exits 0');

stop_process($bouncer, 'INT');
done_testing();
