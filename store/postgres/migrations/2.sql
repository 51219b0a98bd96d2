-- Version 2: state that the instances of a fleet share. Nothing in it is
-- precious: losing it forgets failures and hands leases over early.
--
-- failure_counts: the throttle's fleet-wide failure counts
-- (store.FailureCounter), one leaky bucket per key, kept as its
-- theoretical arrival time tat; the key is an opaque keyed hash. Rows
-- whose tat has passed hold nothing; counting deletes a few of them each
-- time.
CREATE TABLE failure_counts (
	key     bytea PRIMARY KEY,
	tat     timestamptz NOT NULL,
	forget  bigint NOT NULL -- microseconds per failure forgotten
);
CREATE INDEX failure_counts_tat ON failure_counts (tat);
-- leases: store.Leaser, one row per lease name.
CREATE TABLE leases (
	name       text COLLATE "C" PRIMARY KEY,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL
);
