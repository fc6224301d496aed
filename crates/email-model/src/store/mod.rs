//! The store: every read and write of the mirror, behind one trait, for PostgreSQL and SQLite.
//!
//! Both implementations are generated from one body by `impl_store!`: the queries are written
//! once with diesel's DSL and type-checked against each backend. Where the backends differ
//! (multi-row INSERT on PostgreSQL; one row per statement on SQLite, where diesel-async cannot
//! batch — diesel_async#277 — and where a statement costs no round trip; NOTIFY on PostgreSQL
//! only) the macro takes the variant as an argument.

mod backends;
mod folder_identity;
mod rows;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::error::Result;
use crate::model::LoginNotice;
use crate::model::{
    BatchReport, CredentialEpisode, DroppedFlagChange, DroppedFlagChangeRecord, EmailBatch,
    EpisodeOpened, FlagUpdate, Folder, FolderCursors, FolderMergeReport, Mailbox,
    MailboxSettingsChange, MailboxSettingsUpdate, Membership, NewMailbox, NewUser, OutboxEntry,
    PendingFlagChange, RemapItem, RemapReport, RetryUid, ServerFolder, StoredEmail, SyncRunOutcome,
    SyncRunRecord, User,
};

pub use backends::{PgStore, SqliteStore, StoreOptions};

/// Every read and write the sync engine and the host application make.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Store: Send + Sync {
    fn create_user(&self, user: NewUser) -> impl Future<Output = Result<User>> + Send;
    fn users(&self) -> impl Future<Output = Result<Vec<User>>> + Send;
    fn user(&self, id: i64) -> impl Future<Output = Result<Option<User>>> + Send;
    fn set_user_enabled(&self, id: i64, enabled: bool) -> impl Future<Output = Result<()>> + Send;
    /// Changes the user's email and display name.
    fn set_user_details(
        &self,
        id: i64,
        email: String,
        name: String,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the user's capabilities.
    fn set_user_capabilities(
        &self,
        id: i64,
        capabilities: Vec<String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the user, its capabilities and its mailboxes with their mail.
    fn delete_user(&self, id: i64) -> impl Future<Output = Result<()>> + Send;

    /// Creates a mailbox; its secret is sealed with the store's keyring first.
    fn create_mailbox(&self, mailbox: NewMailbox) -> impl Future<Output = Result<Mailbox>> + Send;
    fn mailbox(&self, id: i64) -> impl Future<Output = Result<Option<Mailbox>>> + Send;
    fn mailboxes(&self) -> impl Future<Output = Result<Vec<Mailbox>>> + Send;
    /// The mailbox's password or refresh token, opened with the store's keyring.
    fn mailbox_secret(&self, id: i64) -> impl Future<Output = Result<Option<SecretString>>> + Send;
    /// Replaces the secret; resets the back-off and makes the mailbox due at once.
    fn set_mailbox_secret(
        &self,
        id: i64,
        secret: SecretString,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the secret and nothing else: for an OAuth2 refresh token the provider rotated
    /// (the mailbox's schedule and back-off stay as they are).
    fn replace_mailbox_secret(
        &self,
        id: i64,
        secret: SecretString,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Changes the first-sync window; a larger one backfills on the next run, a smaller one
    /// deletes nothing.
    fn set_first_sync_days(&self, id: i64, days: i32) -> impl Future<Output = Result<()>> + Send;
    /// Changes the mailbox's address and connection settings. When the host or the login
    /// changes, the mailbox is another account: its synced mail is deleted first when
    /// `reset` is set, and the change is refused with [`StoreError::OtherAccount`] when the
    /// mailbox holds mail and `reset` is not set, so that two accounts' mail never mixes.
    ///
    /// [`StoreError::OtherAccount`]: crate::StoreError::OtherAccount
    fn update_mailbox_settings(
        &self,
        id: i64,
        update: MailboxSettingsUpdate,
    ) -> impl Future<Output = Result<MailboxSettingsChange>> + Send;
    /// Deletes the mailbox and all its mail.
    fn delete_mailbox(&self, id: i64) -> impl Future<Output = Result<()>> + Send;

    /// Brings the stored folders in line with the server's list: new ones added (INBOX and Sent
    /// switched on), renames (same UIDVALIDITY, new name) keep their history, folders gone from
    /// the server are deleted when empty and kept, marked gone, when they hold synced mail.
    fn merge_folders(
        &self,
        mailbox_id: i64,
        server: Vec<ServerFolder>,
    ) -> impl Future<Output = Result<FolderMergeReport>> + Send;
    fn folders(&self, mailbox_id: i64) -> impl Future<Output = Result<Vec<Folder>>> + Send;
    /// Switches a folder's sync on or off; switching off keeps its mail.
    fn set_folder_sync(
        &self,
        folder_id: i64,
        enabled: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores a batch in one transaction: its emails (one per identity), their attachments,
    /// their memberships, and the folder's cursors. Replaying a batch changes nothing.
    fn store_batch(&self, batch: EmailBatch) -> impl Future<Output = Result<BatchReport>> + Send;
    /// Applies flag changes seen on the server and moves the folder's HIGHESTMODSEQ.
    fn update_flags(
        &self,
        folder_id: i64,
        uid_validity: u32,
        updates: Vec<FlagUpdate>,
        highest_modseq: Option<u64>,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// Removes the memberships of UIDs gone from the server. An email left in no folder is
    /// marked orphaned, not deleted: it may be a move whose other half comes later.
    fn remove_uids(
        &self,
        folder_id: i64,
        uid_validity: u32,
        uids: Vec<u32>,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// Deletes the mailbox's emails orphaned before `orphaned_before` (the grace period's end).
    fn purge_orphans(
        &self,
        mailbox_id: i64,
        orphaned_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize>> + Send;
    fn memberships(&self, folder_id: i64) -> impl Future<Output = Result<Vec<Membership>>> + Send;
    /// Where one email is: its folders, UIDs and flags.
    fn email_memberships(
        &self,
        email_id: i64,
    ) -> impl Future<Output = Result<Vec<Membership>>> + Send;
    fn email(&self, id: i64) -> impl Future<Output = Result<Option<StoredEmail>>> + Send;
    /// The mailbox's emails, newest first.
    fn emails(&self, mailbox_id: i64) -> impl Future<Output = Result<Vec<StoredEmail>>> + Send;

    /// Takes the mailbox's lease for `holder` until `until`, if nobody else holds a live one.
    fn acquire_lease(
        &self,
        mailbox_id: i64,
        holder: String,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn release_lease(
        &self,
        mailbox_id: i64,
        holder: String,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Claims the next mailbox due for sync and leases it to `holder`: active, sync on, with a
    /// secret, owner enabled (or a system mailbox), out of back-off, last success before
    /// `due_before` or a sync requested, lease free; never-synced first, then the stalest. On PostgreSQL the
    /// candidate is locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers claim different
    /// mailboxes.
    fn claim_due_mailbox(
        &self,
        holder: String,
        lease_until: DateTime<Utc>,
        due_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Mailbox>>> + Send;

    /// Pins the one certificate (SHA-256 fingerprint) the mailbox accepts besides the trusted
    /// ones, or removes the pin.
    fn set_tls_pin(&self, id: i64, pin: Option<String>) -> impl Future<Output = Result<()>> + Send;

    /// After a UIDVALIDITY change: `server` holds each new UID with the keys its message may be
    /// known by ([`crate::NewEmail::known_keys`], from its headers and size). A UID whose keys
    /// name exactly one email, which no other UID's keys name, gets its membership re-keyed
    /// (email rows untouched, no download); UIDs whose keys name several emails, or an email
    /// another UID's keys name too, are returned as ambiguous (to be fetched whole); UIDs of
    /// unknown keys are returned to be fetched; memberships under the old UIDVALIDITY that are
    /// not re-keyed go (their emails orphaned unless in another folder).
    fn remap_uid_validity(
        &self,
        folder_id: i64,
        new_uid_validity: u32,
        server: Vec<RemapItem>,
        cursors: FolderCursors,
    ) -> impl Future<Output = Result<RemapReport>> + Send;

    /// Records UIDs the server listed but did not return (one attempt more each).
    fn record_retry_uids(
        &self,
        folder_id: i64,
        uid_validity: u32,
        uids: Vec<u32>,
        error: String,
    ) -> impl Future<Output = Result<()>> + Send;
    fn retry_uids(
        &self,
        folder_id: i64,
        uid_validity: u32,
    ) -> impl Future<Output = Result<Vec<RetryUid>>> + Send;
    fn clear_retry_uids(
        &self,
        folder_id: i64,
        uid_validity: u32,
        uids: Vec<u32>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records a flag change made by the host application (see docs/schema.md for its SQL).
    fn record_local_flag_change(
        &self,
        email_id: i64,
        folder_id: i64,
        flag: String,
        set: bool,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn pending_flag_changes(
        &self,
        folder_id: i64,
    ) -> impl Future<Output = Result<Vec<PendingFlagChange>>> + Send;
    /// Deletes these pending changes once pushed, and records in the same transaction the ones
    /// the server's flags overrode (kept [`crate::DROPPED_FLAG_CHANGES_KEPT_DAYS`] days).
    fn settle_pending_flag_changes(
        &self,
        ids: Vec<i64>,
        dropped: Vec<DroppedFlagChange>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// A mailbox's dropped flag changes, newest first, `limit` of them before the id `before`.
    fn dropped_flag_changes(
        &self,
        mailbox_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DroppedFlagChangeRecord>>> + Send;

    /// Opens a credential-failure episode unless one is open, and queues its notices (push and
    /// email) for the owner, or for a system mailbox for every enabled holder of the
    /// notification capability.
    fn open_credential_episode(
        &self,
        mailbox_id: i64,
        reason: String,
    ) -> impl Future<Output = Result<EpisodeOpened>> + Send;
    /// The mailbox's open credential episode, if any.
    fn open_episode(
        &self,
        mailbox_id: i64,
    ) -> impl Future<Output = Result<Option<CredentialEpisode>>> + Send;
    /// Closes the open episode, if any, and withdraws its undelivered notices.
    fn close_credential_episode(
        &self,
        mailbox_id: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The open episodes a user is to be shown at login.
    fn login_notices(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Vec<CredentialEpisode>>> + Send;
    fn undelivered_notifications(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>>> + Send;
    fn mark_notification_delivered(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    /// Queues one email reminder per recipient for the episodes still open that were opened
    /// before `opened_before` and have had none; returns how many were queued.
    fn queue_reminders(
        &self,
        opened_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// A failed delivery: counted, and tried again at `retry_at`.
    fn mark_notification_failed(
        &self,
        id: i64,
        error: String,
        retry_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The login notices the user has not seen yet (open episodes of his mailboxes, or of
    /// system mailboxes when he holds the capability — also when granted during the episode),
    /// marked seen: each user sees each episode once.
    fn take_login_notices(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Vec<LoginNotice>>> + Send;

    /// Sends `payload` to database listeners of `channel` (PostgreSQL NOTIFY; nothing on SQLite).
    fn notify_listeners(
        &self,
        channel: String,
        payload: String,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Starts a run: the mailbox is in progress.
    /// Asks the lease's holder to sync the mailbox (sets `sync_requested_at` to now).
    fn request_sync(&self, mailbox_id: i64) -> impl Future<Output = Result<DateTime<Utc>>> + Send;
    /// Clears a sync request made at or before `up_to` (one made later stays).
    fn clear_sync_request(
        &self,
        mailbox_id: i64,
        up_to: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The mailbox's latest sync runs, newest first.
    fn sync_runs(
        &self,
        mailbox_id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SyncRunRecord>>> + Send;
    fn start_sync_run(&self, mailbox_id: i64) -> impl Future<Output = Result<i64>> + Send;
    /// Ends a run and records its outcome on the mailbox (state, error, back-off, counters).
    fn finish_sync_run(
        &self,
        run_id: i64,
        outcome: SyncRunOutcome,
    ) -> impl Future<Output = Result<()>> + Send;
}
