# Extension upgrades: ALTER EXTENSION jobq UPDATE from every released
# version gives the catalog of a fresh install, and the jobs run on.
#
# Each released version's base script is installed by `make install` (built
# from its release commit, see RELEASES in the Makefile). For each one: a
# database gets that version, is filled (queues, jobs in every state, a
# schedule, an in-database handler queue) and updated; its catalog (every
# function with its signature, body, security and settings; tables,
# columns, defaults, constraints, indexes, triggers, views, sequences,
# grants, comments, extension members and pg_extension_config_dump entries)
# must equal a fresh install's, line for line, and its jobs run on.
#
# Also: the new library under the old SQL (a package upgrade restarts the
# server before anyone runs ALTER EXTENSION) keeps working.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JobqLifecycle;

my @released = ('0.1.0');
my $current = do {
    my $control = slurp_file("$ENV{JOBQ_SOURCE}/jobq.control");
    $control =~ /^default_version = '([^']+)'/m or die "no default_version in jobq.control";
    $1;
};

my $node = PostgreSQL::Test::Cluster->new('extension_upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'jobq'
jobq.naptime = '200ms'
jobq.rescue_interval = '200ms'
max_worker_processes = 32
});
$node->start;

my $available = $node->safe_psql('postgres',
    q{SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'jobq'});
for my $v (@released) {
    BAIL_OUT("jobq $v is not installed (available: $available): `make install` builds it from the git "
          . "history, which this checkout lacks") unless ",$available," =~ /,\Q$v\E,/;
}

# One line per catalog property of the extension's objects.
my $catalog_sql = <<'SQL';
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'jobq'),
lines(line) AS (
  -- every member of the extension
  SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
  UNION ALL
  -- pg_extension_config_dump entries
  SELECT 'config_dump ' || c.relname || ' condition=' || quote_literal(coalesce(e.extcondition[i], ''))
  FROM pg_extension e, generate_subscripts(e.extconfig, 1) i, pg_class c
  WHERE e.extname = 'jobq' AND c.oid = e.extconfig[i]
  UNION ALL
  -- functions
  SELECT format('function %s(%s): %s', p.proname, oidvectortypes(p.proargtypes), x.k || '=' || x.v)
  FROM pg_proc p, ext, LATERAL (VALUES
      ('arguments', pg_get_function_arguments(p.oid)),
      ('result', pg_get_function_result(p.oid)),
      ('kind', p.prokind::text), ('language', (SELECT lanname FROM pg_language WHERE oid = p.prolang)::text),
      ('security_definer', p.prosecdef::text), ('config', coalesce(p.proconfig::text, '')),
      ('volatility', p.provolatile::text), ('parallel', p.proparallel::text),
      ('strict', p.proisstrict::text), ('leakproof', p.proleakproof::text),
      ('cost_rows', p.procost || '/' || p.prorows),
      ('body_md5', md5(coalesce(p.prosrc, '') || '|' || coalesce(p.probin, ''))),
      ('owner', pg_get_userbyid(p.proowner)::text),
      ('acl', (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(coalesce(p.proacl, acldefault('f'::"char", p.proowner))) a)),
      ('comment', coalesce(obj_description(p.oid, 'pg_proc'), '<none>'))) x(k, v)
  WHERE p.pronamespace = ext.extnamespace
  UNION ALL
  -- relations: tables, views, sequences, indexes, composite types
  SELECT format('%s %s: %s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence'
                  WHEN 'i' THEN 'index' WHEN 'm' THEN 'matview' WHEN 'c' THEN 'type' ELSE c.relkind::text END,
                c.relname, x.k || '=' || x.v)
  FROM pg_class c, ext, LATERAL (VALUES
      ('persistence', c.relpersistence::text),
      ('options', coalesce(c.reloptions::text, '')),
      ('owner', pg_get_userbyid(c.relowner)::text),
      ('acl', CASE WHEN c.relkind = 'i' THEN '' ELSE (SELECT string_agg(a::text, ',' ORDER BY a::text)
               FROM unnest(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a) END),
      ('comment', coalesce(obj_description(c.oid, 'pg_class'), '<none>')),
      ('rowsecurity', c.relrowsecurity::text),
      ('definition', CASE c.relkind WHEN 'v' THEN pg_get_viewdef(c.oid) WHEN 'i' THEN pg_get_indexdef(c.oid) ELSE '' END)) x(k, v)
  WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  -- columns, by position among the columns not dropped
  SELECT format('column %s.%s: %s', c.relname, a.attname, x.k || '=' || x.v)
  FROM pg_class c JOIN ext ON c.relnamespace = ext.extnamespace
  JOIN LATERAL (SELECT a.*, row_number() OVER (ORDER BY a.attnum) AS position FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) a ON true
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  CROSS JOIN LATERAL (VALUES
      ('position', a.position::text),
      ('type', format_type(a.atttypid, a.atttypmod)),
      ('not_null', a.attnotnull::text),
      ('default', coalesce(pg_get_expr(ad.adbin, ad.adrelid), '<none>')),
      ('collation', coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation)::text, '')),
      ('identity_generated', a.attidentity::text || '/' || a.attgenerated::text),
      ('acl', coalesce(a.attacl::text, '')),
      ('comment', coalesce(col_description(c.oid, a.attnum), '<none>'))) x(k, v)
  WHERE c.relkind IN ('r', 'v', 'c', 'p', 'm')
  UNION ALL
  -- constraints
  SELECT format('constraint %s.%s: %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
         || ' comment=' || coalesce(obj_description(k.oid, 'pg_constraint'), '<none>')
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ext ON c.relnamespace = ext.extnamespace
  UNION ALL
  -- triggers
  SELECT format('trigger %s.%s: %s', c.relname, t.tgname, pg_get_triggerdef(t.oid))
         || ' enabled=' || t.tgenabled::text || ' comment=' || coalesce(obj_description(t.oid, 'pg_trigger'), '<none>')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ext ON c.relnamespace = ext.extnamespace
  WHERE NOT t.tgisinternal
  UNION ALL
  -- rules other than views' own, and row-level security policies
  SELECT format('rule %s.%s: %s', c.relname, r.rulename, pg_get_ruledef(r.oid))
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN ext ON c.relnamespace = ext.extnamespace
  WHERE r.rulename <> '_RETURN'
  UNION ALL
  SELECT format('policy %s.%s: %s %s', c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN ext ON c.relnamespace = ext.extnamespace
  UNION ALL
  -- sequences' parameters and owners
  SELECT format('sequence %s: type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s', c.relname,
                format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                coalesce((SELECT d.refobjid::regclass || '.' || a.attname FROM pg_depend d
                          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
                            AND d.refclassid = 'pg_class'::regclass), '<none>'))
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN ext ON c.relnamespace = ext.extnamespace
  UNION ALL
  -- types other than relations' row types (enums, domains, composites)
  SELECT format('type %s: kind=%s %s', t.typname, t.typtype,
                CASE t.typtype WHEN 'e' THEN (SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid)
                               WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END)
         || ' comment=' || coalesce(obj_description(t.oid, 'pg_type'), '<none>')
  FROM pg_type t JOIN ext ON t.typnamespace = ext.extnamespace
  WHERE t.typcategory <> 'A' AND t.typtype IN ('e', 'd', 'r', 'm', 'b') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  UNION ALL
  -- the schema
  SELECT format('schema %s: owner=%s acl=%s comment=%s', n.nspname, pg_get_userbyid(n.nspowner),
                (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))) a),
                coalesce(obj_description(n.oid, 'pg_namespace'), '<none>'))
  FROM pg_namespace n JOIN ext ON n.oid = ext.extnamespace
  UNION ALL
  -- the extension's roles and their memberships
  SELECT format('role %s: login=%s member_of=%s', r.rolname, r.rolcanlogin,
                coalesce((SELECT string_agg(g.rolname::text, ',' ORDER BY g.rolname) FROM pg_auth_members m
                          JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), ''))
  FROM pg_roles r WHERE r.rolname LIKE 'jobq\_%'
)
SELECT line FROM lines ORDER BY line COLLATE "C";
SQL

sub catalog_lines {
    my ($db) = @_;
    return split /\n/, $node->safe_psql($db, $catalog_sql);
}

# The lines only in one of the two catalogs, as a readable diff.
sub catalog_diff {
    my ($fresh_db, $updated_db) = @_;
    my %fresh = map { $_ => 1 } catalog_lines($fresh_db);
    my %updated = map { $_ => 1 } catalog_lines($updated_db);
    my @missing = grep { !$updated{$_} } sort keys %fresh;
    my @extra = grep { !$fresh{$_} } sort keys %updated;
    my $diff = '';
    $diff .= "  only in a fresh install (missing after the update):\n" . join('', map { "    $_\n" } @missing)
      if @missing;
    $diff .= "  only after the update (not in a fresh install):\n" . join('', map { "    $_\n" } @extra)
      if @extra;
    return ($diff, scalar keys %fresh);
}

# jobq.queue_stats' counts per queue, but for the ticks queue (whose
# schedule keeps adding jobs) and the columns that move with the clock.
sub stats_snapshot {
    my ($db) = @_;
    return $node->safe_psql($db, q{
        SELECT string_agg(pg_catalog.format('%s|%s|available=%s|scheduled=%s|running=%s|retryable=%s'
                   || '|completed=%s|cancelled=%s|dead=%s', queue, paused, available, scheduled, running,
                   retryable, completed, cancelled, dead), E'\n' ORDER BY queue)
        FROM jobq.queue_stats WHERE queue <> 'ticks'});
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION jobq');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}), $current,
    "a fresh install is $current");

for my $from (@released) {
    my $db = 'from_' . ($from =~ tr/./_/r);
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, "CREATE EXTENSION jobq VERSION '$from'");
    my $filled = fill_jobq($node, $db);
    ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM jobq.job WHERE queue = 'ticks'}),
        "$from: the schedule fires");
    # Jobs finished an hour before the update, so that the archive tally's
    # first advance after it (which stays a minute behind now) counts them.
    $node->safe_psql($db, q{UPDATE jobq.archive SET finished_at = finished_at - interval '1 hour'});
    # An option 0.1.0 took and 0.2.0's bounds refuse (lease at most 7 days).
    $node->safe_psql($db, q{SELECT jobq.create_queue('slow', lease => '30 days')});
    my $queues = queues_snapshot($node, $db);
    my $schedules = schedules_snapshot($node, $db);
    my $jobs = jobs_snapshot($node, $db);
    my $stats = stats_snapshot($db);
    like($stats, qr/^mail\|f\|available=2\|scheduled=1\|running=1\|retryable=1\|completed=1\|cancelled=1\|dead=1$/m,
        "$from: queue_stats counts the jobs of every state");

    my ($update_rc, $update_out, $update_err) = $node->psql($db, 'ALTER EXTENSION jobq UPDATE');
    is($update_rc, 0, "$from: ALTER EXTENSION jobq UPDATE succeeds") or diag($update_err);
    is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}), $current,
        "$from: ALTER EXTENSION jobq UPDATE reaches $current");
    like($update_err,
        qr/WARNING:  jobq queue "slow": lease must be between 1 second and 7 days\n.*the queue keeps lease = 30 days\.\n.*HINT:  Change it with jobq\.alter_queue\('slow', lease => \.\.\.\)/,
        "$from: the update warns of a queue option outside the bounds");
    unlike($update_err, qr/queue "(?!slow")/, "$from: and of no other queue");
    my ($diff, $count) = catalog_diff('fresh', $db);
    cmp_ok($count, '>', 300, "the catalog comparison covers the extension ($count lines)");
    is($diff, '', "$from -> $current: the catalog equals a fresh install's");
    diag("catalog differences after updating from $from:\n$diff") if $diff ne '';

    is(queues_snapshot($node, $db), $queues, "$from: queues kept");
    is(schedules_snapshot($node, $db), $schedules, "$from: schedules kept");
    is(jobs_snapshot($node, $db), $jobs, "$from: jobs kept");
    is(stats_snapshot($db), $stats, "$from: queue_stats gives the same counts");
    # The tally starts empty, as in a fresh install; its first advance (the
    # worker's retention turn, or this call) tallies the jobs archived
    # before the update, and the counts stay the same.
    is($node->safe_psql($db, q{
            SELECT jobq._tally_advance() > (SELECT max(finished_at) FROM jobq.archive WHERE queue = 'mail')}),
        't', "$from: the archive tally's mark passes the jobs archived before the update");
    is($node->safe_psql($db, q{
            SELECT string_agg(state || '=' || jobs, ',' ORDER BY state) FROM jobq.archive_tally WHERE queue = 'mail'}),
        'cancelled=1,completed=1', "$from: the archive tally counts the jobs archived before the update");
    is(stats_snapshot($db), $stats, "$from: queue_stats gives the same counts from the tally");
    is($node->safe_psql($db, q{SELECT handler FROM jobq.queue WHERE name = 'inproc'}), 'app.apply(jsonb)',
        "$from: the handler is kept as its schema-qualified signature");
    check_runs_on($node, $db, "updated from $from", $filled);
}

# No path: PostgreSQL's own error, nothing changed.
my ($rc, $out, $err) = $node->psql('fresh', q{ALTER EXTENSION jobq UPDATE TO '99.0.0'});
like($err, qr/extension "jobq" has no update path from version "\Q$current\E" to version "99.0.0"/,
    'an update to a version without a path keeps PostgreSQL\'s error');

# The new library under the old SQL: a package upgrade replaces jobq.so and
# restarts the server before anyone runs ALTER EXTENSION. The worker,
# producers, runners' calls and in-database handlers keep working.
for my $from (@released) {
    my $db = 'old_sql_' . ($from =~ tr/./_/r);
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, "CREATE EXTENSION jobq VERSION '$from'");
    my $filled = fill_jobq($node, $db);
    $node->restart;
    is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}), $from,
        "the SQL of $from is still installed");
    check_runs_on($node, $db, "library $current under the SQL of $from", $filled);
    # Several queues take the SQL claim (one queue the direct path, above):
    # both return the old SQL's columns, from a jobq.job without saved_state.
    my $two_queues = $node->safe_psql($db, q{SELECT jobq.enqueue('mail', '{"old_sql": "two queues"}')});
    is($node->safe_psql($db, qq{
            SELECT string_agg((SELECT count(*) FROM json_object_keys(row_to_json(c)))::text, ',')
            FROM jobq.claim('{mail,ticks}', 'two', 1000) c WHERE c.id = $two_queues}),
        '10', "library $current under the SQL of $from: a claim from two queues gives the ten columns of $from");
    like(slurp_file($node->logfile),
        qr/WARNING:  jobq library \Q$current\E runs with the SQL of jobq \Q$from\E in database "$db"\n.*\n.*HINT:  Run ALTER EXTENSION jobq UPDATE in database "$db"\./,
        "the worker says that ALTER EXTENSION jobq UPDATE is due");
    $node->safe_psql($db, 'ALTER EXTENSION jobq UPDATE');
    my ($diff) = catalog_diff('fresh', $db);
    is($diff, '', "$from, updated after the restart: the catalog equals a fresh install's");
    my $id = $node->safe_psql($db, q{SELECT jobq.enqueue('mail', '{"after": "update"}')});
    is($node->safe_psql($db, qq{
            WITH c AS (SELECT * FROM jobq.claim('{mail}', 'late', 10))
            SELECT count(*) FROM jobq.complete((SELECT array_agg(id) FROM c), (SELECT array_agg(lease_token) FROM c)) d
            WHERE d = $id}),
        '1', "$from, updated after the restart: a new job is claimed and completed");
}

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|terminating any other active server processes/,
    'no crash in the server log');
done_testing();
