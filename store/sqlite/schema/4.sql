-- Version 4: browser apps. A client may list the browser origins allowed
-- to use it (origins, space-separated "scheme://host[:port]") and keep its
-- refresh tokens in the server's HttpOnly cookie (cookie, 0 or 1).
ALTER TABLE clients ADD COLUMN origins TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN cookie INTEGER NOT NULL DEFAULT 0;
