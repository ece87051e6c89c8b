# pg_upgrade of a cluster using jobq: `pg_upgrade --check`, then the real
# upgrade, keep every queue, job (in every state, lease tokens included)
# and schedule; afterwards the worker runs, jobs complete, the schedule
# fires and the in-database handler runs.
#
# Both clusters use the PostgreSQL on PATH (15 -> 15). JOBQ_OLD_BINDIR names
# the old server's binaries for a cross-version upgrade, when a build of jobq
# for that version is installed there too.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JobqLifecycle;

my $new_bindir = `pg_config --bindir`;
chomp $new_bindir;
my $old_bindir = $ENV{JOBQ_OLD_BINDIR} // $new_bindir;
my $conf = q{
shared_preload_libraries = 'jobq'
jobq.naptime = '200ms'
jobq.rescue_interval = '200ms'
};

my $old = PostgreSQL::Test::Cluster->new('old',
    $ENV{JOBQ_OLD_BINDIR} ? (install_path => dirname($old_bindir)) : ());
# Data checksums on both sides: PostgreSQL 18's initdb turns them on by
# default, and pg_upgrade needs both clusters alike.
$old->init(extra => ['--data-checksums']);
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE app');
$old->safe_psql('app', 'CREATE EXTENSION jobq');
my $filled = fill_jobq($old, 'app');
# A database without jobq.
$old->safe_psql('postgres', 'CREATE DATABASE plain');
ok($old->poll_query_until('app', q{SELECT count(*) > 0 FROM jobq.job WHERE queue = 'ticks'}),
    'the schedule fires before the upgrade');

# Snapshots with the worker kept away from app (it would add ticks jobs).
$old->append_conf('postgresql.conf', "jobq.database_names = 'postgres'\n");
$old->restart;
my $queues = queues_snapshot($old, 'app');
my $schedules = schedules_snapshot($old, 'app');
my $jobs = jobs_snapshot($old, 'app');
my $ticks = $old->safe_psql('app', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM jobq.job WHERE queue = 'ticks'});
my $sequences_sql = q{
    SELECT last_value || '|' || is_called FROM jobq.job_id_seq UNION ALL
    SELECT last_value || '|' || is_called FROM jobq.lease_token_seq};
my $sequences = $old->safe_psql('app', $sequences_sql);
$old->stop('fast');

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init(extra => ['--data-checksums']);
$new->append_conf('postgresql.conf', $conf);

my @upgrade = ('pg_upgrade', '--no-sync', '-d', $old->data_dir, '-D', $new->data_dir,
    '-b', $old_bindir, '-B', $new_bindir, '-s', $new->host, '-p', $old->port, '-P', $new->port);
my ($stdout, $stderr);
my $checked = IPC::Run::run([ @upgrade, '--check' ], '>', \$stdout, '2>', \$stderr);
ok($checked, 'pg_upgrade --check passes');
# PostgreSQL 15's pg_upgrade checks reg* columns on a line of their own, 17's
# among its "data type usage" checks.
like($stdout, qr/Checking (for reg\* data types in user tables|data type usage)\s+ok/,
    'no reg* columns in user tables');
diag("pg_upgrade --check:\n$stdout$stderr") unless $checked;
my $upgraded = IPC::Run::run([ @upgrade, '--retain' ], '>', \$stdout, '2>', \$stderr);
ok($upgraded, 'pg_upgrade succeeds');
diag("pg_upgrade:\n$stdout$stderr") unless $upgraded;
BAIL_OUT('pg_upgrade failed') unless $upgraded;
# In binary-upgrade mode jobq loads (shared_preload_libraries) but _PG_init
# returns at once: no launcher, no worker touching the databases.
my @server_logs = glob($new->data_dir . '/pg_upgrade_output.d/*/log/pg_upgrade_server.log');
ok(@server_logs, 'pg_upgrade kept its server log');
my $upgrade_log = join '', map { slurp_file($_) } @server_logs;
like($upgrade_log, qr/database system is ready/, 'the servers pg_upgrade ran are in that log');
unlike($upgrade_log, qr/jobq (launcher|worker) started/, 'no jobq worker ran during pg_upgrade');

# First look with the worker kept away, as in the old cluster's snapshots.
$new->append_conf('postgresql.conf', "jobq.database_names = 'postgres'\n");
$new->start;
is(queues_snapshot($new, 'app'), $queues, 'queues and their settings kept');
is(schedules_snapshot($new, 'app'), $schedules, 'schedules kept');
is($new->safe_psql('app', $sequences_sql), $sequences, 'job id and lease token sequences kept');
is(jobs_snapshot($new, 'app'), $jobs, 'every job kept, lease tokens included');
like($new->safe_psql('app', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM jobq.job WHERE queue = 'ticks'}),
    qr/^\Q$ticks\E$/, 'the schedule\'s jobs kept');
is($new->safe_psql('plain', q{SELECT count(*) FROM pg_extension WHERE extname = 'jobq'}), '0',
    'the database without jobq stays without it');

$new->append_conf('postgresql.conf', "jobq.database_names = ''\n");
$new->restart;
check_runs_on($new, 'app', 'after pg_upgrade', $filled);

$new->stop;
for my $node ($old, $new) {
    unlike(slurp_file($node->logfile), qr/terminated by signal|terminating any other active server processes/,
        $node->name . ': no crash in the server log');
}
done_testing();
