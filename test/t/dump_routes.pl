# Every dump route restores a database using jobq cleanly: plain pg_restore,
# pg_restore -j 2, pg_restore --single-transaction and psql < dump.sql.
#
# The source database has due schedules (its worker is kept away, so their
# ticks stay due), jobs in every state, a running job with a lease, an
# in-database handler queue, and a large table that makes the restore slow.
# During the restore the target's worker starts (CREATE EXTENSION jobq pokes
# the launcher) but must not act: before the restore guard, it fired the
# restored schedules before the dump's setval of the job id sequence and
# enqueued jobs under ids the restore brought in again. Checked per route:
# no duplicate ids, every job restored exactly, no job created before the
# restore ended, the worker said it waited, and afterwards the schedules
# fire and the jobs run on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use JobqLifecycle;

my %routes = (
    plain => [ 'pg_restore', '--exit-on-error' ],
    parallel => [ 'pg_restore', '--exit-on-error', '-j', '2' ],
    single => [ 'pg_restore', '--exit-on-error', '--single-transaction' ],
    script => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1' ],    # reads the SQL dump on stdin
);
my @order = qw(plain parallel single script);

my $node = PostgreSQL::Test::Cluster->new('dump_routes');
$node->init;
# The source database is not served, so its schedules stay due.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'jobq'
jobq.naptime = '100ms'
jobq.rescue_interval = '100ms'
jobq.database_names = 'postgres,@{[ join ',', map { "route_$_" } @order ]}'
max_worker_processes = 32
max_parallel_workers = 0
});
$node->start;

my $rows = $ENV{JOBQ_DUMP_ROWS} // 500000;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION jobq');
my $filled = fill_jobq($node, 'src');
$node->safe_psql('src', qq{
    CREATE TABLE public.big AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, $rows) g;
    CREATE INDEX big_id_idx ON public.big (id);
});
ok($node->poll_query_until('src', q{SELECT bool_and(next_tick < now()) FROM jobq.periodic}),
    'the source\'s schedule is due');
my $jobs = jobs_snapshot($node, 'src');
my $queues = queues_snapshot($node, 'src');
my $schedules = schedules_snapshot($node, 'src');
my $max_src_id = $node->safe_psql('src',
    q{SELECT max(id) FROM (SELECT id FROM jobq.job UNION ALL SELECT id FROM jobq.archive) a});

my $dump = $node->basedir . '/src.dump';
my $script = $node->basedir . '/src.sql';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump -Fc');
$node->command_ok([ 'pg_dump', '-Fp', '-f', $script, '-d', $node->connstr('src') ], 'pg_dump -Fp');

for my $route (@order) {
    my $db = "route_$route";
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    my @cmd = (@{ $routes{$route} }, '-d', $node->connstr($db));
    my $t0 = time;
    my ($out, $err);
    my $ok = $route eq 'script'
      ? IPC::Run::run(\@cmd, '<', $script, '>', \$out, '2>', \$err)
      : IPC::Run::run([ @cmd, $dump ], '>', \$out, '2>', \$err);
    # Taken at once (the server runs on this machine's clock): a connection
    # to ask the server could come after the worker's first job.
    my $restore_end = time;
    ok($ok, "$route: the restore succeeds");
    diag("$route: $err") unless $ok;
    note sprintf('%s: restore took %.1f s', $route, $restore_end - $t0);

    # Right after the restore, before anything runs on.
    is(duplicate_ids($node, $db), '', "$route: no job id is used twice");
    is(jobs_snapshot($node, $db), $jobs, "$route: every job restored as it was, lease tokens included");
    is(queues_snapshot($node, $db), $queues, "$route: queues restored");
    is(schedules_snapshot($node, $db), $schedules, "$route: schedules restored");
    is($node->safe_psql($db, qq{SELECT count(*) FROM jobq.job WHERE queue = 'ticks'
                                    AND extract(epoch FROM created_at) < $restore_end}),
        '0', "$route: no job was created while the restore ran");
    is($node->safe_psql($db, 'SELECT count(*) FROM public.big'), $rows, "$route: the large table restored");

    check_runs_on($node, $db, $route, $filled);
    cmp_ok($node->safe_psql($db, q{SELECT min(id) FROM jobq.job WHERE queue = 'ticks'}), '>', $max_src_id,
        "$route: the schedule's jobs take new ids");
    is($node->safe_psql($db, 'SELECT count(*) FROM jobq._restore_session'), '0',
        "$route: the restore guard is cleared");
}

# The routes that restore over more than one transaction: the worker
# started during the restore and said it waited.
my $log = slurp_file($node->logfile);
for my $route (qw(plain parallel script)) {
    like($log, qr/jobq worker waits for the restore of database "route_$route" to end/,
        "$route: the worker waited for the restore");
}
# A database created the ordinary way is not guarded.
$node->safe_psql('postgres', 'CREATE DATABASE postgres_app');
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');
is($node->safe_psql('postgres', 'SELECT count(*) FROM jobq._restore_session'), '0',
    'CREATE EXTENSION outside a restore records no restore session');
unlike($log, qr/waits for the restore of database "postgres"/, 'and its worker does not wait');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|terminating any other active server processes/,
    'no crash in the server log');
done_testing();
