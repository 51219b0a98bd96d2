-- Version 3: a family is one row however often it rotates. Refresh tokens
-- now carry their family and generation under the server's MAC, so a
-- rotated token needs no row to be recognised: a family keeps the hash of
-- its current token and of the previous one (for the grace window).
--
-- Tokens issued before this version ("rt_…", which name no family) keep
-- working: legacy_tokens maps the hash of each family's current and
-- previous token to it, and loses a family's rows when the family ends.
-- The rows of older rotated tokens are dropped: such a token presented
-- again is unknown (invalid_grant) instead of revoking its family.
ALTER TABLE families ADD COLUMN token_hash BLOB;
ALTER TABLE families ADD COLUMN previous_hash BLOB;
ALTER TABLE families ADD COLUMN rotated_at INTEGER;
UPDATE families SET
	token_hash = (SELECT t.hash FROM refresh_tokens t WHERE t.family_id = families.id AND t.generation = families.generation),
	previous_hash = (SELECT t.hash FROM refresh_tokens t WHERE t.family_id = families.id AND t.generation = families.generation - 1),
	rotated_at = (SELECT t.rotated_at FROM refresh_tokens t WHERE t.family_id = families.id AND t.generation = families.generation - 1);
CREATE TABLE legacy_tokens (
	hash       BLOB PRIMARY KEY,
	family_id  TEXT NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	generation INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX legacy_tokens_family ON legacy_tokens (family_id);
INSERT INTO legacy_tokens (hash, family_id, generation)
	SELECT t.hash, t.family_id, t.generation FROM refresh_tokens t JOIN families f ON f.id = t.family_id
	WHERE t.generation >= f.generation - 1;
DROP TABLE refresh_tokens;
