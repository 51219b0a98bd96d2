-- Version 5: the authorization code flow. A client gains its registered
-- redirect URIs and post-logout redirect URIs, its resource indicators
-- (each space-separated: URIs hold no white space) and whether it is a
-- third party the user must consent to; a family, the browser session
-- that started it (session_id, '' for none). New tables: the issued
-- authorization codes, known by their hash; the browser sessions, whose
-- cookie secret is known by its hash; and users' consents to clients.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN third_party INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE families ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
CREATE INDEX families_session ON families (session_id) WHERE session_id <> '';
CREATE TABLE authorization_codes (
	hash           BLOB PRIMARY KEY,
	client_id      TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	subject        TEXT NOT NULL,
	scope          TEXT NOT NULL,
	nonce          TEXT NOT NULL,
	resources      TEXT NOT NULL, -- space-separated
	session_id     TEXT NOT NULL,
	auth_time      INTEGER,
	created_at     INTEGER,
	expires_at     INTEGER,
	redeemed_at    INTEGER,
	family_id      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX authorization_codes_client ON authorization_codes (client_id);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	hash       BLOB,
	subject    TEXT NOT NULL,
	auth_time  INTEGER,
	created_at INTEGER,
	expires_at INTEGER,
	ended_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_subject ON sessions (subject);
CREATE TABLE consents (
	subject    TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL, -- space-separated
	granted_at INTEGER,
	PRIMARY KEY (subject, client_id)
) WITHOUT ROWID;
CREATE INDEX consents_client ON consents (client_id);
