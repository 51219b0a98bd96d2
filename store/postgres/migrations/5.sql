-- Version 5: where each account has authenticated from lately
-- (store.FamiliarSources), so that the throttle's exemption of an
-- account's usual sources holds on every instance and across restarts.
-- account and source are opaque HMACs; a row lasts until expires_at.
CREATE TABLE familiar_sources (
	account    bytea       NOT NULL,
	source     bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (account, source)
);
CREATE INDEX familiar_sources_expires_at ON familiar_sources (expires_at);
