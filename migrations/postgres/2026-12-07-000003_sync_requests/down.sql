ALTER TABLE mailboxes DROP COLUMN sync_requested_at;
