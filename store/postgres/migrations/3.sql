-- Version 3: a family is one row however often it rotates. families
-- gains the hash of its current refresh token (token_hash, generation
-- generation), of the token before it (previous_hash, NULL at generation
-- 0) and the time the current one replaced it (rotated_at, NULL at
-- generation 0); refresh_tokens, a row per rotation, goes.
--
-- Tokens issued before this version ("rt_…", which name no family) keep
-- working: legacy_tokens maps the hash of each family's current and
-- previous token to it (store.LegacyTokens), and loses a family's rows
-- when the family goes. The rows of older rotated tokens are dropped:
-- such a token presented again is unknown (invalid_grant) instead of
-- revoking its family.
ALTER TABLE families
	ADD COLUMN token_hash    bytea,
	ADD COLUMN previous_hash bytea,
	ADD COLUMN rotated_at    timestamptz;
UPDATE families f SET token_hash = t.hash
	FROM refresh_tokens t WHERE t.family_id = f.id AND t.generation = f.generation;
UPDATE families f SET previous_hash = t.hash, rotated_at = t.rotated_at
	FROM refresh_tokens t WHERE t.family_id = f.id AND t.generation = f.generation - 1;
-- Version 1 created a family with its first token in one transaction and
-- deleted tokens only with their family, so every family has its current
-- token. Should one not, it keeps its row (listed, revocable) with an
-- empty hash, which no token matches.
UPDATE families SET token_hash = '\x' WHERE token_hash IS NULL;
ALTER TABLE families ALTER COLUMN token_hash SET NOT NULL;
CREATE TABLE legacy_tokens (
	hash       bytea PRIMARY KEY,
	family_id  text NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	generation bigint NOT NULL
);
CREATE INDEX legacy_tokens_family ON legacy_tokens (family_id);
INSERT INTO legacy_tokens (hash, family_id, generation)
	SELECT t.hash, t.family_id, t.generation FROM refresh_tokens t JOIN families f ON f.id = t.family_id
	WHERE t.generation >= f.generation - 1;
DROP TABLE refresh_tokens;
