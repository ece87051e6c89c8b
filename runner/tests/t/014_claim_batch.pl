# claim_batch caps the jobs one claim takes: a backlog larger than the cap
# is claimed in steps, one claim after the other, until the queue's
# concurrency is used or the backlog is gone (while the first steps'
# completions are being settled on the settle connection).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = setup_node('claim_batch');
create_queue($node, 'steps');
my $runner = start_runner($node, <<'TOML', '--verbose');
[runner]
poll_interval = "60s"
[queues.steps]
handler = "noop"
concurrency = 100
claim_batch = 4
TOML
sleep 0.5;    # the first claim (at connect) has found the queue empty

$node->safe_psql('postgres',
    "SELECT count(*) FROM jobq.enqueue_many('steps', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 40) g))");
ok(wait_until(20, sub {
    $node->safe_psql('postgres', "SELECT count(*) FROM jobq.archive WHERE queue = 'steps' AND state = 'completed'") == 40
}), 'all 40 jobs completed, with polling set to a minute') or diag(runner_log($runner));

# One claim is one transaction: its jobs share attempted_at (now()).
my ($claims, $largest) = split /\|/, $node->safe_psql('postgres',
    "SELECT count(*), max(n) FROM (SELECT count(*) AS n FROM jobq.archive WHERE queue = 'steps' GROUP BY attempted_at) c");
cmp_ok($largest, '<=', 4, "no claim took more than claim_batch jobs (largest $largest)");
cmp_ok($claims, '>=', 10, "the 40 jobs took at least 10 claims ($claims)");
my @sizes = runner_log($runner) =~ /msg=claimed jobs=(\d+)/g;
ok(@sizes >= 10 && !grep({ $_ > 4 } @sizes), 'the runner logged its claims, none of more than 4 jobs');

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
