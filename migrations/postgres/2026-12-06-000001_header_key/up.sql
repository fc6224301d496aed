-- What a UIDVALIDITY re-key matches on: the identity without its body digest. Rows from before
-- content keys keep their identity (a digest of Date, From, To and Subject) as their key.
ALTER TABLE emails ADD COLUMN header_key TEXT;
UPDATE emails SET header_key = identity;
CREATE INDEX emails_by_header_key ON emails (mailbox_id, header_key);
