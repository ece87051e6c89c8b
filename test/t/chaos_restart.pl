# Chaos 14: database restarts and backend kills under a steady load.
#
# Three runners (exec handler writing the ledger, 200 ms per job, 4 at a
# time each) drain a backlog that the test keeps topped up, so the runners
# are the bottleneck and completions/s measure what they achieve; a
# producer enqueues meanwhile, so enqueues are in flight at every fault.
# The test cycles through four faults: pg_ctl restart (fast),
# pg_terminate_backend of every runner connection, an immediate stop +
# start, and kill -9 of one runner backend (a crash restart). Before each
# one it measures completions/s over a window (the baseline); after it, it
# waits until completions move again, lets the runners settle for a second
# and measures a window of the same length.
#
# Asserted (correctness): nothing lost, nothing unexpected, every extra run
# explained by a fault, nothing left unfinished; every runner reconnected
# by itself after every fault, is still running and kept its log logfmt;
# the first reconnect delays are not all the same (jitter). Reported:
# throughput after each recovery / the baseline before it (target >= 0.95;
# not asserted), time until completions resume, reconnect times and the
# spread of the backoff delays.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);

my $faults = chaos_param(short => 4, long => 16);
my $window = chaos_param(short => 2, long => 8);    # seconds per throughput window
my $lease = 2;
# 200 ms per job: the runners' slots, not the CPU (Perl starts per job),
# limit throughput, so windows on a busy machine stay comparable.
my $sleep_ms = 200;
my ($n_runners, $conc) = (3, 4);

my $node = chaos_node('restart', 'restart_after_crash = on');
chaos_queue($node, 'rq', lease => "'$lease seconds'", max_attempts => 25);
my $dir = chaos_dir();
my $ledger = "$dir/ledger";
# reconnect_min 100ms: each first retry waits 50-100 ms (equal jitter),
# doubling up to 2 s. --verbose logs every failed attempt with its delay.
my $toml = chaos_runner_toml(ledger => $ledger, queue => 'rq', concurrency => $conc, reconnect_max => '2s',
    query_timeout => '5s');
$toml =~ s/reconnect_min = "50ms"/reconnect_min = "100ms"/ or die 'runner toml changed';
my @runners = map { start_runner($node, $toml, dir => $dir, wait => 10, args => ['--verbose']) } 1 .. $n_runners;

# The backlog is enqueued by the test itself; its jobs are logged like a
# producer's (A on acknowledgement, U when the outcome is unknown).
my $topup_log = "$dir/produced-topup.log";
my $topup_seq = 0;
sub topup {
    my ($n) = @_;
    return if $n <= 0;
    my ($from, $to) = ($topup_seq + 1, $topup_seq + $n);
    $topup_seq = $to;
    my ($rc, $out) = try_psql($node, "SELECT jobq.enqueue('rq', jsonb_build_object('tag', 'top-' || g, "
        . "'sleep_ms', $sleep_ms)), 'top-' || g FROM generate_series($from, $to) g");
    my %ids = map { /^(\d+)\|(\S+)$/ ? ($2 => $1) : () } split /\n/, $out;
    open my $fh, '>>', $topup_log or die;
    for my $g ($from .. $to) {
        my $tag = "top-$g";
        printf $fh ($rc == 0 && $ids{$tag} ? "A %s %d %.6f %.6f\n" : "U %s %.6f %.6f topup_failed\n"),
            $tag, ($rc == 0 && $ids{$tag} ? ($ids{$tag}) : ()), mono(), time;
    }
    close $fh;
}
sub waiting { try_psql($node, "SELECT count(*) FROM jobq.job WHERE state <> 'running'") // 0 }
sub completed { try_psql($node, "SELECT count(*) FROM jobq.archive WHERE state = 'completed'") // -1 }

# Completions per second over $window seconds.
# Completions per second over $window seconds; the window's wall-clock
# span is kept in @spans.
my @spans;
sub measure {
    my $c0 = completed();
    my $t0 = time;
    sleep $window;
    my $c1 = completed();
    push @spans, [ $t0, time ];
    return ($c0 < 0 || $c1 < 0) ? 0 : ($c1 - $c0) / (time - $t0);
}

topup(400);
my $producer = start_producer($node, dir => $dir, prefix => 'pr', queue => 'rq', batch => 5, pause_ms => 200,
    extra => "\"sleep_ms\":$sleep_ms");
ok(chaos_wait(30, sub { completed() >= 2 * $n_runners * $conc }), 'jobs flow before the first fault');
sleep 1;

# Each fault gets its own baseline: the window just before it. The
# machine's load drifts (other work shares it), so the ratio of adjacent
# windows says more than a ratio to one window minutes earlier.
my @kinds = ('restart-fast', 'backends-terminated', 'restart-immediate', 'backend-kill9');
my (@fault_at, @recover, @ratios, @pre, @post, @win, @killed_pids);
my %kind_count;
my $target = sub { int(($_[0] > 0 ? $_[0] : 40) * (2 * $window + 3)) };
for my $i (0 .. $faults - 1) {
    my $kind = $kinds[ $i % @kinds ];
    # Enough waiting for this window, the fault, its recovery and the next
    # window, and no more: what is left at the end must drain quickly.
    topup($target->(@pre ? $pre[-1] : 0) - waiting());
    my $base = measure();
    my $pre_span = $spans[-1];
    my $before = completed();
    my $t = time;
    if ($kind eq 'restart-fast') {
        ledger_event($ledger, 'X', $kind);
        $node->restart;    # pg_ctl restart: fast mode
    } elsif ($kind eq 'restart-immediate') {
        ledger_event($ledger, 'X', $kind);
        $node->stop('immediate');
        $node->start;
    } elsif ($kind eq 'backends-terminated') {
        ledger_event($ledger, 'X', $kind);
        try_psql($node, q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE application_name = 'jobq-runner'});
    } else {
        my $pid = try_psql($node, q{SELECT pid FROM pg_stat_activity WHERE application_name = 'jobq-runner'
                                    ORDER BY (state = 'active') DESC, random() LIMIT 1});
        next unless $pid;
        ledger_event($ledger, 'X', $kind);
        kill 'KILL', $pid;
        push @killed_pids, $pid;
        chaos_wait(30, sub { defined try_psql($node, 'SELECT 1') }, 0.1);
    }
    $kind_count{$kind}++;
    push @fault_at, $t;
    my $back = chaos_wait(60, sub { completed() > $before }, 0.05);
    push @recover, $back ? time - $t : 999;
    sleep 1;
    my $rate = measure();
    push @pre, $base;
    push @post, $rate;
    push @win, [ $pre_span, $spans[-1], $kind ];
    push @ratios, $base > 0 ? $rate / $base : 0;
}
is(scalar(@fault_at), $faults, "$faults faults injected");

stop_producer($producer);
ok(wait_quiescent($node, chaos_param(short => 120, long => 600)), 'runners drained every job after the faults')
  or diag(explain(job_counts($node)));
is(scalar(grep { runner_alive($_) } @runners), $n_runners, 'every runner survived every fault (no restart by the test)');
stop_runner($_, 'TERM') for @runners;

my ($rc, $fig, $out) = run_checker($node, ledger => $ledger, produced => [ $producer->{log}, $topup_log ],
    runner_logs => [ map { $_->{log} } @runners ], lease => $lease, json => "$dir/check.json");
note($out);
cmp_ok($fig->{acknowledged}, '>', 0, 'enqueues were acknowledged');
is($fig->{lost}, 0, 'lost = 0');
is($fig->{unexpected}, 0, 'unexpected = 0');
is($fig->{unexplained_duplicates}, 0, 'every duplicate explained by a fault');
is($fig->{not_finished}, 0, 'nothing left waiting or running');
is($rc, 0, 'checker verdict PASS');

# Runner logs: every reconnect, and every backoff delay with its attempt.
my $wall = sub { timegm($_[5], $_[4], $_[3], $_[2], $_[1] - 1, $_[0]) + $_[6] / 1000 };
my (@first_delay, %delays, @reconnect, $missing);
$missing = 0;
for my $r (@runners) {
    my (@events);
    for (split /\n/, runner_log($r)) {
        next unless /^ts=(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z /;
        my $ts = $wall->($1, $2, $3, $4, $5, $6, $7);
        if (/msg="database connection (?:lost|failed)" conn=(\w+) .*attempts=(\d+) retry_in=([\d.]+)(ms|s)\b/) {
            my $ms = $4 eq 's' ? $3 * 1000 : $3;
            push @{ $delays{$2} }, $ms;
            push @first_delay, $ms if $2 == 1;
        } elsif (/msg="reconnected to database" conn=(\w+)/) {
            push @events, [ $ts, $1 ];
        }
    }
    for my $k (0 .. $#fault_at) {
        my $until = $k < $#fault_at ? $fault_at[ $k + 1 ] : 9e9;
        for my $conn ('work', 'settle', 'listen') {
            my ($first) = grep { $_->[0] >= $fault_at[$k] && $_->[0] < $until && $_->[1] eq $conn } @events;
            if ($first) { push @reconnect, $first->[0] - $fault_at[$k] if $conn eq 'work' }
            else { $missing++; diag("runner $r->{pid}: no $conn reconnect after fault " . ($k + 1)) }
        }
    }
}
is($missing, 0, 'every runner reconnected all three connections by itself after every fault');
my @raw = grep { length && !/^ts=\S+ level=\w+ msg=/ } map { my @l = split /\n/, runner_log($_); @l[ 1 .. $#l ] } @runners;
is(scalar(@raw), 0, 'runner logs stay logfmt through every fault') or diag(join("\n", @raw[ 0 .. ($#raw < 5 ? $#raw : 5) ]));
# Handler start latency: from the runner's "job started" (its fork) to
# the handler's first ledger line. Perl's start-up is CPU: when it grows,
# the machine was short of CPU in that window, which explains a low
# throughput ratio that has nothing to do with the fault.
my %ledger_start;
open my $lfh, '<', $ledger or die;
while (<$lfh>) { $ledger_start{"$1 $2"} = $3 if /^S (\d+) (\d+) \S+ \d+ \d+ \S+ (\S+)/ }
close $lfh;
my @forks;
for my $r (@runners) {
    for (split /\n/, runner_log($r)) {
        next unless /^ts=(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z level=info msg="job started" job=(\d+) \S+ attempt=(\d+)/;
        my $s = $ledger_start{"$8 $9"};
        push @forks, [ $wall->($1, $2, $3, $4, $5, $6, $7), $s - $wall->($1, $2, $3, $4, $5, $6, $7) ] if defined $s;
    }
}
my $start_p50 = sub {
    my ($span) = @_;
    my $p = percentile(0.5, map { $_->[1] } grep { $_->[0] >= $span->[0] && $_->[0] < $span->[1] } @forks);
    return defined $p ? $p * 1000 : 0;
};
my (@lat_pre, @lat_post);
for my $i (0 .. $#fault_at) {
    push @lat_pre, $start_p50->($win[$i][0]);
    push @lat_post, $start_p50->($win[$i][1]);
    note(sprintf('fault %d (%s): %.1f jobs/s before (handler start p50 %.0f ms); completions resumed after %.2fs, '
        . 'then %.1f jobs/s (ratio %.2f, handler start p50 %.0f ms)', $i + 1, $win[$i][2], $pre[$i],
        $lat_pre[-1], $recover[$i], $post[$i], $ratios[$i], $lat_post[-1]));
}

my %distinct = map { $_ => 1 } @first_delay;
cmp_ok(scalar(@first_delay), '>=', $faults * $n_runners, 'runners logged their first retry delays');
cmp_ok(scalar(keys %distinct), '>', 1, 'first reconnect delays are jittered (not all the same)')
  or diag("first delays: @first_delay");

my $fmt = sub { defined $_[0] ? sprintf('%.2f', $_[0]) : '-' };
my $sum = sub { my $t = 0; $t += $_ for @_; $t };
my $spread = join(', ', map {
    my @d = @{ $delays{$_} };
    sprintf('attempt %d: n=%d %d-%d ms (p50 %d)', $_, scalar(@d), percentile(0, @d), percentile(1, @d), percentile(0.5, @d))
} grep { $_ <= 6 } sort { $a <=> $b } keys %delays);
diag(sprintf('chaos_restart: %d faults (%s) under %d runners x %d slots, %d ms jobs; windows of %ss, before the faults %s-%s jobs/s; '
    . 'throughput after recovery / the window before the fault: all faults together %s, per fault min %s, p50 %s, max %s (%s); completions resume p50 %ss, max %ss; '
    . 'handler start latency p50 per window before %s-%s ms, after %s-%s ms; '
    . 'acknowledged=%d unknown=%d (committed %d) lost=%d duplicated=%d (all explained) stale settles refused=%d',
    $faults, join(', ', map {"$_ x$kind_count{$_}"} sort keys %kind_count), $n_runners, $conc, $sleep_ms, $window,
    $fmt->(percentile(0, @pre)), $fmt->(percentile(1, @pre)),
    $fmt->($sum->(@pre) > 0 ? $sum->(@post) / $sum->(@pre) : 0),
    $fmt->(percentile(0, @ratios)), $fmt->(percentile(0.5, @ratios)), $fmt->(percentile(1, @ratios)),
    join(' ', map { $fmt->($_) } @ratios), $fmt->(percentile(0.5, @recover)), $fmt->(percentile(1, @recover)),
    (map { sprintf('%.0f', $_) } percentile(0, @lat_pre), percentile(1, @lat_pre), percentile(0, @lat_post),
        percentile(1, @lat_post)),
    $fig->{acknowledged}, $fig->{unknown_outcome}, $fig->{unknown_committed}, $fig->{lost}, $fig->{duplicated},
    ($fig->{stale_completions_refused} // 0) + ($fig->{stale_failures_refused} // 0)));
diag(sprintf('chaos_restart: reconnect (fault -> work connection back) p50 %ss p99 %ss max %ss (n=%d); '
    . 'backoff delays: %d distinct first delays of %d; %s',
    $fmt->(percentile(0.5, @reconnect)), $fmt->(percentile(0.99, @reconnect)), $fmt->(percentile(1, @reconnect)),
    scalar(@reconnect), scalar(keys %distinct), scalar(@first_delay), $spread));

my $pids = @killed_pids ? join('|', @killed_pids) : 'none';
my @crash_lines = grep { /terminating any other active server processes/ } server_log_problems($node);
cmp_ok(scalar(@crash_lines), '<=', scalar(@killed_pids), 'no crash restart beyond the backend kills');
check_server_log($node, allow => qr/\(PID (?:$pids)\) was terminated by signal 9|terminating any other active server processes/);
done_testing();
