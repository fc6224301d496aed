-- The server's own id of a folder (RFC 8474 MAILBOXID), where the server offers OBJECTID: the
-- strongest evidence that a folder under a new name is the one the mirror knows.
ALTER TABLE folders ADD COLUMN server_id TEXT;
