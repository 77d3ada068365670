-- 0017_leases: named leases, so that one process of many runs a periodic job.
--
-- A process takes the lease `name` until `held_until`; no other process can
-- take it before then. Nothing releases a lease: it runs out, so a process
-- that dies holding one only delays the job until then.

CREATE TABLE leases (
    name        text PRIMARY KEY,
    held_until  timestamptz NOT NULL
);
