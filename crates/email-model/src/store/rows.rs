//! Rows as diesel reads and writes them, and their conversion to the domain types.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::model::{
    Address, AuthKind, BodyState, CredentialEpisode, Folder, ImapSettings, Mailbox, Security,
    StoredAttachment, SyncState,
};
use crate::schema::{
    attachments, credential_episodes, emails, folders, mailboxes, memberships, users,
};

pub(crate) fn utc(value: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(value, Utc)
}

pub(crate) fn naive(value: DateTime<Utc>) -> NaiveDateTime {
    value.naive_utc()
}

pub(crate) fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

pub(crate) fn to_u32(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

pub(crate) fn to_u64(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// MODSEQs are 63-bit by RFC 7162, so they fit a BIGINT.
pub(crate) fn from_u64(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

pub(crate) fn addresses_json(addresses: &[Address]) -> String {
    serde_json::to_string(addresses).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn addresses_from_json(text: &str) -> Vec<Address> {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) fn flags_text(flags: &[String]) -> String {
    flags.join(" ")
}

pub(crate) fn flags_from_text(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) created_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = mailboxes)]
pub(crate) struct MailboxRow {
    pub(crate) id: i64,
    pub(crate) owner_user_id: Option<i64>,
    pub(crate) email: String,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) security: String,
    pub(crate) imap_user: String,
    pub(crate) auth_kind: String,
    pub(crate) secret_ciphertext: Option<Vec<u8>>,
    pub(crate) oauth_settings: Option<String>,
    pub(crate) active: bool,
    pub(crate) sync_enabled: bool,
    pub(crate) first_sync_days: i32,
    pub(crate) sync_state: String,
    pub(crate) last_error: Option<String>,
    pub(crate) last_sync_started_at: Option<NaiveDateTime>,
    pub(crate) last_sync_finished_at: Option<NaiveDateTime>,
    pub(crate) last_success_at: Option<NaiveDateTime>,
    pub(crate) lease_holder: Option<String>,
    pub(crate) lease_expires_at: Option<NaiveDateTime>,
    pub(crate) backoff_until: Option<NaiveDateTime>,
    pub(crate) consecutive_failures: i32,
    pub(crate) tls_pin: Option<String>,
    pub(crate) sync_requested_at: Option<NaiveDateTime>,
}

impl From<MailboxRow> for Mailbox {
    fn from(row: MailboxRow) -> Self {
        Self {
            id: row.id,
            owner_user_id: row.owner_user_id,
            email: row.email,
            imap: ImapSettings {
                host: row.host,
                port: u16::try_from(row.port).unwrap_or_default(),
                security: Security::parse(&row.security),
                user: row.imap_user,
            },
            auth_kind: AuthKind::parse(&row.auth_kind),
            has_secret: row.secret_ciphertext.is_some(),
            oauth_settings: row.oauth_settings,
            active: row.active,
            sync_enabled: row.sync_enabled,
            first_sync_days: row.first_sync_days,
            sync_state: SyncState::parse(&row.sync_state),
            last_error: row.last_error,
            last_sync_started_at: row.last_sync_started_at.map(utc),
            last_sync_finished_at: row.last_sync_finished_at.map(utc),
            last_success_at: row.last_success_at.map(utc),
            lease_holder: row.lease_holder,
            lease_expires_at: row.lease_expires_at.map(utc),
            backoff_until: row.backoff_until.map(utc),
            consecutive_failures: row.consecutive_failures,
            tls_pin: row.tls_pin,
            sync_requested_at: row.sync_requested_at.map(utc),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = folders)]
pub(crate) struct FolderRow {
    pub(crate) id: i64,
    pub(crate) mailbox_id: i64,
    pub(crate) full_name: String,
    pub(crate) name: String,
    pub(crate) parent_full_name: Option<String>,
    pub(crate) delimiter: Option<String>,
    pub(crate) folder_type: String,
    pub(crate) selectable: bool,
    pub(crate) sync_enabled: bool,
    pub(crate) gone_since: Option<NaiveDateTime>,
    pub(crate) uid_validity: Option<i64>,
    pub(crate) uid_next: Option<i64>,
    pub(crate) highest_modseq: Option<i64>,
    pub(crate) synced_up_to_uid: i64,
    pub(crate) backfill_below_uid: Option<i64>,
    pub(crate) window_start: Option<NaiveDateTime>,
    pub(crate) synchronized_at: Option<NaiveDateTime>,
    pub(crate) failure_count: i32,
    pub(crate) server_id: Option<String>,
}

impl From<FolderRow> for Folder {
    fn from(row: FolderRow) -> Self {
        Self {
            id: row.id,
            mailbox_id: row.mailbox_id,
            full_name: row.full_name,
            name: row.name,
            parent_full_name: row.parent_full_name,
            delimiter: row.delimiter,
            folder_type: row.folder_type,
            selectable: row.selectable,
            sync_enabled: row.sync_enabled,
            gone_since: row.gone_since.map(utc),
            uid_validity: to_u32(row.uid_validity),
            uid_next: to_u32(row.uid_next),
            highest_modseq: to_u64(row.highest_modseq),
            synced_up_to_uid: to_u32(Some(row.synced_up_to_uid)).unwrap_or_default(),
            backfill_below_uid: to_u32(row.backfill_below_uid),
            window_start: row.window_start.map(utc),
            synchronized_at: row.synchronized_at.map(utc),
            failure_count: row.failure_count,
            server_id: row.server_id,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = emails)]
pub(crate) struct EmailRow {
    pub(crate) id: i64,
    pub(crate) mailbox_id: i64,
    pub(crate) identity: String,
    pub(crate) message_id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) from_name: Option<String>,
    pub(crate) from_email: Option<String>,
    pub(crate) to_addresses: String,
    pub(crate) sent_at: Option<NaiveDateTime>,
    pub(crate) internal_date: Option<NaiveDateTime>,
    pub(crate) thread_id: String,
    pub(crate) body_state: String,
    pub(crate) body_text: Option<String>,
    pub(crate) body_html: Option<String>,
    pub(crate) orphaned_at: Option<NaiveDateTime>,
}

impl EmailRow {
    pub(crate) fn body_state(&self) -> BodyState {
        BodyState::parse(&self.body_state)
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = attachments)]
pub(crate) struct AttachmentRow {
    pub(crate) email_id: i64,
    pub(crate) name: Option<String>,
    pub(crate) content_type: String,
    pub(crate) size: i64,
    pub(crate) content_id: Option<String>,
    pub(crate) inline: bool,
    pub(crate) content: Option<Vec<u8>>,
}

impl From<AttachmentRow> for StoredAttachment {
    fn from(row: AttachmentRow) -> Self {
        Self {
            name: row.name,
            content_type: row.content_type,
            size: u64::try_from(row.size).unwrap_or_default(),
            content_id: row.content_id,
            inline: row.inline,
            content: row.content,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = memberships)]
pub(crate) struct MembershipRow {
    pub(crate) folder_id: i64,
    pub(crate) uid_validity: i64,
    pub(crate) uid: i64,
    pub(crate) email_id: i64,
    pub(crate) flags: String,
    pub(crate) modseq: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = emails)]
pub(crate) struct NewEmailRow {
    pub(crate) mailbox_id: i64,
    pub(crate) identity: String,
    pub(crate) header_key: Option<String>,
    pub(crate) message_id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) from_name: Option<String>,
    pub(crate) from_email: Option<String>,
    pub(crate) sender: Option<String>,
    pub(crate) to_addresses: String,
    pub(crate) cc_addresses: String,
    pub(crate) bcc_addresses: String,
    pub(crate) reply_to_addresses: String,
    pub(crate) sent_at: Option<NaiveDateTime>,
    pub(crate) received_at: Option<NaiveDateTime>,
    pub(crate) internal_date: Option<NaiveDateTime>,
    pub(crate) importance: i16,
    pub(crate) in_reply_to: Option<String>,
    pub(crate) references_ids: String,
    pub(crate) thread_id: String,
    pub(crate) gmail_message_id: Option<String>,
    pub(crate) gmail_thread_id: Option<String>,
    pub(crate) size: Option<i64>,
    pub(crate) body_text: Option<String>,
    pub(crate) body_html: Option<String>,
    pub(crate) body_state: String,
    pub(crate) parse_problems: String,
    pub(crate) created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = attachments)]
pub(crate) struct NewAttachmentRow {
    pub(crate) email_id: i64,
    pub(crate) position: i32,
    pub(crate) name: Option<String>,
    pub(crate) content_type: String,
    pub(crate) size: i64,
    pub(crate) content_id: Option<String>,
    pub(crate) inline: bool,
    pub(crate) content: Option<Vec<u8>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = memberships)]
pub(crate) struct NewMembershipRow {
    pub(crate) folder_id: i64,
    pub(crate) uid_validity: i64,
    pub(crate) uid: i64,
    pub(crate) email_id: i64,
    pub(crate) flags: String,
    pub(crate) modseq: Option<i64>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = credential_episodes)]
pub(crate) struct EpisodeRow {
    pub(crate) id: i64,
    pub(crate) mailbox_id: i64,
    pub(crate) reason: String,
    pub(crate) opened_at: NaiveDateTime,
    pub(crate) closed_at: Option<NaiveDateTime>,
}

impl From<EpisodeRow> for CredentialEpisode {
    fn from(row: EpisodeRow) -> Self {
        Self {
            id: row.id,
            mailbox_id: row.mailbox_id,
            reason: row.reason,
            opened_at: utc(row.opened_at),
            closed_at: row.closed_at.map(utc),
        }
    }
}
