-- Version 4: browser apps. A client may list the browser origins allowed
-- to use it (origins, space-separated "scheme://host[:port]") and keep its
-- refresh tokens in the server's HttpOnly cookie (cookie).
ALTER TABLE clients
	ADD COLUMN origins text NOT NULL DEFAULT '',
	ADD COLUMN cookie  boolean NOT NULL DEFAULT false;
