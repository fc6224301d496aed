-- The SHA-256 fingerprint of the one certificate a mailbox accepts besides the trusted ones
-- (a self-signed server's), as AB:CD:… (95 characters).
ALTER TABLE mailboxes ADD COLUMN tls_pin TEXT;
