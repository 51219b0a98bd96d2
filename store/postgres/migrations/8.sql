-- Version 8: the resource indicators (RFC 8707) a family's access tokens
-- are for (store.Family.Audience), space-separated; '' (every family
-- stored before this version) is the server's default audience.
ALTER TABLE families ADD COLUMN audience text NOT NULL DEFAULT '';
