# Wake-ups are pushed: with the poll fallback set to a minute, committed
# jobs and scheduled jobs coming due still start within moments, through
# the background worker's notifications on jobq_wakeup.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = setup_node('wakeup');
create_queue($node, 'w');
my $runner = start_runner($node, <<'TOML');
[runner]
poll_interval = "60s"
[queues.w]
handler = "noop"
TOML
sleep 0.5;    # the first claim (at connect) has found the queue empty

my $worst = 0;
for my $i (1 .. 5) {
    my $id = enqueue($node, 'w');
    my $t0 = time;
    ok(wait_until(5, sub { job_row($node, $id, 'state') eq 'completed' }), "job $i completed without polling");
    $worst = time - $t0 if time - $t0 > $worst;
    sleep 0.2;
}
cmp_ok($worst, '<', 2, sprintf('each within moments of its commit (worst %.3f s, poll interval 60 s)', $worst));

my $scheduled = $node->safe_psql('postgres', "SELECT jobq.enqueue('w', '{}', run_at => now() + interval '1 second')");
my $t0 = time;
ok(wait_until(10, sub { job_row($node, $scheduled, 'state') eq 'completed' }), 'a scheduled job ran when it came due');
cmp_ok(time - $t0, '<', 4, sprintf('about a second after enqueue (%.2f s)', time - $t0));

is(stop_runner($runner, 'TERM'), 0, 'runner exits 0');
done_testing();
