# Chaos 5: queue-name and payload fuzzing through SQL.
#
# Random and hand-picked hostile inputs (random bytes, quotes, SQL, format
# strings, long strings, unicode, NULs where SQL can carry them, NULLs,
# out-of-range numbers, mismatched arrays) go to every public function,
# called as a role that holds jobq_admin (so privileges are real, not a
# superuser's). Each call runs in its own subtransaction; its outcome (ok or
# SQLSTATE) is recorded. Every error must be a clear one: SQLSTATE class 22
# (data exception), 42 (syntax/access), 54 (limit exceeded) or 55 (object
# state), never XX000 or anything else; inputs that must be refused are; a
# name that is accepted matches the allow-list; no backend crashes. Inputs
# marked "should" (questionable but not clearly wrong to accept) are only
# reported as findings.
# CHAOS_SEED=n reproduces a run.
use strict;
use warnings;

use JobqChaos;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{CHAOS_SEED} // (time ^ $$) % 1000000;
srand($seed);
my $n_random = chaos_param(short => 150, long => 3000);
my $node = chaos_node('fuzz');
$node->safe_psql('postgres', q{
    CREATE ROLE fuzzer;
    GRANT jobq_admin TO fuzzer;
    CREATE TABLE fuzz (n int PRIMARY KEY, what text, expect text, sql text);
    CREATE TABLE fuzz_result (n int PRIMARY KEY, sqlstate text, message text);
    GRANT ALL ON fuzz, fuzz_result TO fuzzer;
    CREATE FUNCTION fuzz_run(lo int, hi int) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        c record;
        st text;
        msg text;
    BEGIN
        FOR c IN SELECT * FROM fuzz WHERE n BETWEEN lo AND hi ORDER BY n LOOP
            BEGIN
                EXECUTE c.sql;
                INSERT INTO fuzz_result VALUES (c.n, 'ok', NULL);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                INSERT INTO fuzz_result VALUES (c.n, st, left(msg, 300));
            END;
        END LOOP;
    END $$;
    SELECT jobq.create_queue('fz', lease => '1 minute');
    SELECT jobq.enqueue('fz', '{"seed":1}');
});

# --- inputs -------------------------------------------------------------------
# A text value as SQL: printable ASCII inline, anything else as UTF-8 bytes
# decoded by the server (an invalid sequence fails there, class 22).
sub lit {
    my ($s, $raw) = @_;
    return 'NULL' unless defined $s;
    if ($s =~ /^[\x20-\x7e]*$/) { (my $q = $s) =~ s/'/''/g; return "'$q'" }
    my $bytes = $s;
    utf8::encode($bytes) unless $raw;
    return "convert_from('\\x" . unpack('H*', $bytes) . "'::bytea, 'UTF8')";
}
sub rand_string {
    my ($max) = @_;
    my @pool = ('a' .. 'z', '0' .. '9', '_', '.', '-', 'A', 'Z', ' ', "'", '"', '\\', ';', '%', '$', '(', ')',
                "\t", "\n", "\x{e9}", "\x{2603}", "\x{1F600}", "\x{200B}", "\x{202E}", "\x{FEFF}", "\x{3042}");
    my $len = int(rand($max + 1));
    my $s = join '', map { $pool[ rand() < 0.6 ? int(rand(39)) % 26 : int(rand(@pool)) ] } 1 .. $len;
    return $s;
}
sub rand_bytes { join '', map { chr(int(rand(256))) } 1 .. 1 + int(rand($_[0])) }

my @names = ('', ' ', 'a', 'A', 'Queue', '-a', '.a', '_a', 'a b', "a'b", 'a"b', 'a\\b', 'a;b',
    "x'); DROP TABLE jobq.job; --", '%s%n%x%p', 'a' x 48, 'a' x 49, 'a' x 63, 'a' x 64, 'a' x 1000,
    "\x{e4}" . ('a' x 47), "\x{200B}a", "a\x{202E}b", "\x{1F600}", "a\tb", "a\nb", 'pg_temp', 'jobq', '0',
    '9' x 48, 'a-.-_', 'a..', 'ab/../c', "a\x{FEFF}", undef);
# Never the fixture queue 'fz': a random name that hits it would drop it
# (drop_queue below) and fail every later case (seen with CHAOS_SEED=3038).
push @names, grep { $_ ne 'fz' } map { rand_string(rand() < 0.8 ? 20 : 80) } 1 .. $n_random;
my @raw_names = map { rand_bytes(30) } 1 .. int($n_random / 5);    # raw bytes (often invalid UTF-8)
my %raw = map { $_ => 1 } @raw_names;
push @names, @raw_names;

my @cases;    # [ what, expect (ok|error|any), sql ]
sub case { push @cases, [@_] }
my $valid = qr/^[a-z0-9][a-z0-9_.-]{0,47}$/;
my $i = 0;
for my $name (@names) {
    $i++;
    my $l = lit($name, defined $name && $raw{$name});
    my $good = defined $name && $name =~ $valid && $name !~ /\n/;
    my $e = $good ? 'any' : 'error';
    case("name#$i create_queue", $good ? 'ok' : 'error', "SELECT jobq.create_queue($l, if_not_exists => true)");
    case("name#$i enqueue", $e, "SELECT jobq.enqueue($l, '{}')");
    case("name#$i enqueue_many", $e, "SELECT jobq.enqueue_many($l, ARRAY['{}'::jsonb])");
    case("name#$i claim", defined $name ? $e : 'any', "SELECT * FROM jobq.claim(ARRAY[$l], 'w')");
    case("name#$i pause", $e, "SELECT jobq.pause($l)");
    case("name#$i resume", $e, "SELECT jobq.resume($l)");
    case("name#$i alter_queue", $e, "SELECT jobq.alter_queue($l, lease => '1 second')");
    case("name#$i drop_queue", $e, "SELECT jobq.drop_queue($l, force => true)");
}

# Payloads and the other enqueue arguments.
my @payloads = (
    [ 'object', 'ok', q{'{}'} ], [ 'array', 'any', q{'[]'} ], [ 'number', 'any', q{'1'} ],
    [ 'string', 'any', q{'"s"'} ], [ 'json null', 'any', q{'null'} ], [ 'SQL NULL', 'error', 'NULL' ],
    [ 'NUL escape', 'error', q{'{"a":"\u0000"}'} ], [ 'lone surrogate', 'error', q{'{"a":"\ud800"}'} ],
    [ 'NUL via chr', 'error', q{jsonb_build_object('a', 'x' || chr(0))} ],
    [ 'huge number', 'any', q{'{"a":1e100000}'} ],
    [ 'deep 1000', 'any', q{repeat('[', 1000) || repeat(']', 1000)} ],
    [ 'deep 200000', 'error', q{repeat('[', 200000) || repeat(']', 200000)} ],
    [ 'over max_payload_size', 'error', q{jsonb_build_object('a', repeat('x', 1100000))} ],
    [ 'just under max_payload_size', 'ok', q{jsonb_build_object('a', repeat('x', 1000000))} ],
    [ 'many keys', 'ok', q{(SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 20000) g)} ],
    [ 'quotes and unicode', 'ok', q{jsonb_build_object('q', $$'";\--%s$$, 'u', E'\u2603\U0001F600')} ],
);
for my $k (1 .. int($n_random / 3)) {
    my $s = rand_string(200);
    push @payloads, [ "random string #$k", 'ok', 'jsonb_build_object(' . lit($s) . ', ' . lit($s) . ')' ];
    push @payloads, [ "random bytes #$k", 'any', 'to_jsonb(' . lit(rand_bytes(50), 1) . ')' ];
    push @payloads, [ "random text as json #$k", 'any', lit(rand_string(30)) . '::jsonb' ];
}
for my $p (@payloads) {
    case("payload $p->[0] enqueue", $p->[1], "SELECT jobq.enqueue('fz', ($p->[2])::jsonb)");
    case("payload $p->[0] enqueue_many", $p->[1], "SELECT jobq.enqueue_many('fz', ARRAY[($p->[2])::jsonb])");
}
my @args = (
    [ 'priority 32768', 'error', q{priority => 32768} ], [ 'priority -32769', 'error', q{priority => -32769} ],
    [ 'priority 2^31-1', 'error', q{priority => 2147483647} ],
    [ 'max_attempts 0', 'error', q{max_attempts => 0} ], [ 'max_attempts -1', 'error', q{max_attempts => -1} ],
    [ 'max_attempts 1001', 'error', q{max_attempts => 1001} ], [ 'max_attempts 1000', 'ok', q{max_attempts => 1000} ],
    [ 'run_at infinity', 'any', q{run_at => 'infinity'} ], [ 'run_at -infinity', 'any', q{run_at => '-infinity'} ],
    [ 'run_at far future', 'any', q{run_at => '294276-12-31'} ],
    [ 'unique_key empty', 'any', q{unique_key => ''} ],
    [ 'unique_key 10 kB compressible', 'any', q{unique_key => repeat('k', 10000)} ],
    [ 'unique_key 10 kB random', 'error', q{unique_key => (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)} ],
    [ 'unique_mode bogus', 'error', q{unique_key => 'u1', unique_mode => 'bogus'} ],
    [ 'unique_mode NULL', 'any', q{unique_key => 'u2', unique_mode => NULL} ],
    [ 'debounce negative', 'should', q{unique_key => 'u3', debounce => '-1 second'} ],
    [ 'debounce huge', 'any', q{unique_key => 'u4', debounce => '1000 years'} ],
);
case("enqueue $_->[0]", $_->[1], "SELECT jobq.enqueue('fz', '{}', $_->[2])") for @args;
case('enqueue_many NULL array', 'any', q{SELECT jobq.enqueue_many('fz', NULL)});
case('enqueue_many NULL element', 'error', q{SELECT jobq.enqueue_many('fz', ARRAY[NULL::jsonb])});
case('enqueue_many empty', 'any', q{SELECT jobq.enqueue_many('fz', '{}')});
case('enqueue_many 20000', 'any', q{SELECT count(*) FROM jobq.enqueue_many('fz', array_fill('{}'::jsonb, ARRAY[20000]))});
case('enqueue_many 2-D array', 'error', q{SELECT jobq.enqueue_many('fz', ARRAY[['{}'::jsonb], ['{}'::jsonb]])});

# Worker calls.
for (
    [ 'claim NULL queues', 'any', q{jobq.claim(NULL, 'w')} ], [ 'claim empty queues', 'any', q{jobq.claim('{}', 'w')} ],
    [ 'claim NULL queue element', 'any', q{jobq.claim(ARRAY[NULL], 'w')} ],
    [ 'claim 10001 queues', 'any', q{jobq.claim(array_fill('fz'::text, ARRAY[10001]), 'w')} ],
    [ 'claim NULL worker', 'should', q{jobq.claim(ARRAY['fz'], NULL)} ],
    [ 'claim 1 MB worker', 'should', q{jobq.claim(ARRAY['fz'], repeat('w', 1000000))} ],
    [ 'claim max_jobs 0', 'error', q{jobq.claim(ARRAY['fz'], 'w', 0)} ],
    [ 'claim max_jobs -1', 'error', q{jobq.claim(ARRAY['fz'], 'w', -1)} ],
    [ 'claim max_jobs 10001', 'error', q{jobq.claim(ARRAY['fz'], 'w', 10001)} ],
    [ 'claim max_jobs NULL', 'error', q{jobq.claim(ARRAY['fz'], 'w', NULL)} ],
    [ 'claim lease negative', 'error', q{jobq.claim(ARRAY['fz'], 'w', 1, '-1 second')} ],
    [ 'claim lease 0', 'error', q{jobq.claim(ARRAY['fz'], 'w', 1, '0')} ],
    [ 'claim lease 1000 years', 'any', q{jobq.claim(ARRAY['fz'], 'w', 1, '1000 years')} ],
    [ 'claim lease 300000 years', 'error', q{jobq.claim(ARRAY['fz'], 'w', 1, '300000 years')} ],
    [ 'complete NULLs', 'any', q{jobq.complete(NULL, NULL)} ],
    [ 'complete length mismatch', 'error', q{jobq.complete('{1,2}', '{1}')} ],
    [ 'complete NULL elements', 'any', q{jobq.complete('{NULL}', '{NULL}')} ],
    [ 'complete results mismatch', 'error', q{jobq.complete('{1}', '{1}', ARRAY['{}'::jsonb, '{}'::jsonb])} ],
    [ 'complete 2-D ids', 'error', q{jobq.complete('{{1},{2}}', '{{1},{2}}')} ],
    [ 'complete 100000 ids', 'any', q{jobq.complete(array_fill(1::bigint, ARRAY[100000]), array_fill(1::bigint, ARRAY[100000]))} ],
    [ 'fail_many mismatch', 'error', q{jobq.fail_many('{1,2}', '{1,2}', '{x}')} ],
    [ 'fail_many retry_in mismatch', 'error', q{jobq.fail_many('{1}', '{1}', '{x}', '{1s,2s}')} ],
    [ 'heartbeat mismatch', 'error', q{jobq.heartbeat('{1,2}', '{1}')} ],
    [ 'heartbeat lease negative', 'error', q{jobq.heartbeat('{1}', '{1}', '-1 second')} ],
    [ 'release mismatch', 'error', q{jobq.release('{1}', '{}')} ],
) {
    case($_->[0], $_->[1], "SELECT count(*) FROM $_->[2]");
}
for (
    [ 'fail NULL id', 'any', q{jobq.fail(NULL, 1, 'e')} ], [ 'fail NULL error', 'any', q{jobq.fail(1, 1, NULL)} ],
    [ 'fail 10 MB error', 'any', q{jobq.fail(1, 1, repeat('e', 10000000))} ],
    [ 'fail retry_in negative', 'any', q{jobq.fail(1, 1, 'e', '-1 day')} ],
    [ 'fail discard NULL', 'any', q{jobq.fail(1, 1, 'e', NULL, NULL)} ],
    [ 'snooze negative', 'any', q{jobq.snooze(1, 1, '-1 hour')} ], [ 'snooze NULL', 'any', q{jobq.snooze(1, 1, NULL)} ],
    [ 'snooze 300000 years', 'any', q{jobq.snooze(1, 1, '300000 years')} ],
    [ 'set_progress 2 MB', 'any', q{jobq.set_progress(1, 1, jsonb_build_object('p', repeat('x', 2000000)))} ],
    [ 'set_progress NULL', 'any', q{jobq.set_progress(1, 1, NULL)} ],
    [ 'cancel NULL', 'error', q{jobq.cancel(NULL)} ], [ 'retry NULL', 'error', q{jobq.retry(NULL)} ], [ 'cancel -1', 'error', q{jobq.cancel(-1)} ],
    [ 'retry -1', 'error', q{jobq.retry(-1)} ], [ 'job NULL', 'error', q{jobq.job(NULL)} ],
) {
    case($_->[0], $_->[1], "SELECT $_->[2]");
}
# Queue settings.
for (
    [ 'max_attempts 0', q{max_attempts => 0} ], [ 'max_attempts NULL', q{max_attempts => NULL} ],
    [ 'backoff_jitter 2', q{backoff_jitter => 2} ], [ 'backoff_jitter NaN', q{backoff_jitter => 'NaN'} ],
    [ 'backoff_max < base', q{backoff_base => '1 hour', backoff_max => '1 second'} ],
    [ 'lease 0', q{lease => '0'} ], [ 'lease negative', q{lease => '-1 s'} ],
    [ 'retention negative', q{retention => '-1 day'} ], [ 'concurrency 0', q{concurrency => 0} ],
    [ 'concurrency -5', q{concurrency => -5} ], [ 'handler_timeout negative', q{handler_timeout => '-1 s'} ],
    [ 'handler wrong signature', q{handler => 'pg_sleep(double precision)'} ],
    [ 'handler set-returning', q{handler => 'jsonb_each(jsonb)'} ],
    [ 'handler aggregate', q{handler => 'jsonb_agg(anyelement)'} ],
    [ 'handler nonexistent', q{handler => 'no_such_fn(jsonb)'} ],
) {
    case("create_queue $_->[0]", 'error', "SELECT jobq.create_queue('q" . scalar(@cases) . "', $_->[1])");
}

# --- run ----------------------------------------------------------------------
my $values = join ",\n", map { my $c = $cases[$_];
    sprintf('(%d, %s, %s, %s)', $_, lit($c->[0]), lit($c->[1]), lit($c->[2])) } 0 .. $#cases;
$node->safe_psql('postgres', "INSERT INTO fuzz VALUES $values");
my $chunk = 100;
my @crashed;
for (my $lo = 0; $lo <= $#cases; $lo += $chunk) {
    my $hi = $lo + $chunk - 1;
    my ($rc) = try_psql($node, "SET ROLE fuzzer; SELECT fuzz_run($lo, $hi)");
    next if $rc == 0;
    # A chunk that broke the connection: find the case, one at a time.
    push @crashed, "chunk $lo..$hi: psql exit $rc";
    chaos_wait(30, sub { defined try_psql($node, 'SELECT 1') });
    for my $n ($lo .. ($hi > $#cases ? $#cases : $hi)) {
        my ($r1) = try_psql($node, "SET ROLE fuzzer; SELECT fuzz_run($n, $n)");
        push @crashed, "case $n ($cases[$n][0]): $cases[$n][2]: psql exit $r1" if $r1 != 0;
        chaos_wait(30, sub { defined try_psql($node, 'SELECT 1') }) if $r1 != 0;
    }
}
ok(!@crashed, 'no fuzz case broke its connection') or diag(join("\n", @crashed));

my @res = map { [ split /\|/, $_, 6 ] } split /\n/, $node->safe_psql('postgres',
    q{SELECT f.n, f.what, f.expect, coalesce(r.sqlstate, 'missing'),
             translate(coalesce(r.message, ''), E'\n\r|', '   '), translate(left(f.sql, 200), E'\n\r|', '   ')
      FROM fuzz f LEFT JOIN fuzz_result r USING (n) ORDER BY f.n});
my (%by_class, @unclear, @accepted, @refused, @soft);
for my $r (@res) {
    my ($n, $what, $expect, $st, $msg, $sql) = @$r;
    my $class = $st eq 'ok' ? 'ok' : substr($st, 0, 2);
    $by_class{$class}++;
    if ($st ne 'ok' && $class !~ /^(22|42|54|55)$/) {
        push @unclear, "$what -> $st $msg  [$sql]";
    } elsif ($st eq 'ok' && $expect eq 'should') {
        push @soft, "$what -> accepted  [$sql]";
    } elsif ($st eq 'ok' && $expect eq 'error') {
        push @accepted, "$what -> accepted  [$sql]";
    } elsif ($st ne 'ok' && $expect eq 'ok') {
        push @refused, "$what -> $st $msg  [$sql]";
    }
}
is(scalar(@res), scalar(@cases), 'every case has an outcome');
ok(!@unclear, 'every error has SQLSTATE class 22, 42, 54 or 55 (never XX000 or another class)')
  or diag(join("\n", @unclear[ 0 .. ($#unclear < 40 ? $#unclear : 40) ]));
ok(!@accepted, 'every input that must be refused was refused')
  or diag(join("\n", @accepted[ 0 .. ($#accepted < 40 ? $#accepted : 40) ]));
ok(!@refused, 'every valid input was accepted')
  or diag(join("\n", @refused[ 0 .. ($#refused < 40 ? $#refused : 40) ]));

my $bad_names = $node->safe_psql('postgres', q{SELECT string_agg(quote_literal(name), ', ') FROM jobq.queue
    WHERE name !~ '^[a-z0-9][a-z0-9_.-]{0,47}$'});
is($bad_names, '', 'every queue that exists has an allowed name');
is($node->safe_psql('postgres', q{SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
    WHERE p.pronamespace = 'jobq'::regnamespace AND p.prosecdef
      AND NOT coalesce(array_to_string(p.proconfig, ',') ~ 'search_path=pg_catalog, ?pg_temp', false)}), '',
   'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');

diag(sprintf('chaos_fuzz: seed=%d cases=%d (names %d) outcomes: %s; unclear=%d wrongly accepted=%d wrongly refused=%d '
    . 'questionable accepted=%d', $seed, scalar(@cases), scalar(@names),
    join(' ', map {"$_=$by_class{$_}"} sort keys %by_class), scalar(@unclear), scalar(@accepted), scalar(@refused),
    scalar(@soft)));
diag("finding (accepted, arguably should be refused): $_") for @soft;
check_server_log($node);
done_testing();
