-- Version 7: what a signing key signs (store.Key.Use): '' access tokens
-- (every key stored before this version), 'id' OpenID Connect ID tokens.
-- Keys of each use rotate apart.
ALTER TABLE keys ADD COLUMN use text NOT NULL DEFAULT '';
