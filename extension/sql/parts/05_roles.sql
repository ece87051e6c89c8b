-- Roles (cluster-wide, so created once and shared by every database):
--   jobq_producer  enqueue jobs
--   jobq_worker    claim and settle jobs (the runner's role)
--   jobq_monitor   read views and job details
--   jobq_admin     all of the above, plus queue management and operations
-- PUBLIC gets nothing. Grants are in 90_grants.sql.
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['jobq_producer', 'jobq_worker', 'jobq_monitor', 'jobq_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;
