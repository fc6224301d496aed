-- "Sync now" asked while another process holds the mailbox's lease: the holder syncs when it
-- sees this (its watcher checks at each wake-up) and clears it.
ALTER TABLE mailboxes ADD COLUMN sync_requested_at TIMESTAMP;
