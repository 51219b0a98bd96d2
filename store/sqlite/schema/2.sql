-- Version 2: withdrawn signing keys, the time a new key starts signing
-- (not_before), the access-token deny-list, the row Ping writes, an index
-- for the revocations of DeleteUser, and the public clients a client may
-- mint for (space-separated IDs).
ALTER TABLE clients ADD COLUMN mint_for TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE keys ADD COLUMN not_before INTEGER;
CREATE TABLE denied_access_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX denied_access_tokens_expires ON denied_access_tokens (expires_at);
CREATE TABLE heartbeat (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	beats INTEGER NOT NULL
);
CREATE INDEX families_subject ON families (subject);
