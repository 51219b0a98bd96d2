-- Version 8: a client's previous secret (store.Client.PreviousSecretHash),
-- which a secret rotation keeps working until previous_secret_expires_at
-- (microseconds since the epoch); NULL for none, as for every client
-- stored before this version.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
