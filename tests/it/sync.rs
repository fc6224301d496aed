//! sync-core against the rig's Dovecot, with PostgreSQL and with SQLite. The mirror is checked
//! through a raw IMAP client, never through the connector under test.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{Duration, Utc};
use email_model::secrets::Keyring;
use email_model::{
    AuthKind, ImapSettings, NewMailbox, PgStore, Security, SqliteStore, Store, StoreOptions,
};
use integration_tests::workspace_root;
use secrecy::SecretString;
use sync_core::{ImapServerFactory, OutcomeStatus, ProgressEvent, SyncConfig, Synchronizer};
use test_support::{
    DovecotEndpoint, DovecotVariant, MailGenerator, MailGeneratorConfig, RawImap, TestDatabase,
    TestSqlite, shared_dovecot,
};

pub(crate) fn dovecot() -> &'static DovecotEndpoint {
    shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"))
}

/// A mailbox on the rig's Dovecot mirrored into a fresh database of either backend.
pub(crate) struct Rig {
    pub(crate) database_url: String,
    pub(crate) keys: String,
    pub(crate) user: String,
    pub(crate) mailbox_id: i64,
    pub(crate) endpoint: &'static DovecotEndpoint,
    _database: Box<dyn std::any::Any + Send>,
}

fn keys() -> String {
    let mut key = [0u8; 32];
    key.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8 ^ 0x5a);
    format!(
        "k1:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

async fn rig(backend: Backend, purpose: &str, first_sync_days: i32) -> Rig {
    rig_on(backend, dovecot(), purpose, first_sync_days).await
}

pub(crate) async fn rig_on(
    backend: Backend,
    endpoint: &'static DovecotEndpoint,
    purpose: &str,
    first_sync_days: i32,
) -> Rig {
    rig_through(
        backend,
        endpoint,
        purpose,
        first_sync_days,
        endpoint.plain_port,
    )
    .await
}

/// [`rig_on`] with the mailbox's IMAP port set to `port` (a proxy in front of the endpoint).
pub(crate) async fn rig_through(
    backend: Backend,
    endpoint: &'static DovecotEndpoint,
    purpose: &str,
    first_sync_days: i32,
    port: u16,
) -> Rig {
    let (database_url, database): (String, Box<dyn std::any::Any + Send>) = match backend {
        Backend::Postgres => {
            let database = TestDatabase::new(&workspace_root().join("migrations/postgres"))
                .await
                .unwrap();
            (database.url().to_owned(), Box::new(database))
        }
        Backend::Sqlite => {
            let database = TestSqlite::new(&workspace_root().join("migrations/sqlite")).unwrap();
            (database.url(), Box::new(database))
        }
    };
    let user = endpoint.fresh_user(purpose);
    let mut rig = Rig {
        database_url,
        keys: keys(),
        user: user.clone(),
        mailbox_id: 0,
        endpoint,
        _database: database,
    };
    let new_mailbox = rig_mailbox(endpoint, user, port, first_sync_days);
    rig.mailbox_id = match backend {
        Backend::Postgres => rig.pg().create_mailbox(new_mailbox).await.unwrap().id,
        Backend::Sqlite => rig.sqlite().create_mailbox(new_mailbox).await.unwrap().id,
    };
    rig
}

/// A system mailbox of the rig's Dovecot user `user`, reached on `port`.
fn rig_mailbox(
    endpoint: &DovecotEndpoint,
    user: String,
    port: u16,
    first_sync_days: i32,
) -> NewMailbox {
    NewMailbox {
        owner_user_id: None,
        email: format!("{user}@example.test"),
        imap: ImapSettings {
            host: endpoint.host.clone(),
            port,
            security: Security::None,
            user,
        },
        auth_kind: AuthKind::Password,
        secret: Some(SecretString::from(endpoint.password.clone())),
        oauth_settings: None,
        first_sync_days,
    }
}

impl Rig {
    pub(crate) fn keyring(&self) -> Keyring {
        Keyring::from_config(&self.keys).unwrap()
    }

    pub(crate) fn pg(&self) -> PgStore {
        PgStore::connect(&self.database_url, self.keyring(), StoreOptions::default()).unwrap()
    }

    pub(crate) fn sqlite(&self) -> SqliteStore {
        SqliteStore::open(
            std::path::Path::new(&self.database_url),
            self.keyring(),
            StoreOptions::default(),
        )
        .unwrap()
    }

    pub(crate) fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
    }

    pub(crate) async fn raw(&self) -> RawImap {
        RawImap::login_to(self.endpoint, &self.user).await.unwrap()
    }

    fn factory() -> ImapServerFactory {
        let mut factory = ImapServerFactory::default();
        factory.connect_policy = integration_tests::rig_connect_policy();
        factory.tls.extra_ca_file = Some(dovecot().ca_file.clone());
        factory
    }

    /// Runs one sync in-process; returns the committed batches (folder, UIDs) and the status.
    pub(crate) async fn sync(&self, batch_size: usize) -> (Vec<(String, Vec<u32>)>, OutcomeStatus) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sink = batches.clone();
        let progress: sync_core::ProgressSink = Arc::new(move |event: &ProgressEvent| {
            if let ProgressEvent::BatchCommitted { folder, uids, .. } = event {
                sink.lock().unwrap().push((folder.clone(), uids.clone()));
            }
        });
        let config = SyncConfig {
            batch_size,
            ..SyncConfig::default()
        };
        let status = if self.is_postgres() {
            let synchronizer =
                Synchronizer::new(self.pg(), Self::factory(), config).with_progress(progress);
            synchronizer
                .sync_mailboxes(&[self.mailbox_id], true)
                .await
                .unwrap()
                .outcomes[0]
                .status
                .clone()
        } else {
            let synchronizer =
                Synchronizer::new(self.sqlite(), Self::factory(), config).with_progress(progress);
            synchronizer
                .sync_mailboxes(&[self.mailbox_id], true)
                .await
                .unwrap()
                .outcomes[0]
                .status
                .clone()
        };
        let batches = batches.lock().unwrap().clone();
        (batches, status)
    }

    /// Adds another mailbox (a fresh Dovecot user) to the rig's database; returns its id and
    /// login.
    pub(crate) async fn add_mailbox(&self, purpose: &str) -> (i64, String) {
        let user = self.endpoint.fresh_user(purpose);
        let new_mailbox = rig_mailbox(self.endpoint, user.clone(), self.endpoint.plain_port, 365);
        let id = if self.is_postgres() {
            self.pg().create_mailbox(new_mailbox).await.unwrap().id
        } else {
            self.sqlite().create_mailbox(new_mailbox).await.unwrap().id
        };
        (id, user)
    }

    /// One `run_due` with `config` (what `imap-sync sync` without `--mailbox` does).
    pub(crate) async fn run_due(&self, config: SyncConfig) -> sync_core::RunReport {
        if self.is_postgres() {
            Synchronizer::new(self.pg(), Self::factory(), config)
                .run_due()
                .await
        } else {
            Synchronizer::new(self.sqlite(), Self::factory(), config)
                .run_due()
                .await
        }
        .unwrap()
    }

    /// Runs one forced sync in-process with `config`; returns the mailbox's outcome.
    pub(crate) async fn sync_outcome(&self, config: SyncConfig) -> sync_core::MailboxOutcome {
        let report = if self.is_postgres() {
            Synchronizer::new(self.pg(), Self::factory(), config)
                .sync_mailboxes(&[self.mailbox_id], true)
                .await
        } else {
            Synchronizer::new(self.sqlite(), Self::factory(), config)
                .sync_mailboxes(&[self.mailbox_id], true)
                .await
        };
        report.unwrap().outcomes.remove(0)
    }

    /// Message-IDs of the emails stored with a membership in `folder`.
    async fn stored_ids(&self, folder: &str) -> BTreeSet<String> {
        async fn ids<S: Store>(store: S, mailbox: i64, folder: &str) -> BTreeSet<String> {
            let Some(folder) = store
                .folders(mailbox)
                .await
                .unwrap()
                .into_iter()
                .find(|f| f.full_name == folder)
            else {
                return BTreeSet::new();
            };
            let emails: std::collections::HashMap<i64, Option<String>> = store
                .emails(mailbox)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.id, e.message_id))
                .collect();
            let memberships = store.memberships(folder.id).await.unwrap();
            let mut seen = BTreeSet::new();
            for membership in memberships {
                let id = emails[&membership.email_id].clone().unwrap_or_default();
                assert!(seen.insert(id.clone()), "duplicate {id}");
            }
            seen
        }
        if self.is_postgres() {
            ids(self.pg(), self.mailbox_id, folder).await
        } else {
            ids(self.sqlite(), self.mailbox_id, folder).await
        }
    }

    pub(crate) async fn folders(&self) -> Vec<email_model::Folder> {
        if self.is_postgres() {
            self.pg().folders(self.mailbox_id).await.unwrap()
        } else {
            self.sqlite().folders(self.mailbox_id).await.unwrap()
        }
    }

    async fn set_folder_sync(&self, name: &str) {
        self.switch_folder(name, true).await;
    }

    pub(crate) async fn switch_folder(&self, name: &str, enabled: bool) {
        let id = self
            .folders()
            .await
            .into_iter()
            .find(|f| f.full_name == name)
            .unwrap()
            .id;
        if self.is_postgres() {
            self.pg().set_folder_sync(id, enabled).await.unwrap();
        } else {
            self.sqlite().set_folder_sync(id, enabled).await.unwrap();
        }
    }

    /// Runs the `sync-once` binary (a separate process the tests may abort or kill).
    pub(crate) fn sync_once(&self, failpoint: Option<usize>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-once"));
        command
            .arg(&self.database_url)
            .arg(self.mailbox_id.to_string())
            .env("IMAP_SYNC_SECRET_KEYS", &self.keys)
            .env("IMAP_SYNC_EXTRA_CA", &dovecot().ca_file)
            .env("IMAP_SYNC_BATCH_SIZE", "4")
            // A crashed run's lease must expire before the next run may take the mailbox.
            .env("IMAP_SYNC_LEASE_SECS", "1");
        if let Some(after) = failpoint {
            command.env("IMAP_SYNC_FAILPOINT_AFTER_BATCHES", after.to_string());
        }
        command
    }
}

/// Appends `count` generated messages to `folder`, received `days_ago.0`–`days_ago.1` days ago;
/// returns their Message-IDs (without brackets).
pub(crate) async fn seed(
    raw: &mut RawImap,
    folder: &str,
    seed: u64,
    count: usize,
    days_ago: (i64, i64),
) -> Vec<String> {
    let end = Utc::now() - Duration::days(days_ago.0);
    let config = MailGeneratorConfig::over_days_before(seed, end, days_ago.1 - days_ago.0);
    let mut ids = Vec::new();
    for message in MailGenerator::new(config).take(count) {
        raw.append(
            folder,
            &message.flags,
            Some(message.internal_date),
            &message.raw,
        )
        .await
        .unwrap();
        ids.push(message.message_id.trim_matches(['<', '>']).to_owned());
    }
    ids
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

async fn first_sync_window_newest_first_new_mail_and_backfill(backend: Backend) {
    let rig = rig(backend, "window", 365).await;
    let mut raw = rig.raw().await;
    let old = seed(&mut raw, "INBOX", 1, 6, (400, 700)).await;
    let recent = seed(&mut raw, "INBOX", 2, 10, (1, 300)).await;

    let (batches, status) = rig.sync(3).await;
    assert_eq!(status, OutcomeStatus::Success);
    assert_eq!(
        rig.stored_ids("INBOX").await,
        set(&recent),
        "exactly the in-window mail"
    );
    // Newest first: every batch's UIDs are below the previous batch's.
    let inbox: Vec<&Vec<u32>> = batches
        .iter()
        .filter(|(f, _)| f == "INBOX")
        .map(|(_, u)| u)
        .collect();
    assert_eq!(inbox.len(), 4);
    for pair in inbox.windows(2) {
        assert!(
            pair[0].iter().min() > pair[1].iter().max(),
            "batches {inbox:?}"
        );
    }

    let new = seed(&mut raw, "INBOX", 3, 2, (0, 1)).await;
    // A message moved in with an old date is new mail all the same.
    let moved_in = seed(&mut raw, "INBOX", 4, 1, (800, 801)).await;
    rig.sync(3).await;
    let mut expected = set(&recent);
    expected.extend(new.iter().cloned());
    expected.extend(moved_in.iter().cloned());
    assert_eq!(
        rig.stored_ids("INBOX").await,
        expected,
        "new mail whatever its date"
    );

    // A wider window backfills the older mail.
    if rig.is_postgres() {
        widen(&rig.pg(), rig.mailbox_id).await;
    } else {
        widen(&rig.sqlite(), rig.mailbox_id).await;
    }
    rig.sync(3).await;
    expected.extend(old.iter().cloned());
    assert_eq!(rig.stored_ids("INBOX").await, expected);
}

/// Widens the mailbox's window to 1,000 days (the CLI will do this with `mailbox update`).
async fn widen<S: Store>(store: &S, mailbox: i64) {
    store.set_first_sync_days(mailbox, 1000).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_sync_window_newest_first_new_mail_and_backfill() {
    first_sync_window_newest_first_new_mail_and_backfill(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_first_sync_window_newest_first_new_mail_and_backfill() {
    first_sync_window_newest_first_new_mail_and_backfill(Backend::Sqlite).await;
}

async fn folders_created_renamed_and_deleted(backend: Backend) {
    let rig = rig(backend, "folders", 365).await;
    let mut raw = rig.raw().await;
    raw.create_folder("Projects").await.unwrap();
    raw.create_folder("Empty").await.unwrap();
    let project_mail = seed(&mut raw, "Projects", 5, 2, (1, 10)).await;
    rig.sync(10).await;
    let folders = rig.folders().await;
    let names: Vec<&str> = folders.iter().map(|f| f.full_name.as_str()).collect();
    assert!(
        names.contains(&"Projects") && names.contains(&"Empty"),
        "{names:?}"
    );
    let enabled: Vec<&str> = folders
        .iter()
        .filter(|f| f.sync_enabled)
        .map(|f| f.full_name.as_str())
        .collect();
    assert_eq!(
        enabled,
        ["INBOX", "Sent"],
        "INBOX and Sent only, until the user enables more"
    );

    rig.set_folder_sync("Projects").await;
    rig.sync(10).await;
    assert_eq!(rig.stored_ids("Projects").await, set(&project_mail));
    let projects_id = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.full_name == "Projects")
        .unwrap()
        .id;

    raw.command(r#"RENAME "Projects" "Work""#)
        .await
        .unwrap()
        .ok()
        .unwrap();
    raw.command(r#"DELETE "Empty""#)
        .await
        .unwrap()
        .ok()
        .unwrap();
    rig.sync(10).await;
    let folders = rig.folders().await;
    let work = folders
        .iter()
        .find(|f| f.full_name == "Work")
        .expect("renamed");
    assert_eq!(work.id, projects_id, "a rename keeps the folder's history");
    assert!(
        !folders.iter().any(|f| f.full_name == "Empty"),
        "an empty folder gone on the server goes"
    );
    assert_eq!(rig.stored_ids("Work").await, set(&project_mail));

    raw.command(r#"DELETE "Work""#).await.unwrap().ok().unwrap();
    rig.sync(10).await;
    let work = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.id == projects_id)
        .expect("kept");
    assert!(work.gone_since.is_some());
    assert_eq!(
        rig.stored_ids("Work").await,
        set(&project_mail),
        "its mail intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_folders_created_renamed_and_deleted() {
    folders_created_renamed_and_deleted(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_folders_created_renamed_and_deleted() {
    folders_created_renamed_and_deleted(Backend::Sqlite).await;
}

fn wait_for_lease_expiry() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn committed_batches(stdout: &[u8]) -> Vec<Vec<u32>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("batch INBOX "))
        .map(|uids| uids.split(' ').map(|u| u.parse().unwrap()).collect())
        .collect()
}

async fn crash_after_each_batch_resumes_without_gap_or_duplicate(backend: Backend) {
    for failpoint in 1..=3 {
        let rig = rig(backend, "crash", 365).await;
        let mut raw = rig.raw().await;
        let recent = seed(&mut raw, "INBOX", 10 + failpoint as u64, 14, (1, 200)).await;

        let first = rig.sync_once(Some(failpoint)).output().unwrap();
        assert!(!first.status.success(), "the failpoint aborts the process");
        let committed = committed_batches(&first.stdout);
        assert_eq!(committed.len(), failpoint);
        let stored = rig.stored_ids("INBOX").await;
        assert_eq!(
            stored.len(),
            failpoint * 4,
            "each committed batch is in the database"
        );

        wait_for_lease_expiry();
        let second = rig.sync_once(None).output().unwrap();
        assert!(
            second.status.success(),
            "{}",
            String::from_utf8_lossy(&second.stderr)
        );
        let resumed: Vec<u32> = committed_batches(&second.stdout)
            .into_iter()
            .flatten()
            .collect();
        let before: BTreeSet<u32> = committed.into_iter().flatten().collect();
        assert!(
            resumed.iter().all(|uid| !before.contains(uid)),
            "the second run fetched only what was not committed"
        );
        assert_eq!(
            before.len() + resumed.len(),
            14,
            "second run: {}",
            String::from_utf8_lossy(&second.stdout)
        );
        assert_eq!(
            rig.stored_ids("INBOX").await,
            set(&recent),
            "no gap, no duplicate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_after_each_batch_resumes_without_gap_or_duplicate() {
    crash_after_each_batch_resumes_without_gap_or_duplicate(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_after_each_batch_resumes_without_gap_or_duplicate() {
    crash_after_each_batch_resumes_without_gap_or_duplicate(Backend::Sqlite).await;
}

async fn killed_at_random_moments_still_converges(backend: Backend) {
    let rig = rig(backend, "sigkill", 365).await;
    let mut raw = rig.raw().await;
    let recent = seed(&mut raw, "INBOX", 20, 40, (1, 200)).await;
    // Deterministic "random" moments: the test must fail the same way twice.
    for delay_ms in [40u64, 90, 150, 230] {
        let mut child = rig
            .sync_once(None)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        wait_for_lease_expiry();
    }
    let last = rig.sync_once(None).output().unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    assert_eq!(rig.stored_ids("INBOX").await, set(&recent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_at_random_moments_still_converges() {
    killed_at_random_moments_still_converges(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_at_random_moments_still_converges() {
    killed_at_random_moments_still_converges(Backend::Sqlite).await;
}

/// The body of every message in `folder`, by UID, read with the raw client.
async fn server_messages(raw: &mut RawImap, folder: &str) -> Vec<(u32, Vec<u8>)> {
    raw.command(&format!("SELECT {}", test_support::quote(folder)))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let reply = raw
        .command("UID FETCH 1:* (UID BODY.PEEK[])")
        .await
        .unwrap()
        .ok()
        .unwrap();
    reply
        .untagged
        .iter()
        .filter_map(|line| {
            let uid: u32 = line
                .split("UID ")
                .nth(1)?
                .split([' ', ')'])
                .next()?
                .parse()
                .ok()?;
            let (head, rest) = line.split_once("BODY[] {")?;
            let _ = head;
            let (length, body) = rest.split_once("}\r\n")?;
            let length: usize = length.parse().ok()?;
            Some((uid, body.as_bytes()[..length].to_vec()))
        })
        .collect()
}

async fn stored_emails(rig: &Rig) -> Vec<email_model::StoredEmail> {
    if rig.is_postgres() {
        rig.pg().emails(rig.mailbox_id).await.unwrap()
    } else {
        rig.sqlite().emails(rig.mailbox_id).await.unwrap()
    }
}

async fn the_mirror_holds_what_the_server_holds(backend: Backend) {
    let rig = rig(backend, "content", 365).await;
    let mut raw = rig.raw().await;
    for (_, bytes) in integration_tests::corpus() {
        raw.append("INBOX", &[], Some(Utc::now() - Duration::days(2)), &bytes)
            .await
            .unwrap();
    }
    seed(&mut raw, "INBOX", 30, 20, (1, 100)).await;
    let (_, status) = rig.sync(7).await;
    assert_eq!(status, OutcomeStatus::Success);

    let stored = stored_emails(&rig).await;
    let on_server = server_messages(&mut raw, "INBOX").await;
    assert_eq!(on_server.len(), integration_tests::corpus().len() + 20);
    assert_eq!(stored.len(), on_server.len());
    for (uid, bytes) in &on_server {
        let message = mail_parser::MessageParser::default().parse(bytes).unwrap();
        let subject = message.subject().map(str::to_owned);
        let candidates: Vec<&email_model::StoredEmail> = stored
            .iter()
            .filter(|e| e.subject == subject && e.message_id.as_deref() == message.message_id())
            .collect();
        assert_eq!(candidates.len(), 1, "UID {uid} {subject:?}");
        let email = candidates[0];
        let from = message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned);
        assert_eq!(
            email.from.as_ref().and_then(|a| a.email.clone()),
            from,
            "UID {uid}"
        );
        let to: Vec<Option<String>> = message
            .to()
            .map(|a| a.iter().map(|a| a.address().map(str::to_owned)).collect())
            .unwrap_or_default();
        assert_eq!(
            email.to.iter().map(|a| a.email.clone()).collect::<Vec<_>>(),
            to,
            "UID {uid}"
        );
        let date = message
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp());
        assert_eq!(email.sent_at.map(|d| d.timestamp()), date, "UID {uid}");
        assert_eq!(
            email.body_text.as_deref(),
            message.body_text(0).as_deref(),
            "UID {uid}"
        );
        // HTML only where the message has an HTML part (none is made up from plain text).
        let has_html = message
            .html_body
            .first()
            .and_then(|&id| message.part(id))
            .is_some_and(|part| matches!(part.body, mail_parser::PartType::Html(_)));
        assert_eq!(
            email.body_html.as_deref(),
            message.body_html(0).filter(|_| has_html).as_deref(),
            "UID {uid}"
        );
        let attachments: Vec<(Option<String>, u64)> = message
            .attachments()
            .map(|a| {
                use mail_parser::MimeHeaders;
                (
                    a.attachment_name().map(str::to_owned),
                    a.contents().len() as u64,
                )
            })
            .collect();
        let stored_attachments: Vec<(Option<String>, u64)> = email
            .attachments
            .iter()
            .map(|a| (a.name.clone(), a.size))
            .collect();
        assert_eq!(stored_attachments, attachments, "UID {uid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_mirror_holds_what_the_server_holds() {
    the_mirror_holds_what_the_server_holds(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_mirror_holds_what_the_server_holds() {
    the_mirror_holds_what_the_server_holds(Backend::Sqlite).await;
}
