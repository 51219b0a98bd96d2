CREATE TABLE clients (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB,
	grants      TEXT NOT NULL,
	scopes      TEXT NOT NULL,
	mint        INTEGER NOT NULL,
	created_at  INTEGER
);
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    INTEGER
);
CREATE TABLE keys (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	algorithm  TEXT NOT NULL,
	private    BLOB NOT NULL,
	created_at INTEGER,
	retired_at INTEGER
);
CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE families (
	id              TEXT PRIMARY KEY,
	client_id       TEXT NOT NULL,
	subject         TEXT NOT NULL,
	scope           TEXT NOT NULL,
	claims          BLOB,
	access_ttl      INTEGER NOT NULL,
	created_at      INTEGER,
	last_used_at    INTEGER,
	idle_expires_at INTEGER,
	expires_at      INTEGER,
	generation      INTEGER NOT NULL,
	revoked_at      INTEGER,
	revoke_reason   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX families_client_subject ON families (client_id, subject);
CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	family_id  TEXT NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	generation INTEGER NOT NULL,
	issued_at  INTEGER,
	rotated_at INTEGER,
	successor  BLOB
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
