-- Version 1: every table of the store. Identifiers and names sort
-- bytewise (COLLATE "C"), as the other backends order them. Times are
-- timestamptz (microseconds); NULL stands for the zero time.
CREATE TABLE clients (
	id          text COLLATE "C" PRIMARY KEY,
	secret_hash bytea,
	grants      text NOT NULL,  -- space-separated
	scopes      text NOT NULL,  -- space-separated
	mint        boolean NOT NULL,
	mint_for    text NOT NULL,  -- space-separated client IDs
	created_at  timestamptz
);
CREATE TABLE users (
	name          text COLLATE "C" PRIMARY KEY,
	password_hash text NOT NULL,
	created_at    timestamptz
);
CREATE TABLE keys (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id         text NOT NULL UNIQUE,
	algorithm  text NOT NULL,
	private    bytea NOT NULL,
	created_at timestamptz,
	not_before timestamptz,
	retired_at timestamptz,
	revoked_at timestamptz
);
CREATE TABLE secrets (
	name  text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE families (
	id              text COLLATE "C" PRIMARY KEY,
	client_id       text NOT NULL,
	subject         text NOT NULL,
	scope           text NOT NULL,
	claims          bytea,
	access_ttl      bigint NOT NULL, -- nanoseconds
	created_at      timestamptz,
	last_used_at    timestamptz,
	idle_expires_at timestamptz,
	expires_at      timestamptz,
	generation      bigint NOT NULL,
	revoked_at      timestamptz,
	revoke_reason   text NOT NULL DEFAULT ''
);
CREATE INDEX families_client_subject ON families (client_id, subject);
CREATE INDEX families_subject ON families (subject);
CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	family_id  text NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	generation bigint NOT NULL,
	issued_at  timestamptz,
	rotated_at timestamptz,
	successor  bytea
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE denied_access_tokens (
	jti        text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX denied_access_tokens_expires ON denied_access_tokens (expires_at);
CREATE TABLE heartbeat (
	id    integer PRIMARY KEY CHECK (id = 1),
	beats bigint NOT NULL
);
