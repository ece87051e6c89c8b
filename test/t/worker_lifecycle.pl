# Background worker lifecycle: the launcher starts a worker within seconds
# of CREATE EXTENSION and it leaves after DROP EXTENSION; settings reload on
# SIGHUP; pg_terminate_backend of the worker restarts it and loses nothing;
# DROP DATABASE is not blocked by the worker; without
# shared_preload_libraries the SQL API works and the status says so; the
# server never goes through a crash restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker_lifecycle');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.worker_restart_delay = '200ms'
jobq.rescue_interval = '300ms'
jobq.naptime = '300ms'
jobq.launcher_naptime = '2s'
});
$node->start;

sub worker_pid {
    my ($db) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT coalesce(max(pid), 0) FROM pg_stat_activity
        WHERE backend_type = 'jobq worker' AND datname = '$db'});
}

ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq launcher'}),
    'launcher runs');

$node->safe_psql('postgres', 'CREATE DATABASE app');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'app'}),
    'no worker stays in a database without the extension');

my $t0 = time;
$node->safe_psql('app', 'CREATE EXTENSION jobq');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity
      WHERE backend_type = 'jobq worker' AND datname = 'app' AND application_name = 'jobq worker'}),
    'worker appears after CREATE EXTENSION');
my $startup = time - $t0;
cmp_ok($startup, '<', 5, 'worker started within seconds');
note sprintf('CREATE EXTENSION -> worker running: %.0f ms', $startup * 1000);
is($node->safe_psql('app', 'SELECT running, status FROM jobq.worker_status()'), "t|running",
    'worker_status reports running');

# SIGHUP: a new rescue interval reaches the running worker, same process.
my $pid = worker_pid('app');
$node->safe_psql('postgres', q{ALTER SYSTEM SET jobq.rescue_interval = '700ms'});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('app', 'SELECT rescue_interval_ms = 700 FROM jobq.worker_status()'),
    'SIGHUP reload reaches the worker');
is(worker_pid('app'), $pid, 'reload does not restart the worker');

# pg_terminate_backend: restarted by the launcher; jobs are kept, and the
# new worker rescues the expired leases.
$node->safe_psql('app', q{
    SELECT jobq.create_queue('work', backoff_base => '100ms', backoff_max => '200ms');
    SELECT jobq.enqueue('work', jsonb_build_object('n', g)) FROM generate_series(1, 20) g;
    SELECT count(*) FROM jobq.claim('{work}', 'doomed-runner', 5, lease => '1 second');
});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', qq{
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE backend_type = 'jobq worker' AND datname = 'app' AND pid <> $pid}),
    'terminated worker is restarted');
ok($node->poll_query_until('app', q{SELECT count(*) = 0 FROM jobq.job WHERE state = 'running'}),
    'the restarted worker rescues expired leases');
is($node->safe_psql('app', q{SELECT count(*), count(*) FILTER (WHERE attempt = 1 AND errors IS NOT NULL)
                              FROM jobq.job WHERE queue = 'work'}),
    '20|5', 'nothing lost: all 20 jobs kept, the 5 claimed ones rescued with their attempt counted');

# DROP EXTENSION: the worker leaves; CREATE EXTENSION brings it back.
$node->safe_psql('app', 'DROP EXTENSION jobq');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type LIKE 'jobq %' AND datname = 'app'}),
    'worker leaves after DROP EXTENSION');
$node->safe_psql('app', 'CREATE EXTENSION jobq');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'app'}),
    'worker is back after CREATE EXTENSION');

# DROP DATABASE while its worker runs (and ALTER DATABASE RENAME).
my $launcher = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'jobq launcher'});
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', q{CREATE EXTENSION jobq; SELECT jobq.create_queue('q');
                            SELECT jobq.enqueue('q', '{}')});
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'doomed'}),
    'worker runs in the database to drop');
my ($rc, $out, $err) = $node->psql('postgres', 'ALTER DATABASE doomed RENAME TO doomed2');
is($rc, 0, 'ALTER DATABASE RENAME succeeds while a worker ran there') or diag $err;
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'doomed2'}),
    'worker comes back under the new name');
$t0 = time;
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE doomed2');
is($rc, 0, 'DROP DATABASE succeeds while its worker runs') or diag $err;
note sprintf('DROP DATABASE took %.0f ms', (time - $t0) * 1000);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'doomed2'}), '0',
    'database is gone');
sleep 1;
is($node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'jobq launcher'}), $launcher,
    'launcher unaffected');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'app'}),
    'worker of the other database still runs');

# jobq.database_names restricts the served databases.
$node->safe_psql('postgres', q{ALTER SYSTEM SET jobq.database_names = 'postgres'});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'app'}),
    'worker leaves a database not listed in jobq.database_names');
like($node->safe_psql('app', 'SELECT status FROM jobq.worker_status()'), qr/not running/,
    'status explains the worker is not running');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET jobq.database_names});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker' AND datname = 'app'}),
    'worker returns when the setting is reset');

# SIGTERM (fast shutdown) is prompt.
$t0 = time;
$node->stop('fast');
my $stop = time - $t0;
cmp_ok($stop, '<', 10, 'fast shutdown is prompt');
note sprintf('fast shutdown took %.0f ms', $stop * 1000);

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash restart in the server log');

# Without shared_preload_libraries: SQL API works, status says why.
my $plain = PostgreSQL::Test::Cluster->new('worker_not_preloaded');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION jobq');
is($plain->safe_psql('postgres', q{SELECT running, status FROM jobq.worker_status()}),
    'f|not running: jobq is not in shared_preload_libraries', 'status without preload');
$plain->safe_psql('postgres', q{SELECT jobq.create_queue('q')});
$plain->safe_psql('postgres', q{SELECT jobq.enqueue('q', '{}')});
is($plain->safe_psql('postgres', q{SELECT count(*) FROM jobq.claim('{q}', 'w', 10)}), '1',
    'enqueue and claim work without the worker');
$plain->stop;

done_testing();
