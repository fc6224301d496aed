//! The domain types: plain Rust, what the stores take and return.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The capability that makes a user receive the credential notices of system mailboxes.
pub const CREDENTIAL_NOTIFICATIONS_CAPABILITY: &str = "imap_sync_origin_credential_notifications";

/// Default first-sync window: the last year.
pub const DEFAULT_FIRST_SYNC_DAYS: i32 = 365;

/// Attachments larger than this are recorded without their content (default 25 MB).
pub const DEFAULT_ATTACHMENT_LIMIT: u64 = 25 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub enabled: bool,
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub enabled: bool,
    pub capabilities: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Starttls,
    Tls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "none" => Self::None,
            "starttls" => Self::Starttls,
            _ => Self::Tls,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    Password,
    #[serde(rename = "oauth2")]
    OAuth2,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::OAuth2 => "oauth2",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        if text == "oauth2" {
            Self::OAuth2
        } else {
            Self::Password
        }
    }
}

/// Where and as whom a mailbox logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct NewMailbox {
    /// `None` for a system mailbox.
    pub owner_user_id: Option<i64>,
    pub email: String,
    pub imap: ImapSettings,
    pub auth_kind: AuthKind,
    /// The password, or the OAuth2 refresh token; sealed before it is stored.
    pub secret: Option<SecretString>,
    /// OAuth2 client settings as JSON (no secret in it).
    pub oauth_settings: Option<String>,
    pub first_sync_days: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Never,
    InProgress,
    Success,
    Failure,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "in_progress" => Self::InProgress,
            "success" => Self::Success,
            "failure" => Self::Failure,
            _ => Self::Never,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: i64,
    pub owner_user_id: Option<i64>,
    pub email: String,
    pub imap: ImapSettings,
    pub auth_kind: AuthKind,
    pub has_secret: bool,
    pub oauth_settings: Option<String>,
    pub active: bool,
    pub sync_enabled: bool,
    pub first_sync_days: i32,
    pub sync_state: SyncState,
    pub last_error: Option<String>,
    pub last_sync_started_at: Option<DateTime<Utc>>,
    pub last_sync_finished_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub backoff_until: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// SHA-256 fingerprint (`AB:CD:…`) of the one certificate accepted besides the trusted
    /// ones: a self-signed server's.
    pub tls_pin: Option<String>,
    /// A "sync now" asked while another process held the lease: its holder syncs and clears it.
    pub sync_requested_at: Option<DateTime<Utc>>,
}

/// A finished or running sync of one mailbox, as `sync_runs` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRunRecord {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// running, success, failure…
    pub outcome: String,
    pub message: Option<String>,
    pub emails_new: i64,
    pub emails_changed: i64,
    pub emails_removed: i64,
}

impl Mailbox {
    pub fn is_system(&self) -> bool {
        self.owner_user_id.is_none()
    }
}

/// New address and connection settings for [`crate::Store::update_mailbox_settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSettingsUpdate {
    pub email: String,
    pub imap: ImapSettings,
    /// Delete the synced mail when the new settings are another account.
    pub reset: bool,
}

/// What [`crate::Store::update_mailbox_settings`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxSettingsChange {
    /// The host or the login changed.
    pub other_account: bool,
    /// The mailbox's folders and mail were deleted; it starts over.
    pub data_reset: bool,
}

impl ImapSettings {
    /// Same server and login (host names compare without case).
    pub fn same_account(&self, other: &ImapSettings) -> bool {
        self.host.eq_ignore_ascii_case(&other.host) && self.user == other.user
    }
}

/// A folder as the server lists it, for [`crate::Store::merge_folders`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFolder {
    pub full_name: String,
    pub name: String,
    pub parent_full_name: Option<String>,
    pub delimiter: Option<String>,
    /// inbox, sent, drafts, trash, junk, archive, all, other.
    pub folder_type: String,
    pub selectable: bool,
    /// When known (from STATUS): with the name history, lets a rename keep its history.
    pub uid_validity: Option<u32>,
    /// The server's own id of the folder (RFC 8474 MAILBOXID), when it offers one.
    pub server_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub mailbox_id: i64,
    pub full_name: String,
    pub name: String,
    pub parent_full_name: Option<String>,
    pub delimiter: Option<String>,
    pub folder_type: String,
    pub selectable: bool,
    pub sync_enabled: bool,
    pub gone_since: Option<DateTime<Utc>>,
    pub uid_validity: Option<u32>,
    pub uid_next: Option<u32>,
    pub highest_modseq: Option<u64>,
    pub synced_up_to_uid: u32,
    pub backfill_below_uid: Option<u32>,
    /// The oldest date the first-sync window has reached in this folder.
    pub window_start: Option<DateTime<Utc>>,
    pub synchronized_at: Option<DateTime<Utc>>,
    pub failure_count: i32,
    /// The server's own id of the folder (RFC 8474 MAILBOXID), when it offers one.
    pub server_id: Option<String>,
}

/// What a folder merge changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderMergeReport {
    pub added: Vec<String>,
    /// (old full name, new full name)
    pub renamed: Vec<(String, String)>,
    /// Gone from the server but kept: they hold synced mail.
    pub kept_gone: Vec<String>,
    /// Gone from the server and empty: deleted.
    pub deleted: Vec<String>,
    /// Back on the server after being marked gone.
    pub returned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyState {
    Stored,
    #[default]
    HeadersOnly,
    /// Over the download limit: headers only.
    TooLarge,
}

impl BodyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::HeadersOnly => "headers_only",
            Self::TooLarge => "too_large",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "stored" => Self::Stored,
            "too_large" => Self::TooLarge,
            _ => Self::HeadersOnly,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub content_id: Option<String>,
    pub inline: bool,
    pub content: Vec<u8>,
}

/// A fetched message to store, with its place in the folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEmail {
    pub uid: u32,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<Address>,
    pub sender: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub sent_at: Option<DateTime<Utc>>,
    pub internal_date: Option<DateTime<Utc>>,
    /// -1 low, 0 normal, 1 high.
    pub importance: i16,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub gmail_message_id: Option<u64>,
    pub gmail_thread_id: Option<u64>,
    pub email_id: Option<String>,
    pub size: Option<u64>,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub body_state: BodyState,
    pub attachments: Vec<NewAttachment>,
    pub parse_problems: Vec<String>,
    /// What tells this message's bytes from another's; identity is built from it.
    pub content: Option<crate::identity::ContentKey>,
}

impl NewEmail {
    /// This message's identity within its mailbox (see [`crate::identity`]): what makes two
    /// copies one email.
    pub fn identity(&self) -> String {
        self.with_identity_input(crate::identity::identity)
    }

    /// What a UIDVALIDITY re-key matches on (headers and size, no body): see
    /// [`crate::identity::header_key`].
    pub fn header_key(&self) -> String {
        self.with_identity_input(crate::identity::header_key)
    }

    /// The keys an email of this message may be known by: its header key, and the identity
    /// rows stored before content keys carry.
    pub fn known_keys(&self) -> Vec<String> {
        let mut keys = vec![self.header_key()];
        let legacy = self.with_identity_input(crate::identity::legacy_identity);
        if !keys.contains(&legacy) {
            keys.push(legacy);
        }
        keys
    }

    fn with_identity_input(
        &self,
        key: fn(&crate::identity::IdentityInput<'_>) -> String,
    ) -> String {
        let to: Vec<&str> = self.to.iter().filter_map(|a| a.email.as_deref()).collect();
        key(&crate::identity::IdentityInput {
            message_id: self.message_id.as_deref(),
            date: self.sent_at,
            from: self.from.as_ref().and_then(|a| a.email.as_deref()),
            to: &to,
            subject: self.subject.as_deref(),
            gmail_message_id: self.gmail_message_id,
            email_id: self.email_id.as_deref(),
            content: self.content.as_ref(),
        })
    }
}

/// The cursors a batch moves, in the same transaction as its emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderCursors {
    /// New value of "every in-window UID up to here is stored" (never moves backwards).
    pub synced_up_to_uid: Option<u32>,
    /// New backfill point: `Some(None)` when the backfill is complete.
    pub backfill_below_uid: Option<Option<u32>>,
    pub uid_next: Option<u32>,
    pub highest_modseq: Option<u64>,
    /// New oldest date reached by the window (only ever moves back).
    pub window_start: Option<DateTime<Utc>>,
}

/// One transaction's worth of fetched mail for one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailBatch {
    pub mailbox_id: i64,
    pub folder_id: i64,
    pub uid_validity: u32,
    pub emails: Vec<NewEmail>,
    pub cursors: FolderCursors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchReport {
    /// Emails created by this batch.
    pub new_emails: usize,
    /// Messages that were already known as an email (another folder, a replay).
    pub known_emails: usize,
    pub memberships: usize,
}

/// An email as the mirror holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmail {
    pub id: i64,
    pub mailbox_id: i64,
    pub identity: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub sent_at: Option<DateTime<Utc>>,
    pub internal_date: Option<DateTime<Utc>>,
    pub thread_id: String,
    pub body_state: BodyState,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub orphaned_at: Option<DateTime<Utc>>,
    pub attachments: Vec<StoredAttachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub content_id: Option<String>,
    pub inline: bool,
    /// `None`: not stored, over the attachment limit.
    pub content: Option<Vec<u8>>,
}

/// One email's place in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub folder_id: i64,
    pub uid_validity: u32,
    pub uid: u32,
    pub email_id: i64,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
}

/// A flag change seen on the server, for [`crate::Store::update_flags`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: u32,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
}

/// What a UIDVALIDITY remap did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemapReport {
    /// Memberships re-keyed to a new UID: known mail, not downloaded again.
    pub remapped: usize,
    /// Old memberships whose message is no longer on the server.
    pub dropped: usize,
    /// New UIDs in the window whose identity the mailbox does not know: the only mail to fetch.
    pub to_fetch: Vec<u32>,
    /// New UIDs whose header key names several emails, or one email that several UIDs share:
    /// fetched whole, whatever the window, and matched by identity.
    pub ambiguous: Vec<u32>,
    // Both lists are recorded as retry UIDs in the remap's transaction: a run killed before
    // fetching them leaves them due, never covered by the cursor.
}

/// One message of a folder whose UIDVALIDITY changed, as a headers-only fetch saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemapItem {
    pub uid: u32,
    /// The keys an email of this message may be known by ([`NewEmail::known_keys`]).
    pub keys: Vec<String>,
    /// The message's flags and MODSEQ in the new UIDVALIDITY: what the re-keyed membership
    /// holds (MODSEQs of the old generation mean nothing in the new one).
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
    /// Inside the mailbox's first-sync window: fetched when its email is unknown.
    pub in_window: bool,
}

/// A UID the server listed but did not return, to try again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryUid {
    pub uid: u32,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// A flag change made by the host application, waiting to be pushed to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFlagChange {
    pub id: i64,
    pub email_id: i64,
    pub folder_id: i64,
    /// `\Seen`, `\Flagged`, a keyword…
    pub flag: String,
    /// `true` to set the flag, `false` to clear it.
    pub set: bool,
    /// The membership's MODSEQ the change was based on, for UNCHANGEDSINCE.
    pub based_on_modseq: Option<u64>,
}

/// A host flag change that was not applied: the server changed the message after the change
/// was based on, and the server's flags win (ARCHITECTURE.md's conflict rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFlagChange {
    pub folder_id: i64,
    pub email_id: i64,
    pub uid: u32,
    /// What the host asked for, as `+\Flagged -\Seen`.
    pub change: String,
    pub reason: String,
}

/// A [`DroppedFlagChange`] as recorded, for the host to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFlagChangeRecord {
    pub id: i64,
    pub mailbox_id: i64,
    pub folder_id: i64,
    pub email_id: i64,
    pub uid: u32,
    pub change: String,
    pub reason: String,
    pub dropped_at: DateTime<Utc>,
}

/// How long dropped flag changes are kept.
pub const DROPPED_FLAG_CHANGES_KEPT_DAYS: i64 = 30;

/// A period during which a mailbox's credentials are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialEpisode {
    pub id: i64,
    pub mailbox_id: i64,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The PostgreSQL channel notified when notices are queued, so a dispatcher wakes at once.
pub const OUTBOX_NOTIFY_CHANNEL: &str = "imap_sync_outbox";

/// Channels that deliver a notice from the outbox; the login notice is read, not sent.
pub const OUTBOX_CHANNELS: [&str; 2] = ["push", "email"];

/// An undelivered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub episode_id: i64,
    pub mailbox_id: i64,
    pub mailbox_email: String,
    /// The IMAP login and host whose credentials failed.
    pub imap_user: String,
    pub imap_host: String,
    pub opened_at: DateTime<Utc>,
    pub user_id: i64,
    pub user_email: String,
    pub channel: String,
    pub reason: String,
    pub attempts: i32,
    /// A reminder of a notice already sent, while the episode stays open.
    pub reminder: bool,
}

/// What opening an episode did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeOpened {
    pub episode: CredentialEpisode,
    /// False when an episode was already open: retries notify nobody again.
    pub is_new: bool,
    /// Who will be told (empty for a system mailbox nobody holds the capability for).
    pub recipients: Vec<i64>,
}

/// How a sync run ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRunOutcome {
    pub success: bool,
    pub message: Option<String>,
    pub emails_new: i64,
    pub emails_changed: i64,
    pub emails_removed: i64,
    /// When a failed mailbox may be tried again.
    pub backoff_until: Option<DateTime<Utc>>,
    /// A success that stopped early (time budget, shutdown): the mailbox stays due, so the rest
    /// follows at the next run rather than one interval later.
    pub partial: bool,
}

/// A login notice (Oro's flash message): an open credential episode a user may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginNotice {
    pub episode_id: i64,
    pub mailbox_id: i64,
    pub mailbox_email: String,
    pub imap_user: String,
    pub imap_host: String,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
}
