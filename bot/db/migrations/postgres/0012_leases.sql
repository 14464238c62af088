-- 0012_leases.sql for PostgreSQL: a time is DOUBLE PRECISION here (PostgreSQL's REAL is 4 bytes).
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
CREATE INDEX jobs_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
