ALTER TABLE folders DROP COLUMN server_id;
