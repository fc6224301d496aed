//! sync-core's change tracking against the real Dovecot (full and minimal), with PostgreSQL and
//! SQLite: after every step of a scripted history, the mirror equals the server, checked
//! through a raw IMAP client.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use email_model::Store;
use imap_connector::{
    Changes, FetchParts, FetchedMessage, FlagState, Folder, ImapConnector, MailServer,
    SelectedFolder, SentCommand,
};
use secrecy::SecretString;
use sync_core::{ImapServerFactory, OutcomeStatus, ServerFactory, SyncConfig, Synchronizer};
use test_support::{DovecotVariant, RawImap, shared_dovecot};

use crate::sync::{Backend, Rig, rig_on, seed};

/// The real connector, whose command log is kept when the synchronizer logs out.
struct LoggedServer {
    inner: ImapConnector,
    log: Arc<Mutex<Vec<SentCommand>>>,
    received: Arc<Mutex<u64>>,
}

impl MailServer for LoggedServer {
    async fn capabilities(&mut self) -> imap_connector::Result<BTreeSet<String>> {
        MailServer::capabilities(&mut self.inner).await
    }
    async fn folders(&mut self, with_counts: bool) -> imap_connector::Result<Vec<Folder>> {
        MailServer::folders(&mut self.inner, with_counts).await
    }
    async fn select(&mut self, name: &str) -> imap_connector::Result<SelectedFolder> {
        MailServer::select(&mut self.inner, name).await
    }
    async fn folder_server_id(&mut self, name: &str) -> imap_connector::Result<Option<String>> {
        MailServer::folder_server_id(&mut self.inner, name).await
    }
    async fn search(
        &mut self,
        query: &imap_connector::SearchQuery,
    ) -> imap_connector::Result<Vec<u32>> {
        MailServer::search(&mut self.inner, query).await
    }
    async fn uids_from(&mut self, first: u32) -> imap_connector::Result<Vec<u32>> {
        MailServer::uids_from(&mut self.inner, first).await
    }
    async fn fetch_batch(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> imap_connector::Result<(Vec<FetchedMessage>, Vec<u32>)> {
        self.inner.fetch_batch(uids, parts).await
    }
    async fn logout(&mut self) -> imap_connector::Result<()> {
        self.log.lock().unwrap().extend(self.inner.command_log());
        *self.received.lock().unwrap() += self.inner.wire_bytes().1;
        MailServer::logout(&mut self.inner).await
    }
    async fn enable_qresync(&mut self) -> imap_connector::Result<bool> {
        MailServer::enable_qresync(&mut self.inner).await
    }
    async fn changes_since(
        &mut self,
        modseq: u64,
        up_to_uid: u32,
    ) -> imap_connector::Result<Changes> {
        MailServer::changes_since(&mut self.inner, modseq, up_to_uid).await
    }
    async fn noop(&mut self) -> imap_connector::Result<()> {
        MailServer::noop(&mut self.inner).await
    }
    async fn all_uids(&mut self) -> imap_connector::Result<Vec<u32>> {
        MailServer::all_uids(&mut self.inner).await
    }
    async fn flags_of(&mut self, uids: &[u32]) -> imap_connector::Result<Vec<FlagState>> {
        MailServer::flags_of(&mut self.inner, uids).await
    }
    async fn store_flag(
        &mut self,
        uids: &[u32],
        flag: &str,
        set: bool,
        unchanged_since: Option<u64>,
    ) -> imap_connector::Result<Vec<u32>> {
        self.inner
            .store_flag(uids, flag, set, unchanged_since)
            .await
    }
    async fn replace_flags(
        &mut self,
        uids: &[u32],
        flags: &[String],
        unchanged_since: u64,
    ) -> imap_connector::Result<Vec<u32>> {
        MailServer::replace_flags(&mut self.inner, uids, flags, unchanged_since).await
    }
    fn wire_bytes(&self) -> (u64, u64) {
        self.inner.wire_bytes()
    }
    fn commands_sent(&self) -> u64 {
        self.inner.commands_sent()
    }
    async fn wait_for_changes(
        &mut self,
        timeout: std::time::Duration,
        poll_interval: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> imap_connector::Result<imap_connector::WaitOutcome> {
        MailServer::wait_for_changes(&mut self.inner, timeout, poll_interval, stop).await
    }
}

struct LoggingFactory {
    inner: ImapServerFactory,
    log: Arc<Mutex<Vec<SentCommand>>>,
    received: Arc<Mutex<u64>>,
}

impl ServerFactory for LoggingFactory {
    type Server = LoggedServer;
    fn server_for(&self, mailbox: &email_model::Mailbox, secret: SecretString) -> LoggedServer {
        LoggedServer {
            inner: self.inner.server_for(mailbox, secret),
            log: self.log.clone(),
            received: self.received.clone(),
        }
    }
}

/// One scheduled (not forced) sync of a mailbox that is always due; returns its status and the
/// commands it sent.
pub(crate) async fn sync(rig: &Rig) -> (OutcomeStatus, Vec<SentCommand>) {
    let (status, commands, _) = sync_measured(rig).await;
    (status, commands)
}

/// [`sync`], with the bytes received from the server.
async fn sync_measured(rig: &Rig) -> (OutcomeStatus, Vec<SentCommand>, u64) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(Mutex::new(0));
    let mut inner = ImapServerFactory::default();
    inner.connect_policy = integration_tests::rig_connect_policy();
    inner.tls.extra_ca_file = Some(rig.endpoint.ca_file.clone());
    let factory = LoggingFactory {
        inner,
        log: log.clone(),
        received: received.clone(),
    };
    let config = SyncConfig {
        batch_size: 3,
        interval: std::time::Duration::ZERO,
        due_tolerance: std::time::Duration::ZERO,
        // The chaos test cuts links often: its reconnects need not wait.
        reconnect_pause: std::time::Duration::from_millis(10),
        ..SyncConfig::default()
    };
    let status = if rig.is_postgres() {
        Synchronizer::new(rig.pg(), factory, config)
            .sync_mailboxes(&[rig.mailbox_id], false)
            .await
            .unwrap()
            .outcomes[0]
            .status
            .clone()
    } else {
        Synchronizer::new(rig.sqlite(), factory, config)
            .sync_mailboxes(&[rig.mailbox_id], false)
            .await
            .unwrap()
            .outcomes[0]
            .status
            .clone()
    };
    let commands = log.lock().unwrap().clone();
    let received = *received.lock().unwrap();
    (status, commands, received)
}

/// (UIDVALIDITY, UID → sorted flags) of a folder as the server has it.
pub(crate) async fn server_state(
    raw: &mut RawImap,
    folder: &str,
) -> (u32, BTreeMap<u32, Vec<String>>) {
    let select = raw
        .command(&format!("SELECT {}", test_support::quote(folder)))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let validity = select
        .untagged
        .iter()
        .find_map(|l| {
            l.split("[UIDVALIDITY ")
                .nth(1)?
                .split(']')
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    let reply = raw
        .command("UID FETCH 1:* (UID FLAGS)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    let mut state = BTreeMap::new();
    for line in &reply.untagged {
        let Some(uid) = line
            .split("UID ")
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|u| u.parse().ok())
        else {
            continue;
        };
        let flags = line
            .split("FLAGS (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_default();
        let mut flags: Vec<String> = flags
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(str::to_owned)
            .collect();
        flags.sort();
        state.insert(uid, flags);
    }
    (validity, state)
}

async fn stored_state<S: Store>(
    store: &S,
    mailbox: i64,
    folder: &str,
) -> (Option<u32>, BTreeMap<u32, Vec<String>>, BTreeMap<u32, i64>) {
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == folder)
        .unwrap();
    let mut flags = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for membership in store.memberships(folder.id).await.unwrap() {
        assert_eq!(
            Some(membership.uid_validity),
            folder.uid_validity,
            "stale membership {membership:?}"
        );
        let mut sorted = membership.flags.clone();
        sorted.sort();
        flags.insert(membership.uid, sorted);
        ids.insert(membership.uid, membership.email_id);
    }
    (folder.uid_validity, flags, ids)
}

/// UID → email id per folder, as the mirror holds them now (nothing compared).
pub(crate) async fn stored_ids(
    rig: &Rig,
    folders: &[&str],
) -> BTreeMap<String, BTreeMap<u32, i64>> {
    let mut ids = BTreeMap::new();
    for folder in folders {
        let (_, _, email_ids) = if rig.is_postgres() {
            stored_state(&rig.pg(), rig.mailbox_id, folder).await
        } else {
            stored_state(&rig.sqlite(), rig.mailbox_id, folder).await
        };
        ids.insert((*folder).to_owned(), email_ids);
    }
    ids
}

/// The mirror equals the server for these folders, each message its own email; returns UID →
/// email id per folder.
pub(crate) async fn assert_mirror(
    rig: &Rig,
    raw: &mut RawImap,
    folders: &[&str],
    step: &str,
) -> BTreeMap<String, BTreeMap<u32, i64>> {
    assert_mirror_of(rig, raw, folders, step, true).await
}

/// [`assert_mirror`]; with `distinct` false, several UIDs of one folder may share an email (the
/// same message copied twice into a folder is one email).
pub(crate) async fn assert_mirror_of(
    rig: &Rig,
    raw: &mut RawImap,
    folders: &[&str],
    step: &str,
    distinct: bool,
) -> BTreeMap<String, BTreeMap<u32, i64>> {
    let mut ids = BTreeMap::new();
    for folder in folders {
        let (validity, on_server) = server_state(raw, folder).await;
        let (stored_validity, stored, email_ids) = if rig.is_postgres() {
            stored_state(&rig.pg(), rig.mailbox_id, folder).await
        } else {
            stored_state(&rig.sqlite(), rig.mailbox_id, folder).await
        };
        assert_eq!(
            stored_validity,
            Some(validity),
            "{step}: {folder} UIDVALIDITY"
        );
        assert_eq!(stored, on_server, "{step}: {folder}");
        if distinct {
            let emails: BTreeSet<&i64> = email_ids.values().collect();
            assert_eq!(
                emails.len(),
                email_ids.len(),
                "{step}: {folder}: each message one email"
            );
        }
        ids.insert((*folder).to_owned(), email_ids);
    }
    ids
}

pub(crate) async fn record_local_change(
    rig: &Rig,
    folder: &str,
    email_id: i64,
    flag: &str,
    set: bool,
) {
    let folder_id = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.full_name == folder)
        .unwrap()
        .id;
    if rig.is_postgres() {
        rig.pg()
            .record_local_flag_change(email_id, folder_id, flag.into(), set)
            .await
            .unwrap();
    } else {
        rig.sqlite()
            .record_local_flag_change(email_id, folder_id, flag.into(), set)
            .await
            .unwrap();
    }
}

async fn scenario(backend: Backend, variant: DovecotVariant) {
    let endpoint = shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"));
    let rig = rig_on(backend, endpoint, "scenario", 365).await;
    let mut raw = rig.raw().await;
    let mut other = rig.raw().await;
    let full = variant == DovecotVariant::Full;
    let mut all_commands = Vec::new();

    // Initial sync; Archive switched on.
    seed(&mut raw, "INBOX", 40, 6, (1, 100)).await;
    seed(&mut raw, "Archive", 41, 2, (1, 100)).await;
    sync(&rig).await;
    rig.switch_folder("Archive", true).await;
    let (status, commands) = sync(&rig).await;
    assert_eq!(status, OutcomeStatus::Success);
    all_commands.extend(commands);
    let ids = assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "initial").await;

    // Flags changed and a message expunged by another client; new mail; a move INBOX → Archive.
    other.command("SELECT INBOX").await.unwrap().ok().unwrap();
    other
        .command("UID STORE 2 +FLAGS (\\Flagged)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    other
        .command("UID STORE 3 FLAGS (\\Answered)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    other
        .command("UID STORE 4 +FLAGS (\\Deleted)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    other.command("EXPUNGE").await.unwrap().ok().unwrap();
    seed(&mut other, "INBOX", 42, 2, (0, 1)).await;
    let moved_id = ids["INBOX"][&5];
    move_message(&mut other, "INBOX", "Archive", 5, full).await;
    let (status, commands) = sync(&rig).await;
    assert_eq!(status, OutcomeStatus::Success);
    all_commands.extend(commands);
    let ids = assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "changes and move").await;
    let (&archive_uid, _) = ids["Archive"]
        .iter()
        .find(|(_, id)| **id == moved_id)
        .expect("the moved email keeps its id");

    // And back: Archive → INBOX.
    move_message(&mut other, "Archive", "INBOX", archive_uid, full).await;
    all_commands.extend(sync(&rig).await.1);
    let ids = assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "move back").await;
    assert!(
        ids["INBOX"].values().any(|id| *id == moved_id),
        "its id survives the move back"
    );

    // Local flag changes: one plain, one conflicting with a later server change.
    let (first_uid, first_id) = ids["INBOX"].iter().next().map(|(u, i)| (*u, *i)).unwrap();
    record_local_change(&rig, "INBOX", first_id, "\\Flagged", true).await;
    record_local_change(&rig, "INBOX", ids["INBOX"][&2], "\\Flagged", false).await;
    other.command("SELECT INBOX").await.unwrap().ok().unwrap();
    other
        .command("UID STORE 2 +FLAGS (\\Answered)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    all_commands.extend(sync(&rig).await.1);
    let (_, on_server) = server_state(&mut raw, "INBOX").await;
    assert!(
        on_server[&first_uid].contains(&"\\Flagged".to_owned()),
        "a local change is pushed"
    );
    assert_eq!(
        on_server[&2].contains(&"\\Flagged".to_owned()),
        full,
        "with CONDSTORE the server's later change wins; without it the local change does"
    );
    assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "local changes").await;
    // The change the server's flags overrode is recorded for the host, not silently deleted.
    let dropped = if rig.is_postgres() {
        rig.pg()
            .dropped_flag_changes(rig.mailbox_id, None, 10)
            .await
    } else {
        rig.sqlite()
            .dropped_flag_changes(rig.mailbox_id, None, 10)
            .await
    }
    .unwrap();
    if full {
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert_eq!(
            (
                dropped[0].uid,
                dropped[0].email_id,
                dropped[0].change.as_str()
            ),
            (2, ids["INBOX"][&2], "-\\Flagged")
        );
        assert!(dropped[0].reason.contains("server changed"), "{dropped:?}");
    } else {
        assert!(
            dropped.is_empty(),
            "without CONDSTORE the local change wins: {dropped:?}"
        );
    }

    // Archive recreated with the same mail: a new UIDVALIDITY; email ids stay.
    let archive_ids: BTreeSet<i64> = ids["Archive"].values().copied().collect();
    recreate_with_same_mail(&mut other, "Archive").await;
    all_commands.extend(sync(&rig).await.1);
    let ids = assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "UIDVALIDITY change").await;
    let after: BTreeSet<i64> = ids["Archive"].values().copied().collect();
    assert_eq!(
        after, archive_ids,
        "UIDVALIDITY change: same emails, no re-download, no duplicate"
    );

    // Archive switched off keeps its mail and stops following; switched on, it catches up.
    rig.switch_folder("Archive", false).await;
    other.command("SELECT Archive").await.unwrap().ok().unwrap();
    other
        .command("UID STORE 1:* +FLAGS (\\Seen \\Flagged)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    all_commands.extend(sync(&rig).await.1);
    let (_, stored, _) = if rig.is_postgres() {
        stored_state(&rig.pg(), rig.mailbox_id, "Archive").await
    } else {
        stored_state(&rig.sqlite(), rig.mailbox_id, "Archive").await
    };
    assert_eq!(stored.len(), archive_ids.len(), "switched off: mail kept");
    rig.switch_folder("Archive", true).await;
    all_commands.extend(sync(&rig).await.1);
    assert_mirror(&rig, &mut raw, &["INBOX", "Archive"], "switched back on").await;

    if !full {
        for command in &all_commands {
            assert!(
                ![
                    "ENABLE",
                    "UID MOVE",
                    "UID EXPUNGE",
                    "COMPRESS",
                    "IDLE",
                    "ID"
                ]
                .contains(&command.name.as_str()),
                "minimal server: {command:?} relies on a hidden extension"
            );
            assert!(
                command.extensions.iter().all(|e| ![
                    "CONDSTORE",
                    "QRESYNC",
                    "CHANGEDSINCE",
                    "UNCHANGEDSINCE",
                    "MODSEQ",
                    "RETURN",
                    "STATUS"
                ]
                .contains(e)),
                "minimal server: {command:?} relies on a hidden extension"
            );
        }
    } else {
        assert!(
            all_commands
                .iter()
                .any(|c| c.extensions.contains(&"CHANGEDSINCE")),
            "the full server is followed by CHANGEDSINCE"
        );
    }
}

/// Deletes `folder` and creates it again holding copies of the same mail: a new UIDVALIDITY.
pub(crate) async fn recreate_with_same_mail(raw: &mut RawImap, folder: &str) {
    for command in [
        "CREATE Rebuilt".to_owned(),
        format!("SELECT {folder}"),
        "UID COPY 1:* Rebuilt".to_owned(),
        "CLOSE".to_owned(),
        format!("DELETE {folder}"),
        format!("RENAME Rebuilt {folder}"),
    ] {
        raw.command(&command).await.unwrap().ok().unwrap();
    }
}

/// Moves one message as a user's client would: UID MOVE, or COPY, \\Deleted and EXPUNGE.
pub(crate) async fn move_message(
    raw: &mut RawImap,
    from: &str,
    to: &str,
    uid: u32,
    with_move: bool,
) {
    raw.command(&format!("SELECT {from}"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    if with_move {
        raw.command(&format!("UID MOVE {uid} {to}"))
            .await
            .unwrap()
            .ok()
            .unwrap();
    } else {
        raw.command(&format!("UID COPY {uid} {to}"))
            .await
            .unwrap()
            .ok()
            .unwrap();
        raw.command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
            .await
            .unwrap()
            .ok()
            .unwrap();
        raw.command("EXPUNGE").await.unwrap().ok().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_full_scenario() {
    scenario(Backend::Postgres, DovecotVariant::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_scenario() {
    scenario(Backend::Sqlite, DovecotVariant::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_minimal_scenario() {
    scenario(Backend::Postgres, DovecotVariant::Minimal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_minimal_scenario() {
    scenario(Backend::Sqlite, DovecotVariant::Minimal).await;
}

/// A UIDVALIDITY change costs identity headers, not bodies; a sync with no change costs the
/// same few commands per folder whatever its size; an incremental sync grows with the changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_claims_hold() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let mut commands_without_change = Vec::new();
    for size in [100usize, 2000] {
        let rig = rig_on(Backend::Sqlite, endpoint, "cost", 365).await;
        let mut raw = rig.raw().await;
        raw.create_folder("Bulk").await.unwrap();
        seed(&mut raw, "Bulk", 50, size, (1, 300)).await;
        sync(&rig).await;
        rig.switch_folder("Bulk", true).await;
        let (status, _, first_bytes) = sync_measured(&rig).await;
        assert_eq!(status, OutcomeStatus::Success);
        let (_, unchanged, unchanged_bytes) = sync_measured(&rig).await;
        let per_folder: Vec<&str> = unchanged
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !["LOGIN", "ID", "COMPRESS", "LIST", "ENABLE", "LOGOUT"].contains(n))
            .collect();
        commands_without_change.push(per_folder.len());
        assert!(
            unchanged_bytes < 20_000,
            "a no-change sync of {size} messages received {unchanged_bytes} bytes"
        );

        if size == 2000 {
            // An incremental sync grows with the changes: 10 flag changes and 5 new messages.
            let mut other = rig.raw().await;
            other.command("SELECT Bulk").await.unwrap().ok().unwrap();
            other
                .command("UID STORE 1:10 +FLAGS (\\Flagged)")
                .await
                .unwrap()
                .ok()
                .unwrap();
            seed(&mut other, "Bulk", 51, 5, (0, 1)).await;
            let (_, incremental, incremental_bytes) = sync_measured(&rig).await;
            assert!(incremental.len() < unchanged.len() + 8, "{incremental:?}");
            assert!(
                incremental_bytes < unchanged_bytes + 5 * 80_000,
                "{incremental_bytes}"
            );

            // The folder recreated with the same mail: identity headers only, no bodies.
            recreate_with_same_mail(&mut other, "Bulk").await;
            let (status, _, remap_bytes) = sync_measured(&rig).await;
            assert_eq!(status, OutcomeStatus::Success);
            assert!(
                remap_bytes * 5 < first_bytes,
                "a UIDVALIDITY change received {remap_bytes} bytes; the first sync {first_bytes}"
            );
            assert_mirror(&rig, &mut raw, &["Bulk"], "after the UIDVALIDITY change").await;
        }
    }
    assert_eq!(
        commands_without_change[0], commands_without_change[1],
        "bounded whatever the folder size"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_syncs_folders_at_once_and_mail_later() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let rig = rig_on(Backend::Sqlite, endpoint, "settings", 365).await;
    let mut raw = rig.raw().await;
    raw.create_folder("Clients").await.unwrap();
    seed(&mut raw, "INBOX", 60, 3, (1, 10)).await;
    let mut factory = ImapServerFactory::default();
    factory.connect_policy = integration_tests::rig_connect_policy();
    factory.tls.extra_ca_file = Some(endpoint.ca_file.clone());
    let synchronizer = Synchronizer::new(rig.sqlite(), factory, SyncConfig::default());
    assert_eq!(
        synchronizer.settings_changed(rig.mailbox_id).await.unwrap(),
        OutcomeStatus::Success
    );
    let folders: Vec<String> = rig
        .folders()
        .await
        .into_iter()
        .map(|f| f.full_name)
        .collect();
    assert!(folders.contains(&"Clients".to_owned()), "{folders:?}");
    assert!(
        rig.sqlite()
            .emails(rig.mailbox_id)
            .await
            .unwrap()
            .is_empty(),
        "mail waits for the next run"
    );
}
