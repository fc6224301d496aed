-- The mirror's schema. Timestamps are UTC (TIMESTAMP without zone, written by imap-sync in UTC).
-- docs/schema.md describes every table, column and delete rule.

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

CREATE TABLE user_capabilities (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    capability TEXT NOT NULL,
    PRIMARY KEY (user_id, capability)
);
CREATE INDEX user_capabilities_by_capability ON user_capabilities (capability);

CREATE TABLE mailboxes (
    id BIGSERIAL PRIMARY KEY,
    -- NULL for a system mailbox.
    owner_user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    security TEXT NOT NULL CHECK (security IN ('none', 'starttls', 'tls')),
    imap_user TEXT NOT NULL,
    auth_kind TEXT NOT NULL CHECK (auth_kind IN ('password', 'oauth2')),
    -- AEAD-encrypted secret (password or OAuth2 refresh token) and the id of its key.
    secret_ciphertext BYTEA,
    secret_key_id TEXT,
    -- OAuth2 client settings (JSON, no secret in it).
    oauth_settings TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    sync_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    first_sync_days INTEGER NOT NULL DEFAULT 365 CHECK (first_sync_days > 0),
    sync_state TEXT NOT NULL DEFAULT 'never' CHECK (sync_state IN ('never', 'in_progress', 'success', 'failure')),
    last_error TEXT,
    last_sync_started_at TIMESTAMP,
    last_sync_finished_at TIMESTAMP,
    last_success_at TIMESTAMP,
    lease_holder TEXT,
    lease_expires_at TIMESTAMP,
    backoff_until TIMESTAMP,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX mailboxes_by_owner ON mailboxes (owner_user_id);
CREATE INDEX mailboxes_due ON mailboxes (active, sync_enabled, last_success_at);

CREATE TABLE folders (
    id BIGSERIAL PRIMARY KEY,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    full_name TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_full_name TEXT,
    delimiter TEXT,
    folder_type TEXT NOT NULL,
    selectable BOOLEAN NOT NULL DEFAULT TRUE,
    sync_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    -- Set when the folder disappeared from the server while holding synced mail.
    gone_since TIMESTAMP,
    uid_validity BIGINT,
    uid_next BIGINT,
    highest_modseq BIGINT,
    -- Cursor 1: every UID up to this one that is in the window has been stored.
    synced_up_to_uid BIGINT NOT NULL DEFAULT 0,
    -- Cursor 2: in-window mail with a UID below this one is still to be fetched (NULL: none).
    backfill_below_uid BIGINT,
    -- The oldest date the first-sync window has reached: enlarging the window backfills below it.
    window_start TIMESTAMP,
    synchronized_at TIMESTAMP,
    failure_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (mailbox_id, full_name)
);

CREATE TABLE emails (
    id BIGSERIAL PRIMARY KEY,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    -- Identity within the mailbox (email-model's identity rules): no duplicate can exist.
    identity TEXT NOT NULL,
    message_id TEXT,
    subject TEXT,
    from_name TEXT,
    from_email TEXT,
    -- Address lists as JSON arrays of {"name","email"}.
    sender TEXT,
    to_addresses TEXT NOT NULL DEFAULT '[]',
    cc_addresses TEXT NOT NULL DEFAULT '[]',
    bcc_addresses TEXT NOT NULL DEFAULT '[]',
    reply_to_addresses TEXT NOT NULL DEFAULT '[]',
    sent_at TIMESTAMP,
    received_at TIMESTAMP,
    internal_date TIMESTAMP,
    importance SMALLINT NOT NULL DEFAULT 0,
    in_reply_to TEXT,
    -- JSON array of Message-IDs.
    references_ids TEXT NOT NULL DEFAULT '[]',
    thread_id TEXT NOT NULL,
    gmail_message_id TEXT,
    gmail_thread_id TEXT,
    size BIGINT,
    body_text TEXT,
    body_html TEXT,
    body_state TEXT NOT NULL CHECK (body_state IN ('stored', 'headers_only', 'too_large')),
    -- JSON array of problems met while parsing.
    parse_problems TEXT NOT NULL DEFAULT '[]',
    -- Set when the email's last membership went; deleted after the grace period.
    orphaned_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    UNIQUE (mailbox_id, identity)
);
CREATE INDEX emails_by_mailbox_received ON emails (mailbox_id, received_at DESC);
CREATE INDEX emails_by_thread ON emails (mailbox_id, thread_id);
CREATE INDEX emails_by_message_id ON emails (mailbox_id, message_id);
CREATE INDEX emails_orphaned ON emails (orphaned_at) WHERE orphaned_at IS NOT NULL;

-- Which Message-IDs belong to which thread, so that a thread id stays stable as replies arrive
-- (and when a reply arrives before what it answers).
CREATE TABLE thread_refs (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, message_id)
);

CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    email_id BIGINT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_id TEXT,
    inline BOOLEAN NOT NULL,
    -- NULL when not stored: over the per-attachment limit.
    content BYTEA,
    UNIQUE (email_id, position)
);

CREATE TABLE memberships (
    id BIGSERIAL PRIMARY KEY,
    folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    uid_validity BIGINT NOT NULL,
    -- RFC 3501: UIDs are non-zero 32-bit numbers.
    uid BIGINT NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    email_id BIGINT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    -- Space-separated IMAP flags and keywords.
    flags TEXT NOT NULL DEFAULT '',
    modseq BIGINT,
    UNIQUE (folder_id, uid_validity, uid)
);
CREATE INDEX memberships_by_email ON memberships (email_id);

CREATE TABLE retry_uids (
    folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    uid_validity BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMP,
    PRIMARY KEY (folder_id, uid_validity, uid)
);

CREATE TABLE pending_flag_changes (
    id BIGSERIAL PRIMARY KEY,
    email_id BIGINT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    flag TEXT NOT NULL,
    set_flag BOOLEAN NOT NULL,
    based_on_modseq BIGINT,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX pending_flag_changes_by_folder ON pending_flag_changes (folder_id);

CREATE TABLE credential_episodes (
    id BIGSERIAL PRIMARY KEY,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE UNIQUE INDEX one_open_episode_per_mailbox ON credential_episodes (mailbox_id) WHERE closed_at IS NULL;

CREATE TABLE notification_outbox (
    id BIGSERIAL PRIMARY KEY,
    episode_id BIGINT NOT NULL REFERENCES credential_episodes (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    -- 'notice' when the episode opens; 'reminder' after the configured delay (off by default).
    kind TEXT NOT NULL DEFAULT 'notice' CHECK (kind IN ('notice', 'reminder')),
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    withdrawn_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    -- A failed delivery waits until then (NULL: at once).
    next_attempt_at TIMESTAMP,
    UNIQUE (episode_id, user_id, channel, kind)
);

-- Which user has seen the login notice of which episode: each user sees each episode once.
CREATE TABLE login_notices_shown (
    episode_id BIGINT NOT NULL REFERENCES credential_episodes (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shown_at TIMESTAMP NOT NULL,
    PRIMARY KEY (episode_id, user_id)
);
CREATE INDEX notification_outbox_undelivered ON notification_outbox (created_at) WHERE delivered_at IS NULL AND withdrawn_at IS NULL;

CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome TEXT NOT NULL DEFAULT 'in_progress',
    message TEXT,
    emails_new BIGINT NOT NULL DEFAULT 0,
    emails_changed BIGINT NOT NULL DEFAULT 0,
    emails_removed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sync_runs_by_mailbox ON sync_runs (mailbox_id, started_at DESC);

-- Bodies and attachments are TOASTed: lz4 compresses several times faster than the default
-- pglz at a similar ratio, and the initial sync is bound by it. Servers built without lz4
-- keep pglz.
DO $$
BEGIN
    ALTER TABLE emails
        ALTER COLUMN body_text SET COMPRESSION lz4,
        ALTER COLUMN body_html SET COMPRESSION lz4;
    ALTER TABLE attachments ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available: bodies keep pglz compression';
END
$$;
