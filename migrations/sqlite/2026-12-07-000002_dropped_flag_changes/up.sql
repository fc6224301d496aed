-- A flag change of the host's that was not applied because the server changed the message
-- after the change was based on (the server's flags win): kept so the host can see it.
CREATE TABLE dropped_flag_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    folder_id BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    email_id BIGINT NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    uid BIGINT NOT NULL,
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    dropped_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX dropped_flag_changes_mailbox ON dropped_flag_changes (mailbox_id, id);
