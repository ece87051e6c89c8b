# Retention: the worker deletes completed and cancelled jobs older than
# their queue's retention from the archive, in small batches, oldest first;
# dead jobs stay until an operator retries or deletes them; queues with a
# long retention keep their history.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker_retention');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.prune_interval = '300ms'
jobq.prune_batch_size = 100
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION jobq;
    SELECT jobq.create_queue('short', retention => '2 seconds', max_attempts => 1);
    SELECT jobq.create_queue('long', retention => '7 days');
    SELECT jobq.pause('short');
    SELECT jobq.pause('long');
    SELECT count(*) FROM jobq.enqueue_many('short', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 2000) g));
    SELECT count(*) FROM jobq.enqueue_many('long', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 50) g));
    SELECT jobq.resume('short');
    SELECT jobq.resume('long');
});
# Finish them: most complete, 10 die, 10 are cancelled.
$node->safe_psql('postgres', q{
    WITH c AS (SELECT * FROM jobq.claim('{short,long}', 'w', 10000))
    SELECT count(*) FROM jobq.complete(
        ARRAY(SELECT id FROM c WHERE payload ->> 'n' NOT IN (SELECT g::text FROM generate_series(1, 20) g) OR queue = 'long' ORDER BY id),
        ARRAY(SELECT lease_token FROM c WHERE payload ->> 'n' NOT IN (SELECT g::text FROM generate_series(1, 20) g) OR queue = 'long' ORDER BY id));
});
$node->safe_psql('postgres', q{
    SELECT jobq.fail(id, lease_token, 'poison') FROM jobq.job
    WHERE queue = 'short' AND (payload ->> 'n')::int <= 10;
    SELECT jobq.cancel(id) FROM jobq.job WHERE queue = 'short' AND (payload ->> 'n')::int BETWEEN 11 AND 20;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.archive}), '2050', 'all jobs finished');

ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 0 FROM jobq.archive WHERE queue = 'short' AND state <> 'dead'}),
    'completed and cancelled jobs past retention are pruned');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.archive WHERE queue = 'short' AND state = 'dead'}),
    '10', 'dead jobs are kept');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.archive WHERE queue = 'long'}), '50',
    'jobs within retention are kept');
cmp_ok($node->safe_psql('postgres', 'SELECT jobs_pruned FROM jobq.worker_status()'), '==', 1990,
    'the worker counted what it pruned (in batches of 100)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.job}), '0', 'the hot table holds no finished job');

$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
    'no crash restart in the server log');
done_testing();
