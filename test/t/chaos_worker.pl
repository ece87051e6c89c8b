# Chaos 8: faults in the background worker.
#
#   - an ERROR inside its lease rescue (jobq._rescue replaced by one that
#     raises): logged, no process restart, no crash restart, rescue resumes
#     as soon as the function is restored;
#   - a C++ exception (the cron parser on a schedule edited behind
#     jobq.schedule()'s back, caught in SQL and not): turned into an ERROR by
#     the guard, same process, the schedule parked with the parser's message;
#   - SIGTERM (pg_terminate_backend): the launcher starts a new worker
#     within jobq.worker_restart_delay, rescue resumes, no crash restart;
#   - kill -9: the postmaster's crash restart (expected for SIGKILL of a
#     process attached to shared memory), then the worker is back and
#     rescues;
#   - a clean fast shutdown with the worker running.
# Reports the restart and recovery times.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $node = chaos_node('worker', 'jobq.worker_restart_delay = 500ms', 'restart_after_crash = on');
$node->safe_psql('postgres', q{SELECT jobq.create_queue('w', lease => '1 second', max_attempts => 10,
    backoff_base => '1 millisecond', backoff_max => '1 millisecond', backoff_jitter => 0)});

sub worker_pid {
    $node->safe_psql('postgres', q{SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE backend_type = 'jobq worker'});
}
# Claims a fresh job with a 1 s lease and abandons it; returns its id.
sub abandoned_job {
    my $id = $node->safe_psql('postgres', q{SELECT jobq.enqueue('w', '{}')});
    $node->safe_psql('postgres', q{SELECT count(*) FROM jobq.claim(ARRAY['w'], 'abandoner', 10)});
    return $id;
}
sub rescued {
    my ($id) = @_;
    $node->safe_psql('postgres', "SELECT state <> 'running' FROM jobq.job WHERE id = $id") eq 't';
}
my %fig;

ok(chaos_wait(30, sub { worker_pid() ne '' }), 'the database worker is running');
my $pid0 = worker_pid();
my $id = abandoned_job();
ok(chaos_wait(10, sub { rescued($id) }), 'baseline: an abandoned lease is rescued');

# --- ERROR inside the rescue ---------------------------------------------------
my $orig = $node->safe_psql('postgres',
    q{SELECT pg_get_functiondef('jobq._rescue(text, integer, text)'::regprocedure)});
$node->safe_psql('postgres', q{CREATE OR REPLACE FUNCTION jobq._rescue(rescuer text, max_jobs integer DEFAULT 1000,
    held_by text DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN RAISE EXCEPTION 'chaos: injected rescue error'; END $$});
my $log_offset = -s $node->logfile;
$id = abandoned_job();
sleep(2.5);
ok(!rescued($id), 'while the rescue raises, the job stays leased');
my $log = slurp_file($node->logfile, $log_offset);
my $errors = () = $log =~ /chaos: injected rescue error/g;
cmp_ok($errors, '>=', 2, "the worker logged the ERROR and retried ($errors times)");
is(worker_pid(), $pid0, 'the same worker process carries on (no restart)');
$node->safe_psql('postgres', $orig);
my $t = time;
ok(chaos_wait(10, sub { rescued($id) }, 0.05), 'rescue resumes once the function is restored');
$fig{after_error} = time - $t;

# --- C++ exception inside the worker ------------------------------------------------
# The cron parser (core/cron.cpp) is C++ behind the CallCpp guard. A
# schedule edited behind jobq.schedule()'s back makes it throw jobq::Error
# inside the worker's schedule pass: the guard turns the exception into an
# ERROR, the schedule is parked with the parser's message, other schedules
# keep ticking, and the process carries on.
$node->safe_psql('postgres', q{SELECT jobq.create_queue('cron_fault')});
$node->safe_psql('postgres', q{SELECT jobq.schedule('broken', '* * * * *', 'cron_fault')});
$node->safe_psql('postgres', q{SELECT jobq.schedule('healthy', '* * * * * *', 'cron_fault')});
$node->safe_psql('postgres',
    q{UPDATE jobq.periodic SET cron = '61 * * * *', next_tick = now() WHERE name = 'broken'});
ok(chaos_wait(15, sub {
        $node->safe_psql('postgres',
            q{SELECT next_tick = 'infinity' AND last_error IS NOT NULL FROM jobq.periodic WHERE name = 'broken'}) eq 't'
    }), 'a C++ exception in the schedule pass parks the broken schedule');
like($node->safe_psql('postgres', q{SELECT last_error FROM jobq.periodic WHERE name = 'broken'}),
    qr/invalid cron expression "61 \* \* \* \*"/, 'with the message the C++ parser threw');
my $ticks = $node->safe_psql('postgres', q{SELECT count(*) FROM jobq.jobs WHERE queue = 'cron_fault'});
ok(chaos_wait(15, sub {
        $node->safe_psql('postgres', q{SELECT count(*) FROM jobq.jobs WHERE queue = 'cron_fault'}) > $ticks + 1
    }), 'the healthy schedule keeps ticking');
$node->safe_psql('postgres', q{SELECT jobq.unschedule('healthy')});

# The same exception with nothing to catch it in SQL: a rescue that runs the
# parser on a bad expression fails the worker's unit of work as an ERROR.
$node->safe_psql('postgres', q{CREATE OR REPLACE FUNCTION jobq._rescue(rescuer text, max_jobs integer DEFAULT 1000,
    held_by text DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN PERFORM jobq._cron_next('61 * * * *', 'UTC', now()); RETURN 0; END $$});
$log_offset = -s $node->logfile;
$id = abandoned_job();
sleep(2.5);
ok(!rescued($id), 'while the rescue throws in C++, the job stays leased');
$log = slurp_file($node->logfile, $log_offset);
$errors = () = $log =~ /ERROR:  invalid cron expression "61 \* \* \* \*"/g;
cmp_ok($errors, '>=', 2, "the worker logged the exception as an ERROR and retried ($errors times)");
is(worker_pid(), $pid0, 'the same worker process carries on after C++ exceptions');
$node->safe_psql('postgres', $orig);
$t = time;
ok(chaos_wait(10, sub { rescued($id) }, 0.05), 'rescue resumes once the function is restored');
$fig{after_exception} = time - $t;

# --- SIGTERM --------------------------------------------------------------------
$t = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid0)");
ok(chaos_wait(15, sub { my $p = worker_pid(); $p ne '' && $p ne $pid0 }, 0.05),
   'after SIGTERM the launcher started a new worker');
$fig{sigterm_restart} = time - $t;
my $pid1 = worker_pid();
$id = abandoned_job();
ok(chaos_wait(10, sub { rescued($id) }), 'the new worker rescues');

# --- kill -9 ------------------------------------------------------------------
$t = time;
kill 'KILL', $pid1;
ok(chaos_wait(60, sub { my $p = try_psql($node, q{SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity
                                                    WHERE backend_type = 'jobq worker'});
                         defined $p && $p ne '' && $p ne $pid1 }, 0.1),
   'after kill -9 (crash restart) a worker is back');
$fig{kill9_restart} = time - $t;
$id = abandoned_job();
ok(chaos_wait(10, sub { rescued($id) }), 'and rescues');

# --- clean shutdown -------------------------------------------------------------
$log_offset = -s $node->logfile;
$t = time;
$node->stop('fast');
$fig{fast_stop} = time - $t;
$log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|PANIC/, 'fast shutdown: no process killed by a signal');
like($log, qr/database system is shut down/, 'fast shutdown completed');

diag(sprintf('chaos_worker: rescue resumed %.2fs after an injected ERROR was removed, %.2fs after an '
    . 'injected C++ exception (same process); SIGTERM -> new worker %.2fs (worker_restart_delay 0.5s); kill -9 -> crash restart + worker back %.2fs; '
    . 'fast stop %.2fs', @fig{qw(after_error after_exception sigterm_restart kill9_restart fast_stop)}));
check_server_log($node, allow => qr/\(PID $pid1\) was terminated by signal 9|terminating any other active server processes/);
my @crash = grep { /terminating any other active server processes/ } server_log_problems($node);
cmp_ok(scalar(@crash), '<=', 1, 'one crash restart: the kill -9, nothing else');
done_testing();
