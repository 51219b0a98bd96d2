-- Version 6: the authorization code flow. A client gains its registered
-- redirect URIs and post-logout redirect URIs, its resource indicators
-- (each space-separated: URIs hold no white space) and whether it is a
-- third party the user must consent to; a family, the browser session
-- that started it (session_id, '' for none). New tables: the issued
-- authorization codes, known by their hash; the browser sessions, whose
-- cookie secret is known by its hash; and users' consents to clients.
ALTER TABLE clients
	ADD COLUMN redirect_uris             text NOT NULL DEFAULT '',
	ADD COLUMN post_logout_redirect_uris text NOT NULL DEFAULT '',
	ADD COLUMN third_party               boolean NOT NULL DEFAULT false,
	ADD COLUMN resources                 text NOT NULL DEFAULT '';
ALTER TABLE families ADD COLUMN session_id text NOT NULL DEFAULT '';
CREATE INDEX families_session ON families (session_id) WHERE session_id <> '';
CREATE TABLE authorization_codes (
	hash           bytea PRIMARY KEY,
	client_id      text NOT NULL,
	redirect_uri   text NOT NULL,
	code_challenge text NOT NULL,
	subject        text NOT NULL,
	scope          text NOT NULL,
	nonce          text NOT NULL,
	resources      text NOT NULL, -- space-separated
	session_id     text NOT NULL,
	auth_time      timestamptz,
	created_at     timestamptz,
	expires_at     timestamptz,
	redeemed_at    timestamptz,
	family_id      text NOT NULL
);
CREATE INDEX authorization_codes_client ON authorization_codes (client_id);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
CREATE TABLE sessions (
	id         text COLLATE "C" PRIMARY KEY,
	hash       bytea,
	subject    text NOT NULL,
	auth_time  timestamptz,
	created_at timestamptz,
	expires_at timestamptz,
	ended_at   timestamptz
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE TABLE consents (
	subject    text COLLATE "C" NOT NULL,
	client_id  text COLLATE "C" NOT NULL,
	scopes     text NOT NULL, -- space-separated
	granted_at timestamptz,
	PRIMARY KEY (subject, client_id)
);
CREATE INDEX consents_client ON consents (client_id);
