//! The PostgreSQL and SQLite stores, generated from one body.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;

use super::Store;
use super::folder_identity::{self, Identity, KnownFolder};
use super::rows::*;
use crate::error::{Result, StoreError};
use crate::identity::{choose_thread, normalize_message_id, thread_keys};
use crate::model::*;
use crate::schema::*;
use crate::secrets::{Keyring, SealedSecret};

/// Settings shared by both stores.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Attachments over this size are recorded without content.
    pub attachment_limit: u64,
    /// Connections in the pool (PostgreSQL; SQLite always uses one writer).
    pub max_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            attachment_limit: DEFAULT_ATTACHMENT_LIMIT,
            max_connections: 8,
        }
    }
}

type SqliteConnection = SyncConnectionWrapper<diesel::SqliteConnection>;

/// The store on PostgreSQL. Clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    url: String,
    pool: Pool<AsyncPgConnection>,
    keyring: Keyring,
    options: StoreOptions,
}

/// The store on an embedded SQLite file: one writer, WAL, foreign keys on. Clones share the
/// writer.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnection>,
    keyring: Keyring,
    options: StoreOptions,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (lazily, through a pool) to an already migrated database.
    pub fn connect(url: &str, keyring: Keyring, options: StoreOptions) -> Result<Self> {
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.custom_setup = Box::new(|url| {
            let url = url.to_owned();
            Box::pin(async move {
                let mut connection = AsyncPgConnection::establish(&url).await?;
                // diesel-async prepares every statement once per connection; after five runs
                // PostgreSQL may switch to a generic plan made while the mirror's tables were
                // nearly empty (sequential scans), and keep it as they grow during a first sync.
                connection
                    .batch_execute("SET plan_cache_mode = force_custom_plan")
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(connection)
            })
        });
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            pool,
            keyring,
            options,
        })
    }

    /// The payloads of `NOTIFY channel`, on a session of its own that lives as long as the
    /// receiver (e.g. [`crate::OUTBOX_NOTIFY_CHANNEL`], so a dispatcher wakes at once).
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<String>> {
        use futures::StreamExt;
        let (client, mut connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let watcher = sender.clone();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(notification) = message
                    && sender.send(notification.payload().to_owned()).is_err()
                {
                    break;
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "")))
            .await
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        // The session lives as long as someone listens: dropping the receiver closes it.
        tokio::spawn(async move {
            watcher.closed().await;
            drop(client);
        });
        Ok(receiver)
    }

    async fn connection(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Connection(e.to_string()))
    }
}

impl SqliteStore {
    /// Opens an already migrated SQLite file.
    pub fn open(path: &Path, keyring: Keyring, options: StoreOptions) -> Result<Self> {
        crate::migrate::private_sqlite_files(path)?;
        let mut config = ManagerConfig::<SqliteConnection>::default();
        config.custom_setup = Box::new(|url| {
            let url = url.to_owned();
            Box::pin(async move {
                let mut connection = SqliteConnection::establish(&url).await?;
                connection
                    .batch_execute(
                        "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                    )
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(connection)
            })
        });
        let manager = AsyncDieselConnectionManager::<SqliteConnection>::new_with_config(
            path.to_string_lossy(),
            config,
        );
        let pool = Pool::builder(manager)
            .max_size(1)
            .build()
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        Ok(Self {
            pool,
            keyring,
            options,
        })
    }

    async fn connection(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<SqliteConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Connection(e.to_string()))
    }
}

/// Rows per statement: a 1,000-message batch is one INSERT per table on PostgreSQL, and the
/// widest row (emails, 26 columns) stays under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// INSERT of many rows: one statement per chunk on PostgreSQL, one per row on SQLite.
macro_rules! insert_all {
    (multi_row, $conn:expr, $table:expr, $rows:expr) => {{
        let mut inserted = 0usize;
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            inserted += diesel::insert_into($table)
                .values(chunk)
                .execute($conn)
                .await?;
        }
        inserted
    }};
    (row_by_row, $conn:expr, $table:expr, $rows:expr) => {{
        let mut inserted = 0usize;
        for row in $rows.iter() {
            inserted += diesel::insert_into($table)
                .values(row)
                .execute($conn)
                .await?;
        }
        inserted
    }};
}

fn membership_from_row(row: MembershipRow) -> Membership {
    Membership {
        folder_id: row.folder_id,
        uid_validity: to_u32(Some(row.uid_validity)).unwrap_or_default(),
        uid: to_u32(Some(row.uid)).unwrap_or_default(),
        email_id: row.email_id,
        flags: flags_from_text(&row.flags),
        modseq: to_u64(row.modseq),
    }
}

/// Seals a mailbox's secret and writes it in one UPDATE, with `extra` column changes.
macro_rules! write_secret {
    ($store:expr, $id:expr, $secret:expr, ($($extra:expr),* $(,)?)) => {{
        let sealed = $store.keyring.seal($id, &$secret)?;
        let mut conn = $store.connection().await?;
        let changed = diesel::update(mailboxes::table.find($id))
            .set((
                mailboxes::secret_ciphertext.eq(sealed.ciphertext),
                mailboxes::secret_key_id.eq(sealed.key_id),
                mailboxes::updated_at.eq(now()),
                $($extra,)*
            ))
            .execute(&mut conn)
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("mailbox {}", $id)));
        }
        Ok(())
    }};
}

/// Inserts email rows and returns their (identity, id): one statement per chunk on
/// PostgreSQL, one per row on SQLite (RETURNING, SQLite 3.35+).
macro_rules! insert_emails_returning_ids {
    (multi_row, $conn:expr, $rows:expr) => {{
        let mut ids: Vec<(String, i64)> = Vec::with_capacity($rows.len());
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            let returned: Vec<(String, i64)> = diesel::insert_into(emails::table)
                .values(chunk)
                .returning((emails::identity, emails::id))
                .get_results($conn)
                .await?;
            ids.extend(returned);
        }
        ids
    }};
    (row_by_row, $conn:expr, $rows:expr) => {{
        let mut ids: Vec<(String, i64)> = Vec::with_capacity($rows.len());
        for row in $rows.iter() {
            let returned: (String, i64) = diesel::insert_into(emails::table)
                .values(row)
                .returning((emails::identity, emails::id))
                .get_result($conn)
                .await?;
            ids.push(returned);
        }
        ids
    }};
}

/// NOTIFY on a named channel (PostgreSQL only; SQLite has no LISTEN).
macro_rules! notify_channel {
    (multi_row, $conn:expr, $channel:expr, $payload:expr) => {{
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>($channel)
            .bind::<diesel::sql_types::Text, _>($payload)
            .execute($conn)
            .await?;
    }};
    (row_by_row, $conn:expr, $channel:expr, $payload:expr) => {{
        let _ = ($conn, $channel, $payload);
    }};
}

/// Notifies listeners of committed changes (PostgreSQL only; SQLite has no LISTEN).
macro_rules! notify_changes {
    (multi_row, $conn:expr, $payload:expr) => {{
        diesel::sql_query("SELECT pg_notify('imap_sync_changes', $1)")
            .bind::<diesel::sql_types::Text, _>($payload)
            .execute($conn)
            .await?;
    }};
    (row_by_row, $conn:expr, $payload:expr) => {{
        let _ = $payload;
    }};
}

fn new_email_row(
    mailbox_id: i64,
    identity: String,
    thread_id: String,
    email: &NewEmail,
) -> NewEmailRow {
    NewEmailRow {
        mailbox_id,
        identity,
        header_key: Some(email.header_key()),
        message_id: email.message_id.as_deref().map(normalize_message_id),
        subject: email.subject.clone(),
        from_name: email.from.as_ref().and_then(|a| a.name.clone()),
        from_email: email.from.as_ref().and_then(|a| a.email.clone()),
        sender: email
            .sender
            .as_ref()
            .map(|a| addresses_json(std::slice::from_ref(a))),
        to_addresses: addresses_json(&email.to),
        cc_addresses: addresses_json(&email.cc),
        bcc_addresses: addresses_json(&email.bcc),
        reply_to_addresses: addresses_json(&email.reply_to),
        sent_at: email.sent_at.map(naive),
        received_at: email.internal_date.map(naive),
        internal_date: email.internal_date.map(naive),
        importance: email.importance,
        in_reply_to: email.in_reply_to.as_deref().map(normalize_message_id),
        references_ids: serde_json::to_string(
            &email
                .references
                .iter()
                .map(|r| normalize_message_id(r))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into()),
        thread_id,
        gmail_message_id: email.gmail_message_id.map(|id| id.to_string()),
        gmail_thread_id: email.gmail_thread_id.map(|id| id.to_string()),
        size: email.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        body_text: email.body_text.clone(),
        body_html: email.body_html.clone(),
        body_state: email.body_state.as_str().to_owned(),
        parse_problems: serde_json::to_string(&email.parse_problems)
            .unwrap_or_else(|_| "[]".into()),
        created_at: now(),
    }
}

/// The name a stored folder takes when a different folder now holds its name on the server; the
/// id keeps it unique.
fn displaced_name(full_name: &str, id: i64) -> String {
    format!("{full_name} (replaced on the server, #{id})")
}

fn default_sync(folder_type: &str) -> bool {
    matches!(folder_type, "inbox" | "sent")
}

fn stored_email(row: EmailRow, attachments: Vec<StoredAttachment>) -> StoredEmail {
    let body_state = row.body_state();
    StoredEmail {
        id: row.id,
        mailbox_id: row.mailbox_id,
        identity: row.identity,
        message_id: row.message_id,
        subject: row.subject,
        from: (row.from_name.is_some() || row.from_email.is_some()).then_some(Address {
            name: row.from_name,
            email: row.from_email,
        }),
        to: addresses_from_json(&row.to_addresses),
        sent_at: row.sent_at.map(utc),
        internal_date: row.internal_date.map(utc),
        thread_id: row.thread_id,
        body_state,
        body_text: row.body_text,
        body_html: row.body_html,
        orphaned_at: row.orphaned_at.map(utc),
        attachments,
    }
}

macro_rules! impl_store {
    ($store:ty, $variant:ident) => {
        impl Store for $store {
            async fn create_user(&self, user: NewUser) -> Result<User> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let row: UserRow = diesel::insert_into(users::table)
                        .values((
                            users::email.eq(&user.email),
                            users::name.eq(&user.name),
                            users::enabled.eq(user.enabled),
                            users::created_at.eq(now()),
                        ))
                        .returning(UserRow::as_returning())
                        .get_result(conn)
                        .await?;
                    for capability in &user.capabilities {
                        diesel::insert_into(user_capabilities::table)
                            .values((
                                user_capabilities::user_id.eq(row.id),
                                user_capabilities::capability.eq(capability),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(User {
                        id: row.id,
                        email: row.email,
                        name: row.name,
                        enabled: row.enabled,
                        capabilities: user.capabilities.clone(),
                        created_at: utc(row.created_at),
                    })
                })
                .await
            }

            async fn users(&self) -> Result<Vec<User>> {
                let mut conn = self.connection().await?;
                let rows: Vec<UserRow> = users::table
                    .order(users::id)
                    .select(UserRow::as_select())
                    .load(&mut conn)
                    .await?;
                let capabilities: Vec<(i64, String)> = user_capabilities::table
                    .select((user_capabilities::user_id, user_capabilities::capability))
                    .order((user_capabilities::user_id, user_capabilities::capability))
                    .load(&mut conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| User {
                        capabilities: capabilities
                            .iter()
                            .filter(|(id, _)| *id == row.id)
                            .map(|(_, c)| c.clone())
                            .collect(),
                        id: row.id,
                        email: row.email,
                        name: row.name,
                        enabled: row.enabled,
                        created_at: utc(row.created_at),
                    })
                    .collect())
            }

            async fn user(&self, id: i64) -> Result<Option<User>> {
                Ok(self.users().await?.into_iter().find(|u| u.id == id))
            }

            async fn set_user_enabled(&self, id: i64, enabled: bool) -> Result<()> {
                let mut conn = self.connection().await?;
                let changed = diesel::update(users::table.find(id))
                    .set(users::enabled.eq(enabled))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("user {id}")));
                }
                Ok(())
            }

            async fn set_user_details(&self, id: i64, email: String, name: String) -> Result<()> {
                let mut conn = self.connection().await?;
                let changed = diesel::update(users::table.find(id))
                    .set((users::email.eq(&email), users::name.eq(&name)))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("user {id}")));
                }
                Ok(())
            }

            async fn set_user_capabilities(&self, id: i64, capabilities: Vec<String>) -> Result<()> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    diesel::delete(user_capabilities::table.filter(user_capabilities::user_id.eq(id)))
                        .execute(conn)
                        .await?;
                    for capability in &capabilities {
                        diesel::insert_into(user_capabilities::table)
                            .values((
                                user_capabilities::user_id.eq(id),
                                user_capabilities::capability.eq(capability),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await
            }

            async fn delete_user(&self, id: i64) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::delete(users::table.find(id)).execute(&mut conn).await?;
                Ok(())
            }

            async fn create_mailbox(&self, mailbox: NewMailbox) -> Result<Mailbox> {
                crate::rules::in_range("first_sync_days", mailbox.first_sync_days, &crate::rules::FIRST_SYNC_DAYS)?;
                crate::rules::imap_settings(&mailbox.imap)?;
                let mut conn = self.connection().await?;
                let keyring = self.keyring.clone();
                let id = conn
                    .transaction::<_, StoreError, _>(async |conn| {
                        if let Some(owner) = mailbox.owner_user_id {
                            let found: i64 = users::table.find(owner).count().get_result(conn).await?;
                            if found == 0 {
                                return Err(StoreError::Invalid {
                                    field: "owner_user_id".to_owned(),
                                    reason: format!("there is no user {owner}: add the user first, or leave the owner out for a system mailbox"),
                                });
                            }
                        }
                        let id: i64 = diesel::insert_into(mailboxes::table)
                            .values((
                                mailboxes::owner_user_id.eq(mailbox.owner_user_id),
                                mailboxes::email.eq(&mailbox.email),
                                mailboxes::host.eq(&mailbox.imap.host),
                                mailboxes::port.eq(i32::from(mailbox.imap.port)),
                                mailboxes::security.eq(mailbox.imap.security.as_str()),
                                mailboxes::imap_user.eq(&mailbox.imap.user),
                                mailboxes::auth_kind.eq(mailbox.auth_kind.as_str()),
                                mailboxes::oauth_settings.eq(&mailbox.oauth_settings),
                                mailboxes::first_sync_days.eq(mailbox.first_sync_days),
                                mailboxes::created_at.eq(now()),
                                mailboxes::updated_at.eq(now()),
                            ))
                            .returning(mailboxes::id)
                            .get_result(conn)
                            .await?;
                        // The secret is sealed for this row's id, so it is written second.
                        if let Some(secret) = &mailbox.secret {
                            let sealed = keyring.seal(id, secret)?;
                            diesel::update(mailboxes::table.find(id))
                                .set((
                                    mailboxes::secret_ciphertext.eq(sealed.ciphertext),
                                    mailboxes::secret_key_id.eq(sealed.key_id),
                                ))
                                .execute(conn)
                                .await?;
                        }
                        Ok(id)
                    })
                    .await?;
                drop(conn);
                self.mailbox(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
            }

            async fn mailbox(&self, id: i64) -> Result<Option<Mailbox>> {
                let mut conn = self.connection().await?;
                let row: Option<MailboxRow> = mailboxes::table
                    .find(id)
                    .select(MailboxRow::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?;
                Ok(row.map(Mailbox::from))
            }

            async fn mailboxes(&self) -> Result<Vec<Mailbox>> {
                let mut conn = self.connection().await?;
                let rows: Vec<MailboxRow> = mailboxes::table
                    .order(mailboxes::id)
                    .select(MailboxRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(rows.into_iter().map(Mailbox::from).collect())
            }

            async fn mailbox_secret(&self, id: i64) -> Result<Option<SecretString>> {
                let mut conn = self.connection().await?;
                let row: Option<(Option<Vec<u8>>, Option<String>)> = mailboxes::table
                    .find(id)
                    .select((mailboxes::secret_ciphertext, mailboxes::secret_key_id))
                    .first(&mut conn)
                    .await
                    .optional()?;
                match row {
                    None => Err(StoreError::NotFound(format!("mailbox {id}"))),
                    Some((Some(ciphertext), Some(key_id))) => self
                        .keyring
                        .open(id, &SealedSecret { key_id, ciphertext })
                        .map(Some),
                    Some(_) => Ok(None),
                }
            }

            async fn set_mailbox_secret(&self, id: i64, secret: SecretString) -> Result<()> {
                write_secret!(self, id, secret, (
                    mailboxes::backoff_until.eq(None::<chrono::NaiveDateTime>),
                    mailboxes::consecutive_failures.eq(0),
                    // New credentials make the mailbox due at once.
                    mailboxes::last_success_at.eq(None::<chrono::NaiveDateTime>),
                ))
            }

            async fn replace_mailbox_secret(&self, id: i64, secret: SecretString) -> Result<()> {
                write_secret!(self, id, secret, ())
            }

            async fn set_tls_pin(&self, id: i64, pin: Option<String>) -> Result<()> {
                let pin = pin.as_deref().map(crate::rules::tls_pin).transpose()?;
                let mut conn = self.connection().await?;
                let changed = diesel::update(mailboxes::table.find(id))
                    .set((mailboxes::tls_pin.eq(pin), mailboxes::updated_at.eq(now())))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {id}")));
                }
                Ok(())
            }

            async fn set_first_sync_days(&self, id: i64, days: i32) -> Result<()> {
                crate::rules::in_range("first_sync_days", days, &crate::rules::FIRST_SYNC_DAYS)?;
                let mut conn = self.connection().await?;
                let changed = diesel::update(mailboxes::table.find(id))
                    .set((mailboxes::first_sync_days.eq(days), mailboxes::updated_at.eq(now())))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {id}")));
                }
                Ok(())
            }

            async fn update_mailbox_settings(
                &self,
                id: i64,
                update: MailboxSettingsUpdate,
            ) -> Result<MailboxSettingsChange> {
                crate::rules::imap_settings(&update.imap)?;
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let current: Mailbox = mailboxes::table
                        .find(id)
                        .select(MailboxRow::as_select())
                        .first(conn)
                        .await
                        .optional()?
                        .map(Mailbox::from)
                        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
                    let other_account = !current.imap.same_account(&update.imap);
                    let mut change = MailboxSettingsChange { other_account, data_reset: false };
                    if other_account {
                        let holds_mail: i64 = emails::table
                            .filter(emails::mailbox_id.eq(id))
                            .count()
                            .get_result(conn)
                            .await?;
                        if holds_mail > 0 && !update.reset {
                            return Err(StoreError::OtherAccount {
                                mailbox_id: id,
                                old_account: format!("{}@{}", current.imap.user, current.imap.host),
                                new_account: format!("{}@{}", update.imap.user, update.imap.host),
                            });
                        }
                    }
                    if other_account && update.reset {
                        // Folders take their memberships, retry UIDs and pending changes with
                        // them; emails their attachments.
                        diesel::delete(folders::table.filter(folders::mailbox_id.eq(id)))
                            .execute(conn)
                            .await?;
                        diesel::delete(emails::table.filter(emails::mailbox_id.eq(id)))
                            .execute(conn)
                            .await?;
                        diesel::delete(thread_refs::table.filter(thread_refs::mailbox_id.eq(id)))
                            .execute(conn)
                            .await?;
                        diesel::update(mailboxes::table.find(id))
                            .set((
                                mailboxes::sync_state.eq("never"),
                                mailboxes::last_success_at.eq(None::<chrono::NaiveDateTime>),
                                mailboxes::last_error.eq(None::<String>),
                                mailboxes::backoff_until.eq(None::<chrono::NaiveDateTime>),
                                mailboxes::consecutive_failures.eq(0),
                            ))
                            .execute(conn)
                            .await?;
                        change.data_reset = true;
                    }
                    diesel::update(mailboxes::table.find(id))
                        .set((
                            mailboxes::email.eq(&update.email),
                            mailboxes::host.eq(&update.imap.host),
                            mailboxes::port.eq(i32::from(update.imap.port)),
                            mailboxes::security.eq(update.imap.security.as_str()),
                            mailboxes::imap_user.eq(&update.imap.user),
                            mailboxes::updated_at.eq(now()),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(change)
                })
                .await
            }

            async fn delete_mailbox(&self, id: i64) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::delete(mailboxes::table.find(id)).execute(&mut conn).await?;
                Ok(())
            }

            async fn merge_folders(&self, mailbox_id: i64, server: Vec<ServerFolder>) -> Result<FolderMergeReport> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let stored: Vec<FolderRow> = folders::table
                        .filter(folders::mailbox_id.eq(mailbox_id))
                        .select(FolderRow::as_select())
                        .load(conn)
                        .await?;
                    let mut report = FolderMergeReport::default();
                    let known: Vec<KnownFolder<'_>> = stored
                        .iter()
                        .map(|row| KnownFolder {
                            id: row.id,
                            full_name: &row.full_name,
                            uid_validity: row.uid_validity,
                            server_id: row.server_id.as_deref(),
                            live: row.gone_since.is_none(),
                        })
                        .collect();
                    let identities = folder_identity::identify(&known, &server);
                    // Names are unique per mailbox: a stored folder whose name is now listed for
                    // another folder (a reused name, names swapped by renames) gives it up first.
                    for row in &stored {
                        let listed_as = server.iter().zip(&identities).find(|(f, _)| f.full_name == row.full_name);
                        if let Some((_, identity)) = listed_as
                            && *identity != Identity::Same(row.id)
                        {
                            diesel::update(folders::table.find(row.id))
                                .set(folders::full_name.eq(displaced_name(&row.full_name, row.id)))
                                .execute(conn)
                                .await?;
                        }
                    }
                    let mut matched: HashSet<i64> = HashSet::new();
                    for (folder, identity) in server.iter().zip(identities) {
                        let existing = match identity {
                            Identity::Same(id) | Identity::Renamed(id) => {
                                stored.iter().find(|row| row.id == id)
                            }
                            Identity::New => None,
                        };
                        match existing {
                            Some(existing) => {
                                matched.insert(existing.id);
                                if existing.full_name != folder.full_name {
                                    // A rename keeps the folder's mail and cursors.
                                    report.renamed.push((existing.full_name.clone(), folder.full_name.clone()));
                                } else if existing.gone_since.is_some() {
                                    report.returned.push(folder.full_name.clone());
                                }
                                diesel::update(folders::table.find(existing.id))
                                    .set((
                                        folders::full_name.eq(&folder.full_name),
                                        folders::name.eq(&folder.name),
                                        folders::parent_full_name.eq(&folder.parent_full_name),
                                        folders::delimiter.eq(&folder.delimiter),
                                        folders::folder_type.eq(&folder.folder_type),
                                        folders::selectable.eq(folder.selectable),
                                        folders::gone_since.eq(None::<chrono::NaiveDateTime>),
                                        folders::server_id.eq(folder.server_id.as_ref().or(existing.server_id.as_ref())),
                                    ))
                                    .execute(conn)
                                    .await?;
                            }
                            None => {
                                report.added.push(folder.full_name.clone());
                                diesel::insert_into(folders::table)
                                    .values((
                                        folders::mailbox_id.eq(mailbox_id),
                                        folders::full_name.eq(&folder.full_name),
                                        folders::name.eq(&folder.name),
                                        folders::parent_full_name.eq(&folder.parent_full_name),
                                        folders::delimiter.eq(&folder.delimiter),
                                        folders::folder_type.eq(&folder.folder_type),
                                        folders::selectable.eq(folder.selectable),
                                        folders::sync_enabled.eq(folder.selectable && default_sync(&folder.folder_type)),
                                        folders::server_id.eq(&folder.server_id),
                                    ))
                                    .execute(conn)
                                    .await?;
                            }
                        }
                    }
                    for gone in stored.iter().filter(|s| !matched.contains(&s.id)) {
                        let held: i64 = memberships::table
                            .filter(memberships::folder_id.eq(gone.id))
                            .count()
                            .get_result(conn)
                            .await?;
                        if held == 0 {
                            diesel::delete(folders::table.find(gone.id)).execute(conn).await?;
                            report.deleted.push(gone.full_name.clone());
                        } else {
                            report.kept_gone.push(gone.full_name.clone());
                            if gone.gone_since.is_none() {
                                diesel::update(folders::table.find(gone.id))
                                    .set(folders::gone_since.eq(Some(now())))
                                    .execute(conn)
                                    .await?;
                            }
                        }
                    }
                    Ok(report)
                })
                .await
            }

            async fn folders(&self, mailbox_id: i64) -> Result<Vec<Folder>> {
                let mut conn = self.connection().await?;
                let rows: Vec<FolderRow> = folders::table
                    .filter(folders::mailbox_id.eq(mailbox_id))
                    .order(folders::full_name)
                    .select(FolderRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(rows.into_iter().map(Folder::from).collect())
            }

            async fn set_folder_sync(&self, folder_id: i64, enabled: bool) -> Result<()> {
                let mut conn = self.connection().await?;
                let changed = diesel::update(folders::table.find(folder_id))
                    .set(folders::sync_enabled.eq(enabled))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("folder {folder_id}")));
                }
                Ok(())
            }

            async fn store_batch(&self, mut batch: EmailBatch) -> Result<BatchReport> {
                batch.emails.iter_mut().for_each(crate::rules::make_storable);
                let attachment_limit = self.options.attachment_limit;
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let folder: FolderRow = folders::table
                        .find(batch.folder_id)
                        .select(FolderRow::as_select())
                        .first(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| StoreError::NotFound(format!("folder {}", batch.folder_id)))?;
                    if folder.mailbox_id != batch.mailbox_id {
                        return Err(StoreError::Refused(format!(
                            "folder {} belongs to another mailbox",
                            batch.folder_id
                        )));
                    }
                    let uid_validity = i64::from(batch.uid_validity);
                    if folder.uid_validity.is_some_and(|known| known != uid_validity) {
                        return Err(StoreError::Refused(format!(
                            "folder {} has UIDVALIDITY {:?}, the batch {}: remap first",
                            batch.folder_id, folder.uid_validity, batch.uid_validity
                        )));
                    }

                    let identities: Vec<String> = batch.emails.iter().map(NewEmail::identity).collect();
                    let mut known: HashMap<String, i64> = HashMap::new();
                    load_email_ids!(conn, batch.mailbox_id, identities, known);
                    let known_ids: Vec<i64> = known.values().copied().collect();
                    clear_orphan_marks!(conn, known_ids);
                    let known_count = batch
                        .emails
                        .iter()
                        .zip(&identities)
                        .filter(|(_, id)| known.contains_key(*id))
                        .count();

                    // Threads of the new emails, from the Message-IDs already known.
                    let mut new_indices: Vec<usize> = Vec::new();
                    let mut seen_new: HashSet<&str> = HashSet::new();
                    for (index, identity) in identities.iter().enumerate() {
                        if !known.contains_key(identity) && seen_new.insert(identity.as_str()) {
                            new_indices.push(index);
                        }
                    }
                    let keys_per_email: Vec<Vec<String>> = new_indices
                        .iter()
                        .map(|&i| {
                            let email = &batch.emails[i];
                            thread_keys(email.message_id.as_deref(), email.in_reply_to.as_deref(), &email.references)
                        })
                        .collect();
                    let all_keys: Vec<String> = keys_per_email.iter().flatten().cloned().collect();
                    let mut threads: HashMap<String, String> = HashMap::new();
                    for chunk in all_keys.chunks(ROWS_PER_STATEMENT) {
                        let found: Vec<(String, String)> = thread_refs::table
                            .filter(thread_refs::mailbox_id.eq(batch.mailbox_id))
                            .filter(thread_refs::message_id.eq_any(chunk))
                            .select((thread_refs::message_id, thread_refs::thread_id))
                            .load(conn)
                            .await?;
                        threads.extend(found);
                    }
                    let mut new_refs: Vec<(String, String)> = Vec::new();
                    let mut email_rows: Vec<NewEmailRow> = Vec::with_capacity(new_indices.len());
                    for (position, &index) in new_indices.iter().enumerate() {
                        let email = &batch.emails[index];
                        let keys = &keys_per_email[position];
                        let found: Vec<String> = keys.iter().filter_map(|k| threads.get(k).cloned()).collect();
                        let thread = choose_thread(&found, email.gmail_thread_id, &identities[index]);
                        for key in keys {
                            if !threads.contains_key(key) {
                                threads.insert(key.clone(), thread.clone());
                                new_refs.push((key.clone(), thread.clone()));
                            }
                        }
                        email_rows.push(new_email_row(batch.mailbox_id, identities[index].clone(), thread, email));
                    }
                    let ref_rows: Vec<_> = new_refs
                        .iter()
                        .map(|(key, thread)| {
                            (
                                thread_refs::mailbox_id.eq(batch.mailbox_id),
                                thread_refs::message_id.eq(key.as_str()),
                                thread_refs::thread_id.eq(thread.as_str()),
                            )
                        })
                        .collect();
                    insert_all!($variant, conn, thread_refs::table, ref_rows);
                    // The new emails' ids come back from the INSERT itself; then their attachments.
                    known.extend(insert_emails_returning_ids!($variant, conn, email_rows));
                    let mut attachment_rows: Vec<NewAttachmentRow> = Vec::new();
                    for &index in &new_indices {
                        let email_id = known[&identities[index]];
                        for (position, attachment) in batch.emails[index].attachments.iter().enumerate() {
                            attachment_rows.push(NewAttachmentRow {
                                email_id,
                                position: i32::try_from(position).unwrap_or(i32::MAX),
                                name: attachment.name.clone(),
                                content_type: attachment.content_type.clone(),
                                size: i64::try_from(attachment.size).unwrap_or(i64::MAX),
                                content_id: attachment.content_id.clone(),
                                inline: attachment.inline,
                                content: (attachment.size <= attachment_limit).then(|| attachment.content.clone()),
                            });
                        }
                    }
                    insert_all!($variant, conn, attachments::table, attachment_rows);

                    let membership_rows: Vec<NewMembershipRow> = batch
                        .emails
                        .iter()
                        .zip(&identities)
                        .map(|(email, identity)| NewMembershipRow {
                            folder_id: batch.folder_id,
                            uid_validity,
                            uid: i64::from(email.uid),
                            email_id: known[identity],
                            flags: flags_text(&email.flags),
                            modseq: from_u64(email.modseq),
                        })
                        .collect();
                    let mut memberships_written = 0;
                    for chunk in membership_rows.chunks(ROWS_PER_STATEMENT) {
                        memberships_written += upsert_memberships!($variant, conn, chunk);
                    }

                    // One UPDATE: diesel leaves out the `None` members of the changeset.
                    let cursors = batch.cursors;
                    diesel::update(folders::table.find(batch.folder_id))
                        .set((
                            folders::uid_validity.eq(Some(uid_validity)),
                            folders::synchronized_at.eq(Some(now())),
                            cursors
                                .synced_up_to_uid
                                .map(|up_to| folders::synced_up_to_uid.eq(i64::from(up_to).max(folder.synced_up_to_uid))),
                            cursors
                                .backfill_below_uid
                                .map(|backfill| folders::backfill_below_uid.eq(backfill.map(i64::from))),
                            cursors.uid_next.map(|next| folders::uid_next.eq(Some(i64::from(next)))),
                            cursors
                                .highest_modseq
                                .map(|modseq| folders::highest_modseq.eq(from_u64(Some(modseq)))),
                            cursors.window_start.map(|start| {
                                let start = naive(start);
                                folders::window_start.eq(Some(folder.window_start.map_or(start, |known| known.min(start))))
                            }),
                        ))
                        .execute(conn)
                        .await?;

                    let report = BatchReport {
                        new_emails: new_indices.len(),
                        known_emails: known_count,
                        memberships: memberships_written,
                    };
                    let payload = serde_json::json!({
                        "mailbox": batch.mailbox_id,
                        "folder": batch.folder_id,
                        "new": report.new_emails,
                        "changed": report.known_emails,
                        "removed": 0,
                    })
                    .to_string();
                    notify_changes!($variant, conn, payload);
                    Ok(report)
                })
                .await
            }

            async fn update_flags(
                &self,
                folder_id: i64,
                uid_validity: u32,
                updates: Vec<FlagUpdate>,
                highest_modseq: Option<u64>,
            ) -> Result<usize> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let mut changed = 0;
                    for update in &updates {
                        changed += diesel::update(
                            memberships::table
                                .filter(memberships::folder_id.eq(folder_id))
                                .filter(memberships::uid_validity.eq(i64::from(uid_validity)))
                                .filter(memberships::uid.eq(i64::from(update.uid))),
                        )
                        .set((
                            memberships::flags.eq(flags_text(&update.flags)),
                            // A change seen without its MODSEQ keeps the one known.
                            update.modseq.map(|modseq| memberships::modseq.eq(from_u64(Some(modseq)))),
                        ))
                        .execute(conn)
                        .await?;
                    }
                    if let Some(modseq) = highest_modseq {
                        diesel::update(folders::table.find(folder_id))
                            .set(folders::highest_modseq.eq(from_u64(Some(modseq))))
                            .execute(conn)
                            .await?;
                    }
                    Ok(changed)
                })
                .await
            }

            async fn remove_uids(&self, folder_id: i64, uid_validity: u32, uids: Vec<u32>) -> Result<usize> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let uids: Vec<i64> = uids.into_iter().map(i64::from).collect();
                    let mut removed = 0;
                    for chunk in uids.chunks(ROWS_PER_STATEMENT) {
                        let selection = memberships::table
                            .filter(memberships::folder_id.eq(folder_id))
                            .filter(memberships::uid_validity.eq(i64::from(uid_validity)))
                            .filter(memberships::uid.eq_any(chunk));
                        let email_ids: Vec<i64> = selection.clone().select(memberships::email_id).load(conn).await?;
                        removed += diesel::delete(selection).execute(conn).await?;
                        // An email left in no folder is orphaned, not deleted (docs/schema.md).
                        diesel::update(
                            emails::table
                                .filter(emails::id.eq_any(&email_ids))
                                .filter(diesel::dsl::not(diesel::dsl::exists(
                                    memberships::table.filter(memberships::email_id.eq(emails::id)),
                                ))),
                        )
                        .set(emails::orphaned_at.eq(Some(now())))
                        .execute(conn)
                        .await?;
                    }
                    Ok(removed)
                })
                .await
            }

            async fn purge_orphans(&self, mailbox_id: i64, orphaned_before: DateTime<Utc>) -> Result<usize> {
                let mut conn = self.connection().await?;
                // An email with a membership is live whatever its mark says (a mark a path forgot
                // to clear must never cost mail): checked in the same statement.
                Ok(diesel::delete(
                    emails::table
                        .filter(emails::mailbox_id.eq(mailbox_id))
                        .filter(emails::orphaned_at.le(naive(orphaned_before)))
                        .filter(diesel::dsl::not(diesel::dsl::exists(
                            memberships::table.filter(memberships::email_id.eq(emails::id)),
                        ))),
                )
                .execute(&mut conn)
                .await?)
            }

            async fn email_memberships(&self, email_id: i64) -> Result<Vec<Membership>> {
                let mut conn = self.connection().await?;
                let rows: Vec<MembershipRow> = memberships::table
                    .filter(memberships::email_id.eq(email_id))
                    .order((memberships::folder_id, memberships::uid))
                    .select(MembershipRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(rows.into_iter().map(membership_from_row).collect())
            }

            async fn memberships(&self, folder_id: i64) -> Result<Vec<Membership>> {
                let mut conn = self.connection().await?;
                let rows: Vec<MembershipRow> = memberships::table
                    .filter(memberships::folder_id.eq(folder_id))
                    .order((memberships::uid_validity, memberships::uid))
                    .select(MembershipRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(rows.into_iter().map(membership_from_row).collect())
            }

            async fn email(&self, id: i64) -> Result<Option<StoredEmail>> {
                let mut conn = self.connection().await?;
                let row: Option<EmailRow> = emails::table
                    .find(id)
                    .select(EmailRow::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?;
                let Some(row) = row else { return Ok(None) };
                let attachment_rows: Vec<AttachmentRow> = attachments::table
                    .filter(attachments::email_id.eq(id))
                    .order(attachments::position)
                    .select(AttachmentRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(Some(stored_email(row, attachment_rows.into_iter().map(StoredAttachment::from).collect())))
            }

            async fn emails(&self, mailbox_id: i64) -> Result<Vec<StoredEmail>> {
                let mut conn = self.connection().await?;
                let rows: Vec<EmailRow> = emails::table
                    .filter(emails::mailbox_id.eq(mailbox_id))
                    .order((emails::received_at.desc(), emails::id.desc()))
                    .select(EmailRow::as_select())
                    .load(&mut conn)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let mut attachment_rows: Vec<AttachmentRow> = Vec::new();
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    attachment_rows.extend(
                        attachments::table
                            .filter(attachments::email_id.eq_any(chunk))
                            .order((attachments::email_id, attachments::position))
                            .select(AttachmentRow::as_select())
                            .load::<AttachmentRow>(&mut conn)
                            .await?,
                    );
                }
                let mut by_email: HashMap<i64, Vec<StoredAttachment>> = HashMap::new();
                for row in attachment_rows {
                    by_email.entry(row.email_id).or_default().push(StoredAttachment::from(row));
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let attachments = by_email.remove(&row.id).unwrap_or_default();
                        stored_email(row, attachments)
                    })
                    .collect())
            }

            async fn acquire_lease(&self, mailbox_id: i64, holder: String, until: DateTime<Utc>) -> Result<bool> {
                let mut conn = self.connection().await?;
                let now = now();
                // One conditional UPDATE: atomic on both backends, so two workers never both win.
                let changed = diesel::update(
                    mailboxes::table.find(mailbox_id).filter(
                        mailboxes::lease_holder
                            .is_null()
                            .or(mailboxes::lease_expires_at.lt(now))
                            .or(mailboxes::lease_holder.eq(&holder)),
                    ),
                )
                .set((
                    mailboxes::lease_holder.eq(Some(&holder)),
                    mailboxes::lease_expires_at.eq(Some(naive(until))),
                ))
                .execute(&mut conn)
                .await?;
                Ok(changed == 1)
            }

            async fn release_lease(&self, mailbox_id: i64, holder: String) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::update(mailboxes::table.find(mailbox_id).filter(mailboxes::lease_holder.eq(&holder)))
                    .set((
                        mailboxes::lease_holder.eq(None::<String>),
                        mailboxes::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            }

            async fn claim_due_mailbox(
                &self,
                holder: String,
                lease_until: DateTime<Utc>,
                due_before: DateTime<Utc>,
            ) -> Result<Option<Mailbox>> {
                let mut conn = self.connection().await?;
                let claimed = conn
                    .transaction::<_, StoreError, _>(async |conn| {
                        let now = now();
                        let candidate = mailboxes::table
                            .filter(mailboxes::active.eq(true))
                            .filter(mailboxes::sync_enabled.eq(true))
                            .filter(mailboxes::secret_ciphertext.is_not_null())
                            .filter(mailboxes::owner_user_id.is_null().or(diesel::dsl::exists(
                                users::table
                                    .filter(users::id.nullable().eq(mailboxes::owner_user_id))
                                    .filter(users::enabled.eq(true)),
                            )))
                            .filter(mailboxes::backoff_until.is_null().or(mailboxes::backoff_until.le(now)))
                            // Due by its interval, or asked for ("sync now" while another held it).
                            .filter(
                                mailboxes::last_success_at
                                    .is_null()
                                    .or(mailboxes::last_success_at.le(naive(due_before)))
                                    .or(mailboxes::sync_requested_at.is_not_null()),
                            )
                            .filter(mailboxes::lease_holder.is_null().or(mailboxes::lease_expires_at.lt(now)))
                            .order((mailboxes::last_success_at.is_not_null(), mailboxes::last_success_at, mailboxes::id))
                            .select(mailboxes::id);
                        let id: Option<i64> = claim_candidate!($variant, conn, candidate);
                        let Some(id) = id else { return Ok(None) };
                        diesel::update(mailboxes::table.find(id))
                            .set((
                                mailboxes::lease_holder.eq(Some(&holder)),
                                mailboxes::lease_expires_at.eq(Some(naive(lease_until))),
                            ))
                            .execute(conn)
                            .await?;
                        Ok(Some(id))
                    })
                    .await?;
                drop(conn);
                match claimed {
                    Some(id) => self.mailbox(id).await,
                    None => Ok(None),
                }
            }

            async fn remap_uid_validity(
                &self,
                folder_id: i64,
                new_uid_validity: u32,
                server: Vec<RemapItem>,
                cursors: FolderCursors,
            ) -> Result<RemapReport> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let folder: FolderRow = folders::table
                        .find(folder_id)
                        .select(FolderRow::as_select())
                        .first(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| StoreError::NotFound(format!("folder {folder_id}")))?;
                    let new_validity = i64::from(new_uid_validity);
                    // Which emails the mailbox knows by the server's messages' keys.
                    let keys: Vec<&String> = server.iter().flat_map(|item| &item.keys).collect();
                    let mut known_by_key: HashMap<String, Vec<i64>> = HashMap::new();
                    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                        let found: Vec<(Option<String>, i64)> = emails::table
                            .filter(emails::mailbox_id.eq(folder.mailbox_id))
                            .filter(emails::header_key.eq_any(chunk))
                            .select((emails::header_key, emails::id))
                            .load(conn)
                            .await?;
                        for (key, id) in found {
                            let ids = known_by_key.entry(key.unwrap_or_default()).or_default();
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                    }
                    let candidates: Vec<(&RemapItem, Vec<i64>)> = server
                        .iter()
                        .map(|item| {
                            let mut ids: Vec<i64> = item
                                .keys
                                .iter()
                                .filter_map(|key| known_by_key.get(key))
                                .flatten()
                                .copied()
                                .collect();
                            ids.sort_unstable();
                            ids.dedup();
                            (item, ids)
                        })
                        .collect();
                    // An email named by several UIDs' keys: which UID is which is not knowable
                    // from headers (the same message twice, or two that differ in their bodies).
                    let mut named_by: HashMap<i64, usize> = HashMap::new();
                    for (_, ids) in &candidates {
                        for id in ids {
                            *named_by.entry(*id).or_default() += 1;
                        }
                    }
                    // The old memberships go; their flags carry over to the re-keyed ones.
                    let old: Vec<MembershipRow> = memberships::table
                        .filter(memberships::folder_id.eq(folder_id))
                        .filter(memberships::uid_validity.ne(new_validity))
                        .select(MembershipRow::as_select())
                        .load(conn)
                        .await?;
                    let old_flags: HashMap<i64, (String, Option<i64>)> =
                        old.iter().map(|m| (m.email_id, (m.flags.clone(), m.modseq))).collect();
                    diesel::delete(
                        memberships::table
                            .filter(memberships::folder_id.eq(folder_id))
                            .filter(memberships::uid_validity.ne(new_validity)),
                    )
                    .execute(conn)
                    .await?;
                    let mut report = RemapReport::default();
                    let mut rows: Vec<NewMembershipRow> = Vec::new();
                    for (item, ids) in &candidates {
                        match ids.as_slice() {
                            [] if item.in_window => report.to_fetch.push(item.uid),
                            [] => {}
                            [email_id] if named_by.get(email_id) == Some(&1) => {
                                rows.push(NewMembershipRow {
                                    folder_id,
                                    uid_validity: new_validity,
                                    uid: i64::from(item.uid),
                                    email_id: *email_id,
                                    flags: flags_text(&item.flags),
                                    modseq: from_u64(item.modseq),
                                });
                            }
                            _ => report.ambiguous.push(item.uid),
                        }
                    }
                    let kept: HashSet<i64> = rows.iter().map(|r| r.email_id).collect();
                    report.remapped = rows.iter().filter(|r| old_flags.contains_key(&r.email_id)).count();
                    report.dropped = old.iter().filter(|m| !kept.contains(&m.email_id)).count();
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        upsert_memberships!($variant, conn, chunk);
                    }
                    // A re-keyed email is in a folder: whatever marked it orphaned (a move seen
                    // from its old folder first) no longer holds.
                    let kept_ids: Vec<i64> = kept.iter().copied().collect();
                    clear_orphan_marks!(conn, kept_ids);
                    let dropped_ids: Vec<i64> =
                        old.iter().map(|m| m.email_id).filter(|id| !kept.contains(id)).collect();
                    for chunk in dropped_ids.chunks(ROWS_PER_STATEMENT) {
                        diesel::update(
                            emails::table
                                .filter(emails::id.eq_any(chunk))
                                .filter(diesel::dsl::not(diesel::dsl::exists(
                                    memberships::table.filter(memberships::email_id.eq(emails::id)),
                                ))),
                        )
                        .set(emails::orphaned_at.eq(Some(now())))
                        .execute(conn)
                        .await?;
                    }
                    diesel::update(folders::table.find(folder_id))
                        .set((
                            folders::uid_validity.eq(Some(new_validity)),
                            folders::synced_up_to_uid.eq(i64::from(cursors.synced_up_to_uid.unwrap_or(0))),
                            folders::backfill_below_uid.eq(cursors.backfill_below_uid.flatten().map(i64::from)),
                            folders::uid_next.eq(cursors.uid_next.map(i64::from)),
                            folders::highest_modseq.eq(from_u64(cursors.highest_modseq)),
                        ))
                        .execute(conn)
                        .await?;
                    diesel::delete(retry_uids::table.filter(retry_uids::folder_id.eq(folder_id)))
                        .execute(conn)
                        .await?;
                    report.to_fetch.sort_unstable();
                    report.ambiguous.sort_unstable();
                    // The cursor covers every UID: the ones still to fetch are due as retries,
                    // committed with it, so a run that stops here loses none.
                    let reason = format!("new under UIDVALIDITY {new_uid_validity}: to fetch");
                    let due: Vec<_> = report
                        .to_fetch
                        .iter()
                        .chain(&report.ambiguous)
                        .map(|uid| {
                            (
                                retry_uids::folder_id.eq(folder_id),
                                retry_uids::uid_validity.eq(new_validity),
                                retry_uids::uid.eq(i64::from(*uid)),
                                retry_uids::attempts.eq(0),
                                retry_uids::last_error.eq(Some(reason.clone())),
                                retry_uids::next_attempt_at.eq(Some(now())),
                            )
                        })
                        .collect();
                    insert_all!($variant, conn, retry_uids::table, due);
                    Ok(report)
                })
                .await
            }

            async fn record_retry_uids(&self, folder_id: i64, uid_validity: u32, uids: Vec<u32>, error: String) -> Result<()> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    for uid in &uids {
                        diesel::insert_into(retry_uids::table)
                            .values((
                                retry_uids::folder_id.eq(folder_id),
                                retry_uids::uid_validity.eq(i64::from(uid_validity)),
                                retry_uids::uid.eq(i64::from(*uid)),
                                retry_uids::attempts.eq(1),
                                retry_uids::last_error.eq(Some(&error)),
                                retry_uids::next_attempt_at.eq(Some(now())),
                            ))
                            .on_conflict((retry_uids::folder_id, retry_uids::uid_validity, retry_uids::uid))
                            .do_update()
                            .set((
                                retry_uids::attempts.eq(retry_uids::attempts + 1),
                                retry_uids::last_error.eq(Some(&error)),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await
            }

            async fn retry_uids(&self, folder_id: i64, uid_validity: u32) -> Result<Vec<RetryUid>> {
                let mut conn = self.connection().await?;
                let rows: Vec<(i64, i32, Option<String>)> = retry_uids::table
                    .filter(retry_uids::folder_id.eq(folder_id))
                    .filter(retry_uids::uid_validity.eq(i64::from(uid_validity)))
                    .order(retry_uids::uid)
                    .select((retry_uids::uid, retry_uids::attempts, retry_uids::last_error))
                    .load(&mut conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(uid, attempts, last_error)| RetryUid {
                        uid: to_u32(Some(uid)).unwrap_or_default(),
                        attempts,
                        last_error,
                    })
                    .collect())
            }

            async fn clear_retry_uids(&self, folder_id: i64, uid_validity: u32, uids: Vec<u32>) -> Result<()> {
                let mut conn = self.connection().await?;
                let uids: Vec<i64> = uids.into_iter().map(i64::from).collect();
                for chunk in uids.chunks(ROWS_PER_STATEMENT) {
                    diesel::delete(
                        retry_uids::table
                            .filter(retry_uids::folder_id.eq(folder_id))
                            .filter(retry_uids::uid_validity.eq(i64::from(uid_validity)))
                            .filter(retry_uids::uid.eq_any(chunk)),
                    )
                    .execute(&mut conn)
                    .await?;
                }
                Ok(())
            }

            async fn record_local_flag_change(&self, email_id: i64, folder_id: i64, flag: String, set: bool) -> Result<i64> {
                let flag = crate::rules::flag_name(&flag)?;
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let copies: i64 = memberships::table
                        .filter(memberships::folder_id.eq(folder_id))
                        .filter(memberships::email_id.eq(email_id))
                        .count()
                        .get_result(conn)
                        .await?;
                    if copies == 0 {
                        return Err(StoreError::NotFound(format!("email {email_id} in folder {folder_id}")));
                    }
                    // The highest MODSEQ of the email's copies in the folder: MODSEQs of one
                    // folder are one sequence, so a copy the server changes after this is seen
                    // above it, whichever copy it is.
                    let modseq: Option<i64> = memberships::table
                        .filter(memberships::folder_id.eq(folder_id))
                        .filter(memberships::email_id.eq(email_id))
                        .select(diesel::dsl::max(memberships::modseq))
                        .first(conn)
                        .await?;
                    let id: i64 = diesel::insert_into(pending_flag_changes::table)
                        .values((
                            pending_flag_changes::email_id.eq(email_id),
                            pending_flag_changes::folder_id.eq(folder_id),
                            pending_flag_changes::flag.eq(&flag),
                            pending_flag_changes::set_flag.eq(set),
                            pending_flag_changes::based_on_modseq.eq(modseq),
                            pending_flag_changes::created_at.eq(now()),
                        ))
                        .returning(pending_flag_changes::id)
                        .get_result(conn)
                        .await?;
                    Ok(id)
                })
                .await
            }

            async fn pending_flag_changes(&self, folder_id: i64) -> Result<Vec<PendingFlagChange>> {
                let mut conn = self.connection().await?;
                let rows: Vec<(i64, i64, i64, String, bool, Option<i64>)> = pending_flag_changes::table
                    .filter(pending_flag_changes::folder_id.eq(folder_id))
                    .order(pending_flag_changes::id)
                    .select((
                        pending_flag_changes::id,
                        pending_flag_changes::email_id,
                        pending_flag_changes::folder_id,
                        pending_flag_changes::flag,
                        pending_flag_changes::set_flag,
                        pending_flag_changes::based_on_modseq,
                    ))
                    .load(&mut conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, email_id, folder_id, flag, set, based_on_modseq)| PendingFlagChange {
                        id,
                        email_id,
                        folder_id,
                        flag,
                        set,
                        based_on_modseq: to_u64(based_on_modseq),
                    })
                    .collect())
            }

            async fn settle_pending_flag_changes(&self, ids: Vec<i64>, dropped: Vec<DroppedFlagChange>) -> Result<()> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let folder_ids: Vec<i64> = dropped.iter().map(|d| d.folder_id).collect::<HashSet<_>>().into_iter().collect();
                    let mailbox_of: HashMap<i64, i64> = folders::table
                        .filter(folders::id.eq_any(&folder_ids))
                        .select((folders::id, folders::mailbox_id))
                        .load::<(i64, i64)>(conn)
                        .await?
                        .into_iter()
                        .collect();
                    let rows: Vec<_> = dropped
                        .iter()
                        .filter_map(|d| {
                            Some((
                                dropped_flag_changes::mailbox_id.eq(*mailbox_of.get(&d.folder_id)?),
                                dropped_flag_changes::folder_id.eq(d.folder_id),
                                dropped_flag_changes::email_id.eq(d.email_id),
                                dropped_flag_changes::uid.eq(i64::from(d.uid)),
                                dropped_flag_changes::change.eq(&d.change),
                                dropped_flag_changes::reason.eq(&d.reason),
                                dropped_flag_changes::dropped_at.eq(now()),
                            ))
                        })
                        .collect();
                    insert_all!($variant, conn, dropped_flag_changes::table, rows);
                    let oldest_kept = now() - chrono::Duration::days(DROPPED_FLAG_CHANGES_KEPT_DAYS);
                    diesel::delete(
                        dropped_flag_changes::table
                            .filter(dropped_flag_changes::mailbox_id.eq_any(mailbox_of.values().copied().collect::<Vec<_>>()))
                            .filter(dropped_flag_changes::dropped_at.lt(oldest_kept)),
                    )
                    .execute(conn)
                    .await?;
                    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                        diesel::delete(pending_flag_changes::table.filter(pending_flag_changes::id.eq_any(chunk)))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await
            }

            async fn dropped_flag_changes(
                &self,
                mailbox_id: i64,
                before: Option<i64>,
                limit: i64,
            ) -> Result<Vec<DroppedFlagChangeRecord>> {
                let mut conn = self.connection().await?;
                let rows: Vec<(i64, i64, i64, i64, i64, String, String, chrono::NaiveDateTime)> = dropped_flag_changes::table
                    .filter(dropped_flag_changes::mailbox_id.eq(mailbox_id))
                    .filter(dropped_flag_changes::id.lt(before.unwrap_or(i64::MAX)))
                    .order(dropped_flag_changes::id.desc())
                    .limit(limit.clamp(1, 1000))
                    .select((
                        dropped_flag_changes::id,
                        dropped_flag_changes::mailbox_id,
                        dropped_flag_changes::folder_id,
                        dropped_flag_changes::email_id,
                        dropped_flag_changes::uid,
                        dropped_flag_changes::change,
                        dropped_flag_changes::reason,
                        dropped_flag_changes::dropped_at,
                    ))
                    .load(&mut conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, mailbox_id, folder_id, email_id, uid, change, reason, dropped_at)| DroppedFlagChangeRecord {
                        id,
                        mailbox_id,
                        folder_id,
                        email_id,
                        uid: to_u32(Some(uid)).unwrap_or_default(),
                        change,
                        reason,
                        dropped_at: utc(dropped_at),
                    })
                    .collect())
            }

            async fn open_credential_episode(&self, mailbox_id: i64, reason: String) -> Result<EpisodeOpened> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let owner: Option<Option<i64>> = mailboxes::table
                        .find(mailbox_id)
                        .select(mailboxes::owner_user_id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(owner) = owner else {
                        return Err(StoreError::NotFound(format!("mailbox {mailbox_id}")));
                    };
                    let open: Option<EpisodeRow> = credential_episodes::table
                        .filter(credential_episodes::mailbox_id.eq(mailbox_id))
                        .filter(credential_episodes::closed_at.is_null())
                        .select(EpisodeRow::as_select())
                        .first(conn)
                        .await
                        .optional()?;
                    let recipients: Vec<i64> = match owner {
                        Some(owner) => users::table
                            .filter(users::id.eq(owner))
                            .filter(users::enabled.eq(true))
                            .select(users::id)
                            .load(conn)
                            .await?,
                        None => users::table
                            .inner_join(user_capabilities::table)
                            .filter(user_capabilities::capability.eq(CREDENTIAL_NOTIFICATIONS_CAPABILITY))
                            .filter(users::enabled.eq(true))
                            .select(users::id)
                            .order(users::id)
                            .load(conn)
                            .await?,
                    };
                    if let Some(open) = open {
                        return Ok(EpisodeOpened {
                            episode: open.into(),
                            is_new: false,
                            recipients,
                        });
                    }
                    let opened_at = now();
                    let row: EpisodeRow = diesel::insert_into(credential_episodes::table)
                        .values((
                            credential_episodes::mailbox_id.eq(mailbox_id),
                            credential_episodes::reason.eq(&reason),
                            credential_episodes::opened_at.eq(opened_at),
                        ))
                        .returning(EpisodeRow::as_returning())
                        .get_result(conn)
                        .await?;
                    for user_id in &recipients {
                        for channel in OUTBOX_CHANNELS {
                            diesel::insert_into(notification_outbox::table)
                                .values((
                                    notification_outbox::episode_id.eq(row.id),
                                    notification_outbox::user_id.eq(*user_id),
                                    notification_outbox::channel.eq(channel),
                                    notification_outbox::created_at.eq(opened_at),
                                ))
                                .execute(conn)
                                .await?;
                        }
                    }
                    notify_channel!($variant, &mut *conn, OUTBOX_NOTIFY_CHANNEL.to_owned(), row.id.to_string());
                    if recipients.is_empty() {
                        tracing::warn!(mailbox_id, "credential failure of a system mailbox that no user is to be told about");
                    }
                    Ok(EpisodeOpened {
                        episode: row.into(),
                        is_new: true,
                        recipients,
                    })
                })
                .await
            }

            async fn open_episode(&self, mailbox_id: i64) -> Result<Option<CredentialEpisode>> {
                let mut conn = self.connection().await?;
                let row: Option<EpisodeRow> = credential_episodes::table
                    .filter(credential_episodes::mailbox_id.eq(mailbox_id))
                    .filter(credential_episodes::closed_at.is_null())
                    .select(EpisodeRow::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?;
                Ok(row.map(CredentialEpisode::from))
            }

            async fn close_credential_episode(&self, mailbox_id: i64) -> Result<bool> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let open: Option<i64> = credential_episodes::table
                        .filter(credential_episodes::mailbox_id.eq(mailbox_id))
                        .filter(credential_episodes::closed_at.is_null())
                        .select(credential_episodes::id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(id) = open else { return Ok(false) };
                    let closed_at = now();
                    diesel::update(credential_episodes::table.find(id))
                        .set(credential_episodes::closed_at.eq(Some(closed_at)))
                        .execute(conn)
                        .await?;
                    diesel::update(
                        notification_outbox::table
                            .filter(notification_outbox::episode_id.eq(id))
                            .filter(notification_outbox::delivered_at.is_null()),
                    )
                    .set(notification_outbox::withdrawn_at.eq(Some(closed_at)))
                    .execute(conn)
                    .await?;
                    Ok(true)
                })
                .await
            }

            async fn login_notices(&self, user_id: i64) -> Result<Vec<CredentialEpisode>> {
                let mut conn = self.connection().await?;
                let holds_capability = diesel::dsl::exists(
                    user_capabilities::table
                        .filter(user_capabilities::user_id.eq(user_id))
                        .filter(user_capabilities::capability.eq(CREDENTIAL_NOTIFICATIONS_CAPABILITY)),
                );
                let rows: Vec<EpisodeRow> = credential_episodes::table
                    .inner_join(mailboxes::table)
                    .filter(credential_episodes::closed_at.is_null())
                    .filter(
                        mailboxes::owner_user_id
                            .eq(user_id)
                            .or(mailboxes::owner_user_id.is_null().and(holds_capability)),
                    )
                    .order(credential_episodes::opened_at)
                    .select(EpisodeRow::as_select())
                    .load(&mut conn)
                    .await?;
                Ok(rows.into_iter().map(CredentialEpisode::from).collect())
            }

            async fn undelivered_notifications(&self, limit: i64) -> Result<Vec<OutboxEntry>> {
                let mut conn = self.connection().await?;
                let now = now();
                let rows: Vec<(i64, i64, i64, String, String, String, i64, String, String, String, i32, chrono::NaiveDateTime, String)> =
                    notification_outbox::table
                        .inner_join(credential_episodes::table.inner_join(mailboxes::table))
                        .inner_join(users::table)
                        .filter(notification_outbox::delivered_at.is_null())
                        .filter(notification_outbox::withdrawn_at.is_null())
                        .filter(
                            notification_outbox::next_attempt_at
                                .is_null()
                                .or(notification_outbox::next_attempt_at.le(now)),
                        )
                        .order(notification_outbox::id)
                        .limit(limit)
                        .select((
                            notification_outbox::id,
                            notification_outbox::episode_id,
                            mailboxes::id,
                            mailboxes::email,
                            mailboxes::imap_user,
                            mailboxes::host,
                            users::id,
                            users::email,
                            notification_outbox::channel,
                            credential_episodes::reason,
                            notification_outbox::attempts,
                            credential_episodes::opened_at,
                            notification_outbox::kind,
                        ))
                        .load(&mut conn)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(id, episode_id, mailbox_id, mailbox_email, imap_user, imap_host, user_id, user_email, channel, reason, attempts, opened_at, kind)| {
                            OutboxEntry {
                                id,
                                episode_id,
                                mailbox_id,
                                mailbox_email,
                                imap_user,
                                imap_host,
                                user_id,
                                user_email,
                                channel,
                                reason,
                                attempts,
                                opened_at: utc(opened_at),
                                reminder: kind == "reminder",
                            }
                        },
                    )
                    .collect())
            }

            async fn mark_notification_delivered(&self, id: i64) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::update(notification_outbox::table.find(id))
                    .set(notification_outbox::delivered_at.eq(Some(now())))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            }

            async fn mark_notification_failed(&self, id: i64, error: String, retry_at: DateTime<Utc>) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::update(notification_outbox::table.find(id))
                    .set((
                        notification_outbox::attempts.eq(notification_outbox::attempts + 1),
                        notification_outbox::last_error.eq(Some(error)),
                        notification_outbox::next_attempt_at.eq(Some(naive(retry_at))),
                    ))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            }

            async fn queue_reminders(&self, opened_before: DateTime<Utc>) -> Result<usize> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let reminded = diesel::alias!(notification_outbox as reminded);
                    let due: Vec<(i64, i64)> = notification_outbox::table
                        .inner_join(credential_episodes::table)
                        .filter(notification_outbox::kind.eq("notice"))
                        .filter(notification_outbox::channel.eq("email"))
                        .filter(credential_episodes::closed_at.is_null())
                        .filter(credential_episodes::opened_at.le(naive(opened_before)))
                        .filter(diesel::dsl::not(diesel::dsl::exists(
                            reminded
                                .filter(reminded.field(notification_outbox::episode_id).eq(notification_outbox::episode_id))
                                .filter(reminded.field(notification_outbox::user_id).eq(notification_outbox::user_id))
                                .filter(reminded.field(notification_outbox::kind).eq("reminder")),
                        )))
                        .select((notification_outbox::episode_id, notification_outbox::user_id))
                        .load(conn)
                        .await?;
                    let created_at = now();
                    for (episode_id, user_id) in &due {
                        diesel::insert_into(notification_outbox::table)
                            .values((
                                notification_outbox::episode_id.eq(*episode_id),
                                notification_outbox::user_id.eq(*user_id),
                                notification_outbox::channel.eq("email"),
                                notification_outbox::kind.eq("reminder"),
                                notification_outbox::created_at.eq(created_at),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    if !due.is_empty() {
                        notify_channel!($variant, &mut *conn, OUTBOX_NOTIFY_CHANNEL.to_owned(), "reminders".to_owned());
                    }
                    Ok(due.len())
                })
                .await
            }

            async fn take_login_notices(&self, user_id: i64) -> Result<Vec<LoginNotice>> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let holds_capability = diesel::dsl::exists(
                        user_capabilities::table
                            .filter(user_capabilities::user_id.eq(user_id))
                            .filter(user_capabilities::capability.eq(CREDENTIAL_NOTIFICATIONS_CAPABILITY)),
                    );
                    let shown = diesel::dsl::exists(
                        login_notices_shown::table
                            .filter(login_notices_shown::episode_id.eq(credential_episodes::id))
                            .filter(login_notices_shown::user_id.eq(user_id)),
                    );
                    let enabled = diesel::dsl::exists(users::table.filter(users::id.eq(user_id)).filter(users::enabled.eq(true)));
                    let rows: Vec<(i64, i64, String, String, String, String, chrono::NaiveDateTime)> = credential_episodes::table
                        .inner_join(mailboxes::table)
                        .filter(credential_episodes::closed_at.is_null())
                        .filter(enabled)
                        .filter(diesel::dsl::not(shown))
                        .filter(
                            mailboxes::owner_user_id
                                .eq(user_id)
                                .or(mailboxes::owner_user_id.is_null().and(holds_capability)),
                        )
                        .order(credential_episodes::opened_at)
                        .select((
                            credential_episodes::id,
                            mailboxes::id,
                            mailboxes::email,
                            mailboxes::imap_user,
                            mailboxes::host,
                            credential_episodes::reason,
                            credential_episodes::opened_at,
                        ))
                        .load(conn)
                        .await?;
                    let shown_at = now();
                    for (episode_id, ..) in &rows {
                        diesel::insert_into(login_notices_shown::table)
                            .values((
                                login_notices_shown::episode_id.eq(*episode_id),
                                login_notices_shown::user_id.eq(user_id),
                                login_notices_shown::shown_at.eq(shown_at),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(rows
                        .into_iter()
                        .map(|(episode_id, mailbox_id, mailbox_email, imap_user, imap_host, reason, opened_at)| LoginNotice {
                            episode_id,
                            mailbox_id,
                            mailbox_email,
                            imap_user,
                            imap_host,
                            reason,
                            opened_at: utc(opened_at),
                        })
                        .collect())
                })
                .await
            }

            async fn notify_listeners(&self, channel: String, payload: String) -> Result<()> {
                let mut conn = self.connection().await?;
                let conn = &mut *conn;
                notify_channel!($variant, conn, channel, payload);
                Ok(())
            }

            async fn request_sync(&self, mailbox_id: i64) -> Result<DateTime<Utc>> {
                let mut conn = self.connection().await?;
                let at = now();
                let changed = diesel::update(mailboxes::table.find(mailbox_id))
                    .set(mailboxes::sync_requested_at.eq(Some(at)))
                    .execute(&mut conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {mailbox_id}")));
                }
                Ok(utc(at))
            }

            async fn clear_sync_request(&self, mailbox_id: i64, up_to: DateTime<Utc>) -> Result<()> {
                let mut conn = self.connection().await?;
                diesel::update(
                    mailboxes::table
                        .find(mailbox_id)
                        .filter(mailboxes::sync_requested_at.le(naive(up_to))),
                )
                .set(mailboxes::sync_requested_at.eq(None::<chrono::NaiveDateTime>))
                .execute(&mut conn)
                .await?;
                Ok(())
            }

            async fn sync_runs(&self, mailbox_id: i64, limit: i64) -> Result<Vec<SyncRunRecord>> {
                let mut conn = self.connection().await?;
                type Row = (i64, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>, String, Option<String>, i64, i64, i64);
                let rows: Vec<Row> = sync_runs::table
                    .filter(sync_runs::mailbox_id.eq(mailbox_id))
                    .order(sync_runs::id.desc())
                    .limit(limit.clamp(1, 1000))
                    .select((
                        sync_runs::id,
                        sync_runs::started_at,
                        sync_runs::finished_at,
                        sync_runs::outcome,
                        sync_runs::message,
                        sync_runs::emails_new,
                        sync_runs::emails_changed,
                        sync_runs::emails_removed,
                    ))
                    .load(&mut conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, started_at, finished_at, outcome, message, emails_new, emails_changed, emails_removed)| SyncRunRecord {
                        id,
                        started_at: utc(started_at),
                        finished_at: finished_at.map(utc),
                        outcome,
                        message,
                        emails_new,
                        emails_changed,
                        emails_removed,
                    })
                    .collect())
            }

            async fn start_sync_run(&self, mailbox_id: i64) -> Result<i64> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let started_at = now();
                    let id: i64 = diesel::insert_into(sync_runs::table)
                        .values((sync_runs::mailbox_id.eq(mailbox_id), sync_runs::started_at.eq(started_at)))
                        .returning(sync_runs::id)
                        .get_result(conn)
                        .await?;
                    diesel::update(mailboxes::table.find(mailbox_id))
                        .set((
                            mailboxes::sync_state.eq(SyncState::InProgress.as_str()),
                            mailboxes::last_sync_started_at.eq(Some(started_at)),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(id)
                })
                .await
            }

            async fn finish_sync_run(&self, run_id: i64, outcome: SyncRunOutcome) -> Result<()> {
                let mut conn = self.connection().await?;
                conn.transaction::<_, StoreError, _>(async |conn| {
                    let finished_at = now();
                    let mailbox_id: i64 = diesel::update(sync_runs::table.find(run_id))
                        .set((
                            sync_runs::finished_at.eq(Some(finished_at)),
                            sync_runs::outcome.eq(if outcome.success { "success" } else { "failure" }),
                            sync_runs::message.eq(&outcome.message),
                            sync_runs::emails_new.eq(outcome.emails_new),
                            sync_runs::emails_changed.eq(outcome.emails_changed),
                            sync_runs::emails_removed.eq(outcome.emails_removed),
                        ))
                        .returning(sync_runs::mailbox_id)
                        .get_result(conn)
                        .await?;
                    if outcome.success {
                        diesel::update(mailboxes::table.find(mailbox_id))
                            .set((
                                mailboxes::sync_state.eq(SyncState::Success.as_str()),
                                mailboxes::last_error.eq(None::<String>),
                                mailboxes::last_sync_finished_at.eq(Some(finished_at)),
                                mailboxes::backoff_until.eq(None::<chrono::NaiveDateTime>),
                                mailboxes::consecutive_failures.eq(0),
                            ))
                            .execute(conn)
                            .await?;
                        // A partial run leaves the mailbox due: its last success stays.
                        if !outcome.partial {
                            diesel::update(mailboxes::table.find(mailbox_id))
                                .set(mailboxes::last_success_at.eq(Some(finished_at)))
                                .execute(conn)
                                .await?;
                        }
                    } else {
                        diesel::update(mailboxes::table.find(mailbox_id))
                            .set((
                                mailboxes::sync_state.eq(SyncState::Failure.as_str()),
                                mailboxes::last_error.eq(&outcome.message),
                                mailboxes::last_sync_finished_at.eq(Some(finished_at)),
                                mailboxes::backoff_until.eq(outcome.backoff_until.map(naive)),
                                mailboxes::consecutive_failures.eq(mailboxes::consecutive_failures + 1),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await
            }
        }
    };
}

/// The claim of one due mailbox: `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
/// writer, and its transaction already excludes the others.
macro_rules! claim_candidate {
    (multi_row, $conn:expr, $query:expr) => {
        $query
            .for_update()
            .skip_locked()
            .first($conn)
            .await
            .optional()?
    };
    (row_by_row, $conn:expr, $query:expr) => {
        $query.first($conn).await.optional()?
    };
}

/// Adds to `known` the ids of the mailbox's emails with these identities, in chunks.
macro_rules! load_email_ids {
    ($conn:expr, $mailbox_id:expr, $identities:expr, $known:expr) => {
        for chunk in $identities.chunks(ROWS_PER_STATEMENT) {
            let found: Vec<(String, i64)> = emails::table
                .filter(emails::mailbox_id.eq($mailbox_id))
                .filter(emails::identity.eq_any(chunk))
                .select((emails::identity, emails::id))
                .load($conn)
                .await?;
            $known.extend(found);
        }
    };
}

/// Emails that gained a membership are in a folder: an orphan mark no longer holds.
macro_rules! clear_orphan_marks {
    ($conn:expr, $ids:expr) => {
        for chunk in $ids.chunks(ROWS_PER_STATEMENT) {
            diesel::update(
                emails::table
                    .filter(emails::id.eq_any(chunk))
                    .filter(emails::orphaned_at.is_not_null()),
            )
            .set(emails::orphaned_at.eq(None::<chrono::NaiveDateTime>))
            .execute($conn)
            .await?;
        }
    };
}

/// Memberships upserted on (folder, UIDVALIDITY, UID): a replay rewrites flags, nothing more.
macro_rules! upsert_memberships {
    (multi_row, $conn:expr, $rows:expr) => {{
        diesel::insert_into(memberships::table)
            .values($rows)
            .on_conflict((
                memberships::folder_id,
                memberships::uid_validity,
                memberships::uid,
            ))
            .do_update()
            .set((
                memberships::email_id.eq(excluded(memberships::email_id)),
                memberships::flags.eq(excluded(memberships::flags)),
                memberships::modseq.eq(excluded(memberships::modseq)),
            ))
            .execute($conn)
            .await?
    }};
    (row_by_row, $conn:expr, $rows:expr) => {{
        let mut written = 0;
        for row in $rows {
            written += diesel::insert_into(memberships::table)
                .values(row)
                .on_conflict((
                    memberships::folder_id,
                    memberships::uid_validity,
                    memberships::uid,
                ))
                .do_update()
                .set((
                    memberships::email_id.eq(excluded(memberships::email_id)),
                    memberships::flags.eq(excluded(memberships::flags)),
                    memberships::modseq.eq(excluded(memberships::modseq)),
                ))
                .execute($conn)
                .await?;
        }
        written
    }};
}

impl_store!(PgStore, multi_row);
impl_store!(SqliteStore, row_by_row);
