-- Several bot processes on one queue (issue #18): a job's steps run in the process that holds its lease, which
-- that process renews; a lease that runs out (its process died) may be taken by another. One process alone (the
-- SQLite file) takes no leases: the columns stay empty.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
