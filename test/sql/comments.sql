-- Every object in schema jobq has a comment, so \df+, \dv+, \dt+ and \dx+
-- explain themselves (issue 16, item 9). A new object needs its COMMENT in
-- extension/sql/parts/95_comments.sql; this lists any left without one.
SELECT kind, name AS missing_comment
FROM (SELECT 'function' AS kind, p.oid::regprocedure::text AS name,
             obj_description(p.oid, 'pg_proc') AS comment
      FROM pg_proc p WHERE p.pronamespace = 'jobq'::regnamespace
      UNION ALL
      SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence'
                            ELSE 'relation' END,
             c.oid::regclass::text, obj_description(c.oid, 'pg_class')
      FROM pg_class c
      WHERE c.relnamespace = 'jobq'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      UNION ALL
      SELECT 'type', t.oid::regtype::text, obj_description(t.oid, 'pg_type')
      FROM pg_type t
      WHERE t.typnamespace = 'jobq'::regnamespace AND t.typtype IN ('d', 'e', 'r', 'm')
      UNION ALL
      SELECT 'extension', e.extname::text, obj_description(e.oid, 'pg_extension')
      FROM pg_extension e WHERE e.extname = 'jobq') AS o
WHERE coalesce(comment, '') = ''
ORDER BY 1, 2;

-- Comments are one line each, short enough to read in \df+.
SELECT p.oid::regprocedure AS long_comment
FROM pg_proc p
WHERE p.pronamespace = 'jobq'::regnamespace
  AND (length(obj_description(p.oid, 'pg_proc')) > 200
       OR obj_description(p.oid, 'pg_proc') LIKE E'%\n%')
ORDER BY 1;
