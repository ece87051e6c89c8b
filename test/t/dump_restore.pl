# pg_dump + restore of a database using jobq keeps queues, live and finished
# jobs, and the id and lease-token sequences (new ids do not collide).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'jobq'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
    CREATE EXTENSION jobq;
    SELECT jobq.create_queue('mail', max_attempts => 4, lease => '10 minutes', concurrency => 3);
    SELECT jobq.create_queue('paused_q');
    SELECT jobq.pause('paused_q');
    SELECT jobq.enqueue('mail', jsonb_build_object('n', g)) FROM generate_series(1, 5) g;
    SELECT jobq.enqueue('mail', '{"later": true}', run_at => now() + interval '1 day', unique_key => 'u1');
    SELECT jobq.enqueue('paused_q', '{}');
});
# one completed, one running, one dead
$node->safe_psql('src', q{
    WITH c AS (SELECT * FROM jobq.claim('{mail}', 'dump-test', 3))
    SELECT jobq.complete(ARRAY[(SELECT min(id) FROM c)], ARRAY[(SELECT min(lease_token) FROM c)]),
           jobq.fail((SELECT max(id) FROM c), (SELECT max(lease_token) FROM c), 'broken', discard => true);
});

my $summary = q{
    SELECT string_agg(format('%s|%s|%s|%s|%s', id, queue, state, attempt, payload), ',' ORDER BY id)
    FROM jobq.jobs};
my $queues = q{
    SELECT string_agg(format('%s|%s|%s|%s|%s', name, max_attempts, lease, concurrency, paused), ',' ORDER BY name)
    FROM jobq.queues};
my $before_jobs = $node->safe_psql('src', $summary);
my $before_queues = $node->safe_psql('src', $queues);

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
    'pg_restore succeeds');

is($node->safe_psql('dst', $queues), $before_queues, 'queues and their options restored');
is($node->safe_psql('dst', $summary), $before_jobs, 'live and finished jobs restored');
is($node->safe_psql('dst', q{SELECT count(*) FROM jobq.job WHERE state = 'running' AND lease_token IS NOT NULL}),
    '1', 'running job keeps its lease token');

my $max_id = $node->safe_psql('dst', 'SELECT max(id) FROM jobq.jobs');
my $new_id = $node->safe_psql('dst', q{SELECT jobq.enqueue('mail', '{"after": "restore"}')});
cmp_ok($new_id, '>', $max_id, 'new ids continue after the restored ones');
is($node->safe_psql('dst', q{SELECT jobq.enqueue('mail', '{}', unique_key => 'u1') =
                                    (SELECT id FROM jobq.jobs WHERE unique_key = 'u1')}),
    't', 'unique keys still deduplicate after restore');
my $claimed = $node->safe_psql('dst', q{SELECT count(*) FROM jobq.claim('{mail}', 'after', 10)});
cmp_ok($claimed, '>=', 1, 'restored jobs can be claimed');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash in the server log');
done_testing();
