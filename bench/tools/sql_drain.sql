-- A quick SQL-only drain probe (no runner): 20 rounds of claim 1000 +
-- complete 1000 on queue w3 in one session. Load jobs first, e.g.
--   SELECT jobq.create_queue('w3');
--   SELECT jobq.enqueue_many('w3', array_agg('{}'::jsonb)) FROM generate_series(1, 20000);
-- then: psql -f bench/tools/sql_drain.sql
DO $$
DECLARE ids bigint[]; toks bigint[]; t0 timestamptz := clock_timestamp(); n int := 0;
BEGIN
  FOR i IN 1..20 LOOP
    SELECT array_agg(id), array_agg(lease_token) INTO ids, toks FROM jobq.claim('{w3}', 'probe', 1000);
    PERFORM jobq.complete(ids, toks);
    n := n + coalesce(array_length(ids, 1), 0);
  END LOOP;
  RAISE NOTICE 'drained % in %', n, clock_timestamp() - t0;
END $$;
