DROP INDEX emails_by_header_key;
ALTER TABLE emails DROP COLUMN header_key;
