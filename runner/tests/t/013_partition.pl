# Network partition (RELIABILITY.md test 7): the runner runs in a network
# namespace of its own (unshare -rn) and reaches the cluster only over TCP
# on that namespace's loopback, through a forwarder to the cluster's Unix
# socket. A blackhole qdisc on that loopback drops every packet: the runner
# is cut off without any error, as on a dead network, while the test (and
# the handlers' probes) still reach the database over the Unix socket.
#
# What a user relies on: running handlers are stopped at the runner's own
# lease deadline; a claim whose answer arrives after that deadline starts
# no handler and hands its jobs back at once (not after the lease); every
# handler that did start ran under a lease the database still held for it; after the partition is healed the runner recovers by
# itself and every job completes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../../../test/perl";
use lib "$FindBin::RealBin/../../../test/perl";
use JobqChaos ();    # check_server_log
use JobqTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

# Needs unprivileged user namespaces and tc; skip (not fail) without them.
my %tool;
for my $name (qw(unshare ip tc)) {
    ($tool{$name}) = grep { -x } map { "$_/$name" } split(/:/, $ENV{PATH} // ''), qw(/usr/sbin /sbin /usr/bin /bin);
    plan skip_all => "$name not found" unless $tool{$name};
}
my $probe_ns = `$tool{unshare} -rn sh -c '$tool{ip} link set lo up && $tool{tc} qdisc add dev lo root blackhole && echo ok' 2>&1`;
plan skip_all => "cannot create a network namespace with a blackhole qdisc (unshare -rn, tc): "
  . ((split /\n/, $probe_ns)[0] // 'no output')
  unless $probe_ns =~ /^ok$/m;

my $lease = 2;
my $node = setup_node('partition');
$node->append_conf('postgresql.conf', "jobq.rescue_interval = 200\n");
$node->restart;
create_queue($node, 'p', lease => "'$lease seconds'", max_attempts => 10);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $ledger = "$dir/ledger";
my ($sockdir, $port) = ($node->host, $node->port);
# Inside the namespace the OS user is root: name the cluster's superuser.
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

# The handler's ledger line at start: job, attempt, token, pid, start time,
# and what the database says about the job's lease right after (asked over
# the Unix socket, which the partition does not cut): the token holding it
# and its expiry. Payload {"hang": true}: the first attempt sleeps 60 s.
write_script("$dir/job.pl", <<"PL");
#!$^X
use strict;
use Time::HiRes qw(time sleep);
my \$start = time;
my (\$id, \$attempt, \$token) = \@ENV{qw(JOBQ_JOB_ID JOBQ_ATTEMPT JOBQ_LEASE_TOKEN)};
my \$probe = `psql -XAtq -h $sockdir -p $port -U $superuser -d postgres -c "SELECT lease_token, extract(epoch FROM lease_expires_at) FROM jobq.job WHERE id = \$id"`;
chomp \$probe;
my (\$held_by, \$expires) = split /\\|/, \$probe;
sub ledger { open my \$fh, '>>', '$ledger' or die; syswrite \$fh, "\@_\\n"; close \$fh }
ledger(sprintf 'S %d %d %d %d %.6f %s %s', \$id, \$attempt, \$token, \$\$, \$start, \$held_by || '-', \$expires || '-');
my \$job = do { local \$/; <STDIN> };
sleep(\$job =~ /"hang": true/ && \$attempt == 1 ? 60 : 0.1);
ledger(sprintf 'F %d %d %d %d %.6f', \$id, \$attempt, \$token, \$\$, time);
PL

sub starts { map { my @f = split / /; { id => $f[1], attempt => $f[2], token => $f[3], pid => $f[4],
                                        at => $f[5], held_by => $f[6], expires => $f[7] } }
             grep { /^S / } read_lines($ledger) }
sub finished { my ($id, $attempt) = @_; scalar grep { /^F $id $attempt / } read_lines($ledger) }
sub sql { $node->safe_psql('postgres', $_[0]) }
sub states { sql("SELECT string_agg(state || ':' || attempt, ',' ORDER BY id) FROM jobq.jobs WHERE id IN ("
                 . join(',', @_) . ")") }

# Unix time of a runner log line (ts=2026-11-30T01:50:13.281Z).
sub log_time {
    my ($y, $mo, $d, $h, $mi, $s) = $_[0] =~ /ts=(\d+)-(\d+)-(\d+)T(\d+):(\d+):([\d.]+)Z/ or return undef;
    return timegm(0, $mi, $h, $d, $mo - 1, $y) + $s;
}

my $events = "$dir/netns.events";
sub event_at {
    my ($what, $n) = @_;
    my @at = map { (split / /)[1] } grep { /^$what / } read_lines($events);
    return $at[ $n - 1 ];
}

my $config = "$dir/runner.toml";
write_file($config, <<"TOML");
[runner]
poll_interval = "500ms"
reconnect_min = "50ms"
reconnect_max = "500ms"
query_timeout = "60s"
[queues.p]
handler = "exec"
command = ["$dir/job.pl"]
timeout = "120s"
TOML
my $runner = { log => "$dir/runner.log" };
$runner->{pid} = start_process($runner->{log}, [
    $tool{unshare}, '-rn', $^X, "$FindBin::RealBin/../../../test/perl/netns_runner.pl",
    '--socket', "$sockdir/.s.PGSQL.$port", '--events', $events, '--forwarder-log', "$dir/forwarder.log",
    '--ip', $tool{ip}, '--tc', $tool{tc}, '--dsn', "dbname=postgres user=$superuser",
    '--', $ENV{JOBQ_RUNNER}, '--config', $config, '--verbose' ], group => 1);
ok(wait_until(20, sub { runner_log($runner) =~ /msg="connected to database" conn=work/ }),
   'the runner in its own network namespace connected over its loopback') or diag(runner_log($runner));

# 1. Jobs flow through the namespace.
my @quick = map { enqueue($node, 'p', qq({"n": $_})) } 1 .. 5;
ok(wait_until(20, sub { states(@quick) eq join(',', ('completed:1') x 5) }), 'jobs complete through the namespace')
  or diag(runner_log($runner));

# 2. Partition while two handlers run: each is stopped at its lease
#    deadline, before the database's lease expiry lets anyone else have it.
my @hang = map { enqueue($node, 'p', '{"hang": true}') } 1 .. 2;
my %is_hang = map { $_ => 1 } @hang;
ok(wait_until(20, sub { 2 == grep { $_->{attempt} == 1 && $is_hang{ $_->{id} } } starts() }),
   'two long handlers started');
my %pid = map { $_->{id} => $_->{pid} } grep { $_->{attempt} == 1 } starts();
sleep $lease + 0.5;
ok(2 == grep({ kill 0, $pid{$_} } @hang), "heartbeats keep them running past the $lease s lease");

kill 'USR1', $runner->{pid};
ok(wait_until(10, sub { event_at('partition', 1) }), 'partition: every packet on the runner\'s loopback dropped')
  or BAIL_OUT('tc failed: ' . join(' ', read_lines($events)));
my $cut = event_at('partition', 1);
sleep 0.3;    # a heartbeat already on its way when tc ran still lands
my %expires = map { split /\|/ } split /\n/,
  sql("SELECT id, extract(epoch FROM lease_expires_at) FROM jobq.job WHERE id IN (@{[join ',', @hang]})");
my %stopped;
wait_until(4 * $lease, sub {
    for my $id (@hang) { $stopped{$id} //= time unless kill 0, $pid{$id} }
    return keys(%stopped) == 2;
});
is(scalar(keys %stopped), 2, 'with the database unreachable, both handlers were stopped')
  or diag(runner_log($runner));
# When the runner killed each handler, by its own log line.
my %fenced = map { /job=(\d+)/; ($1 => log_time($_)) } grep { /handler stopped \(fenced\)/ } split /\n/, runner_log($runner);
for my $id (@hang) {
    # The handler must be gone before the job can run anywhere else: after
    # the database's lease expiry, the rescue, the retry backoff and a claim.
    # The runner's deadline is never later than that expiry; allow for
    # scheduling on a loaded machine.
    ok($fenced{$id} && $fenced{$id} <= $expires{$id} + 1.0, sprintf
       'job %d: stopped by the runner %.2f s after the cut, %+.3f s from the database\'s lease expiry',
       $id, ($fenced{$id} // 0) - $cut, ($fenced{$id} // 0) - $expires{$id});
}
ok(wait_until(10, sub { states(@hang) !~ /running/ }), 'the database rescued both jobs meanwhile');
ok(runner_alive($runner), 'the runner keeps running through the partition');

kill 'USR2', $runner->{pid};
ok(wait_until(10, sub { event_at('heal', 1) }), 'partition healed');
my $healed = event_at('heal', 1);
# Usually on attempt 2; attempt 3 when a claim stuck in the blackhole got
# through after the heal, took the rescued jobs and, past its deadline,
# started none of them (as in part 3).
ok(wait_until(30, sub { states(@hang) =~ /^completed:\d+,completed:\d+$/ }),
   'after the heal the runner recovers by itself and the rescued jobs complete')
  or diag(runner_log($runner));
my $recovered = time - $healed;
my $hang_states = states(@hang);
is(scalar(grep { finished($_, 1) } @hang), 0, 'the stopped attempts never finished');

# 3. Partition while the runner is idle: its next poll's claim is stuck in
#    the blackhole, and jobs enqueued meanwhile are claimed only when the
#    claim gets through after the heal, past the lease deadline the runner
#    counts from when it sent the claim: it must start none of them, and
#    release them at once (the database's lease, counted from when the
#    claim ran there, still holds, so the release is applied). (The
#    cut can, rarely, fall between a claim reaching the database and its
#    answer coming back; that claim finds nothing, the jobs are claimed
#    fresh after the heal, and the round is repeated.)
my (@late, $refused, $refused_at, $round_cut, $round_heal);
for my $round (1 .. 3) {
    sleep 1;    # idle: polling
    kill 'USR1', $runner->{pid};
    wait_until(10, sub { event_at('partition', $round + 1) }) or BAIL_OUT('tc failed');
    $round_cut = event_at('partition', $round + 1);
    sleep 1;    # two poll intervals: a claim is now stuck
    @late = map { enqueue($node, 'p', qq({"late": $_})) } 1 .. 3;
    sleep $lease + 1.5;
    kill 'USR2', $runner->{pid};
    wait_until(10, sub { event_at('heal', $round + 1) }) or BAIL_OUT('tc failed');
    $round_heal = event_at('heal', $round + 1);
    wait_until(30, sub { states(@late) =~ /^(completed:\d,){2}completed:\d$/ })
      or diag(runner_log($runner));
    my %late = map { $_ => 1 } @late;
    my @lines = grep { /not started/ && /job=(\d+)/ && $late{$1} } split /\n/, runner_log($runner);
    $refused = @lines;
    if ($refused) {
        $refused_at = log_time($lines[0]);
        last;
    }
    diag("round $round: the cut fell inside a claim's round trip; again");
}
is($refused, 3, 'the claim answered after the lease deadline started no handler (3 jobs, logged "not started")');
my %is_late = map { $_ => 1 } @late;
my %late_starts;
$late_starts{ $_->{id} }++ for grep { $is_late{ $_->{id} } } starts();
is(join(',', map { $late_starts{$_} // 0 } @late), '1,1,1', 'each ran once: the late claim started none of them');
my %late = map { $_ => 1 } @late;
my @released = grep { /msg="job released"/ && /job=(\d+)/ && $late{$1} } split /\n/, runner_log($runner);
is(scalar(@released), 3, 'the late claim released its 3 jobs');
is(states(@late), 'completed:1,completed:1,completed:1',
   'they were claimed again and completed on attempt 1 (the release gave the attempt back)');

# Across the whole test: every handler started while its lease was held,
# by its own token, in the database.
my @all = starts();
my @bad = grep { $_->{held_by} ne $_->{token} || $_->{expires} eq '-' || $_->{at} >= $_->{expires} } @all;
is(scalar(@bad), 0, sprintf 'all %d handler starts happened under a lease the database held for them', scalar @all)
  or diag(explain \@bad);
is(sql("SELECT count(*) FROM jobq.jobs WHERE queue = 'p' AND state <> 'completed'"), 0, 'every job completed');

diag(sprintf 'figures: lease %d s; handlers stopped %s s after the cut (%s s from the database\'s expiry); '
     . 'heal -> rescued jobs completed %.2f s (%s); late claim: partition %.2f s, answered %.2f s after the heal, 3 jobs not started but released; '
     . '%d handler starts, all under a held lease',
     $lease, join('/', map { sprintf '%.2f', ($fenced{$_} // 0) - $cut } @hang),
     join('/', map { sprintf '%+.3f', ($fenced{$_} // 0) - $expires{$_} } @hang),
     $recovered, $hang_states, $round_heal - $round_cut, ($refused_at // $round_heal) - $round_heal, scalar @all);

is(stop_process($runner->{pid}, 'TERM', 20), 0, 'runner exits 0');
JobqChaos::check_server_log($node);
done_testing();
