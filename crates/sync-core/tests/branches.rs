//! Each branch of the synchronizer's decisions, with a mocked server (the `MailServer` seam)
//! and a real SQLite store. The real server is exercised by the workspace's integration tests.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use email_model::secrets::{Keyring, SecretKey};
use email_model::{
    AuthKind, ImapSettings, NewMailbox, NewUser, Security, SqliteStore, Store, StoreOptions,
};
use imap_connector::{
    Body, ConnectorError, FetchedMessage, Folder, FolderType, GmailIds, Headers, MockMailServer,
    ParseProblem, SelectedFolder,
};
use secrecy::SecretString;
use sync_core::{OutcomeStatus, ServerFactory, SyncConfig, Synchronizer};
use test_support::TestSqlite;

type Boxed<T> = Pin<Box<dyn Future<Output = imap_connector::Result<T>> + Send>>;

fn ready<T: Send + 'static>(value: imap_connector::Result<T>) -> Boxed<T> {
    Box::pin(async move { value })
}

/// Hands out one prepared mock; a second request fails the test.
struct OneServer(Mutex<Option<MockMailServer>>);

impl ServerFactory for OneServer {
    type Server = MockMailServer;

    fn server_for(&self, _mailbox: &email_model::Mailbox, _secret: SecretString) -> MockMailServer {
        self.0.lock().unwrap().take().expect("one server per test")
    }
}

fn factory(server: MockMailServer) -> OneServer {
    OneServer(Mutex::new(Some(server)))
}

fn no_server() -> OneServer {
    OneServer(Mutex::new(None))
}

async fn store_with_mailbox() -> (SqliteStore, TestSqlite, i64, i64) {
    let file = TestSqlite::new(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite"),
    )
    .unwrap();
    let store = SqliteStore::open(
        file.path(),
        Keyring::new(SecretKey::generate("k1").unwrap(), vec![]),
        StoreOptions::default(),
    )
    .unwrap();
    let user = store
        .create_user(NewUser {
            email: "owner@example.test".into(),
            name: "Owner".into(),
            enabled: true,
            capabilities: vec![],
        })
        .await
        .unwrap();
    let mailbox = store
        .create_mailbox(NewMailbox {
            owner_user_id: Some(user.id),
            email: "owner@example.test".into(),
            imap: ImapSettings {
                host: "imap.example.test".into(),
                port: 993,
                security: Security::Tls,
                user: "owner".into(),
            },
            auth_kind: AuthKind::Password,
            secret: Some(SecretString::from("pw".to_owned())),
            oauth_settings: None,
            first_sync_days: 365,
        })
        .await
        .unwrap();
    (store, file, user.id, mailbox.id)
}

fn inbox() -> Folder {
    Folder {
        full_name: "INBOX".into(),
        name: "INBOX".into(),
        wire_name: "INBOX".into(),
        delimiter: Some("/".into()),
        attributes: vec![],
        selectable: true,
        folder_type: FolderType::Inbox,
        counts: None,
    }
}

fn message(uid: u32, problems: Vec<ParseProblem>) -> FetchedMessage {
    FetchedMessage {
        uid,
        flags: vec![],
        modseq: None,
        internal_date: Some(Utc::now()),
        size: Some(10),
        gmail: GmailIds::default(),
        email_id: None,
        thread_id: None,
        headers: Headers {
            message_id: problems.is_empty().then(|| format!("m{uid}@x")),
            subject: Some(format!("message {uid}")),
            ..Headers::default()
        },
        body: Body::Parsed {
            text: Some("?".into()),
            html: None,
            attachments: vec![],
        },
        problems,
        content: imap_connector::ContentKey {
            header_digest: format!("{uid:024x}"),
            body_size: 10,
            body_digest: Some(format!("{uid:032x}")),
        },
    }
}

/// A server with INBOX holding `uids`, whose FETCH returns `fetch` for any batch.
fn server_with_inbox(
    uids: Vec<u32>,
    fetch: impl Fn(&[u32]) -> (Vec<FetchedMessage>, Vec<u32>) + Send + 'static,
) -> MockMailServer {
    let mut server = MockMailServer::new();
    server
        .expect_folders()
        .returning(|_| ready(Ok(vec![inbox()])));
    server
        .expect_folder_server_id()
        .returning(|_| ready(Ok(None)));
    let top = uids.iter().max().copied().unwrap_or(0);
    server.expect_select().returning(move |_| {
        ready(Ok(SelectedFolder {
            full_name: "INBOX".into(),
            uid_validity: 7,
            uid_next: top + 1,
            exists: top,
            highest_modseq: None,
            mailbox_id: None,
        }))
    });
    // The window search lists the folder; UID ranges (a reconciliation) find nothing.
    server.expect_search().returning(move |query| {
        let found = if query.to_imap().criteria.starts_with("UID ") {
            vec![]
        } else {
            uids.clone()
        };
        ready(Ok(found))
    });
    server.expect_uids_from().returning(|_| ready(Ok(vec![])));
    server
        .expect_fetch_batch()
        .returning(move |batch, _| ready(Ok(fetch(batch))));
    server.expect_logout().returning(|| ready(Ok(())));
    server.expect_wire_bytes().returning(|| (0, 0));
    server.expect_commands_sent().returning(|| 0);
    // No CONDSTORE: later runs reconcile through the UID list and FLAGS.
    server
        .expect_capabilities()
        .returning(|| ready(Ok(std::collections::BTreeSet::new())));
    server
        .expect_enable_qresync()
        .returning(|| ready(Ok(false)));
    server.expect_noop().returning(|| ready(Ok(())));
    let listed = top;
    server
        .expect_all_uids()
        .returning(move || ready(Ok((1..=listed).collect())));
    server.expect_flags_of().returning(|uids| {
        let states = uids
            .iter()
            .map(|&uid| imap_connector::FlagState {
                uid: Some(uid),
                seq: uid,
                flags: vec![],
                modseq: None,
            })
            .collect();
        ready(Ok(states))
    });
    server
}

fn failing_server(error: fn() -> ConnectorError) -> MockMailServer {
    let mut server = MockMailServer::new();
    server
        .expect_folders()
        .times(1)
        .returning(move |_| ready(Err(error())));
    server
        .expect_folder_server_id()
        .returning(|_| ready(Ok(None)));
    server.expect_wire_bytes().returning(|| (0, 0));
    server.expect_commands_sent().returning(|| 0);
    server.expect_logout().returning(|| ready(Ok(())));
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_open_one_episode_and_back_off_exponentially() {
    let (store, _file, owner, mailbox) = store_with_mailbox().await;
    let invalid = || ConnectorError::InvalidCredentials {
        message: "[AUTHENTICATIONFAILED]".into(),
    };
    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(failing_server(invalid)),
        SyncConfig::default(),
    );
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert!(
        matches!(outcome.status, OutcomeStatus::InvalidCredentials(_)),
        "{outcome:?}"
    );
    let first = store.mailbox(mailbox).await.unwrap().unwrap();
    let backoff = first.backoff_until.unwrap() - Utc::now();
    assert!((4..=5).contains(&backoff.num_minutes()), "{backoff}");
    assert_eq!(store.login_notices(owner).await.unwrap().len(), 1);
    assert_eq!(store.undelivered_notifications(10).await.unwrap().len(), 2);

    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(failing_server(invalid)),
        SyncConfig::default(),
    );
    synchronizer.sync_mailboxes(&[mailbox], true).await.unwrap();
    let second = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(second.consecutive_failures, 2);
    assert!(
        (second.backoff_until.unwrap() - Utc::now()).num_minutes() >= 9,
        "doubled"
    );
    assert_eq!(
        store.undelivered_notifications(10).await.unwrap().len(),
        2,
        "a retry notifies nobody again"
    );

    // Back-off is respected without force, ignored with it; success closes the episode.
    let synchronizer = Synchronizer::new(store.clone(), no_server(), SyncConfig::default());
    let skipped = &synchronizer
        .sync_mailboxes(&[mailbox], false)
        .await
        .unwrap()
        .outcomes[0];
    assert!(
        matches!(skipped.status, OutcomeStatus::NotDue { due_at: Some(_) }),
        "{:?}",
        skipped.status
    );
    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(server_with_inbox(vec![], |_| (vec![], vec![]))),
        SyncConfig::default(),
    );
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Success);
    assert!(store.login_notices(owner).await.unwrap().is_empty());
    assert!(
        store
            .undelivered_notifications(10)
            .await
            .unwrap()
            .is_empty(),
        "undelivered notices withdrawn"
    );
    assert_eq!(
        store
            .mailbox(mailbox)
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_for_another_reason_is_a_plain_failure_retried_sooner() {
    let (store, _file, owner, mailbox) = store_with_mailbox().await;
    let unavailable = || ConnectorError::LoginRefused {
        code: "UNAVAILABLE".into(),
        message: "try later".into(),
    };
    let config = SyncConfig {
        backoff_base: Duration::from_secs(3600),
        ..SyncConfig::default()
    };
    let synchronizer =
        Synchronizer::new(store.clone(), factory(failing_server(unavailable)), config);
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert!(matches!(outcome.status, OutcomeStatus::Failure(_)));
    assert!(
        store.login_notices(owner).await.unwrap().is_empty(),
        "not the user's password: no episode"
    );
    let backoff = store
        .mailbox(mailbox)
        .await
        .unwrap()
        .unwrap()
        .backoff_until
        .unwrap()
        - Utc::now();
    assert!(
        backoff.num_minutes() <= 30,
        "retried within one interval: {backoff}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_honours_the_suggested_delay() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let throttled = || ConnectorError::Throttled {
        message: "Request is throttled. Suggested Backoff Time: 120000 milliseconds".into(),
    };
    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(failing_server(throttled)),
        SyncConfig::default(),
    );
    synchronizer.sync_mailboxes(&[mailbox], true).await.unwrap();
    let backoff = store
        .mailbox(mailbox)
        .await
        .unwrap()
        .unwrap()
        .backoff_until
        .unwrap()
        - Utc::now();
    assert!((110..=120).contains(&backoff.num_seconds()), "{backoff}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_by_another_worker_is_respected() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    assert!(
        store
            .acquire_lease(
                mailbox,
                "other-worker".into(),
                Utc::now() + chrono::Duration::minutes(5)
            )
            .await
            .unwrap()
    );
    let synchronizer = Synchronizer::new(store.clone(), no_server(), SyncConfig::default());
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::LeaseHeld);
    assert!(
        synchronizer.run_due().await.unwrap().outcomes.is_empty(),
        "not claimable either"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reached_time_budget_keeps_what_was_committed_and_stops() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let server = server_with_inbox((1..=6).collect(), |batch| {
        (batch.iter().map(|u| message(*u, vec![])).collect(), vec![])
    });
    let config = SyncConfig {
        mailbox_budget: Duration::ZERO,
        batch_size: 2,
        ..SyncConfig::default()
    };
    let synchronizer = Synchronizer::new(store.clone(), factory(server), config);
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Success);
    assert!(outcome.report.budget_reached);
    assert!(
        store.emails(mailbox).await.unwrap().is_empty(),
        "nothing started after the deadline"
    );
    let run_message = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(run_message.sync_state, email_model::SyncState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_message_is_stored_with_its_problems_and_blocks_nothing() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let server = server_with_inbox(vec![1, 2, 3], |batch| {
        let messages = batch
            .iter()
            .map(|&uid| {
                if uid == 2 {
                    message(uid, vec![ParseProblem::Unparsable])
                } else {
                    message(uid, vec![])
                }
            })
            .collect();
        (messages, vec![])
    });
    let synchronizer = Synchronizer::new(store.clone(), factory(server), SyncConfig::default());
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Success);
    let emails = store.emails(mailbox).await.unwrap();
    assert_eq!(emails.len(), 3);
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == "INBOX")
        .unwrap();
    assert_eq!(
        (folder.synced_up_to_uid, folder.backfill_below_uid),
        (3, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_fetch_goes_to_the_retry_table_and_is_reported_after_repeated_attempts() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let config = SyncConfig {
        max_retry_attempts: 2,
        ..SyncConfig::default()
    };
    // UID 2 is listed by SEARCH but never returned by FETCH (Office 365 does this).
    let fetch = |batch: &[u32]| {
        let messages = batch
            .iter()
            .filter(|u| **u != 2)
            .map(|u| message(*u, vec![]))
            .collect();
        let missing = batch.iter().copied().filter(|u| *u == 2).collect();
        (messages, missing)
    };
    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(server_with_inbox(vec![1, 2, 3], fetch)),
        config.clone(),
    );
    synchronizer.sync_mailboxes(&[mailbox], true).await.unwrap();
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == "INBOX")
        .unwrap();
    let retries = store.retry_uids(folder.id, 7).await.unwrap();
    assert_eq!(
        retries
            .iter()
            .map(|r| (r.uid, r.attempts))
            .collect::<Vec<_>>(),
        [(2, 1)]
    );
    assert_eq!(
        store.emails(mailbox).await.unwrap().len(),
        2,
        "the folder went on"
    );

    let synchronizer = Synchronizer::new(
        store.clone(),
        factory(server_with_inbox(vec![1, 2, 3], fetch)),
        config,
    );
    let outcome = &synchronizer
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.report.reported_uids, [("INBOX".to_owned(), 2)]);
    assert!(
        store.retry_uids(folder.id, 7).await.unwrap().is_empty(),
        "given up after two attempts"
    );
}

/// A server that has CONDSTORE and QRESYNC, with INBOX at `uid_validity` holding `uids`.
fn condstore_server(
    uid_validity: u32,
    uids: Vec<u32>,
    changes: imap_connector::Changes,
    refused: Vec<u32>,
) -> MockMailServer {
    let mut server = MockMailServer::new();
    server
        .expect_folders()
        .returning(|_| ready(Ok(vec![inbox()])));
    server
        .expect_folder_server_id()
        .returning(|_| ready(Ok(None)));
    let top = uids.iter().max().copied().unwrap_or(0);
    server.expect_capabilities().returning(|| {
        ready(Ok(["CONDSTORE", "QRESYNC"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect()))
    });
    server.expect_enable_qresync().returning(|| ready(Ok(true)));
    server.expect_noop().returning(|| ready(Ok(())));
    server.expect_select().returning(move |_| {
        ready(Ok(SelectedFolder {
            full_name: "INBOX".into(),
            uid_validity,
            uid_next: top + 1,
            exists: top,
            highest_modseq: Some(100),
            mailbox_id: None,
        }))
    });
    let listed = uids.clone();
    // The window search lists the folder; UID ranges (a reconciliation) find nothing.
    server.expect_search().returning(move |query| {
        let found = if query.to_imap().criteria.starts_with("UID ") {
            vec![]
        } else {
            listed.clone()
        };
        ready(Ok(found))
    });
    server.expect_uids_from().returning(|_| ready(Ok(vec![])));
    let all = uids.clone();
    server
        .expect_all_uids()
        .returning(move || ready(Ok(all.clone())));
    server.expect_fetch_batch().returning(|batch, _| {
        ready(Ok((
            batch.iter().map(|u| message(*u, vec![])).collect(),
            vec![],
        )))
    });
    server
        .expect_changes_since()
        .returning(move |_, _| ready(Ok(changes.clone())));
    let refused_too = refused.clone();
    server
        .expect_store_flag()
        .returning(move |_, _, _, _| ready(Ok(refused.clone())));
    server
        .expect_replace_flags()
        .returning(move |_, _, _| ready(Ok(refused_too.clone())));
    server.expect_logout().returning(|| ready(Ok(())));
    server.expect_wire_bytes().returning(|| (0, 0));
    server.expect_commands_sent().returning(|| 0);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_uids_leave_their_emails_orphaned_not_deleted() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let first = condstore_server(7, vec![1, 2, 3], imap_connector::Changes::default(), vec![]);
    Synchronizer::new(store.clone(), factory(first), SyncConfig::default())
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap();
    let changes = imap_connector::Changes {
        vanished: vec![2],
        ..imap_connector::Changes::default()
    };
    let second = condstore_server(7, vec![1, 3], changes, vec![]);
    // Not forced: CHANGEDSINCE and VANISHED, not the full comparison.
    let config = SyncConfig {
        interval: Duration::ZERO,
        due_tolerance: Duration::ZERO,
        ..SyncConfig::default()
    };
    let outcome = &Synchronizer::new(store.clone(), factory(second), config)
        .sync_mailboxes(&[mailbox], false)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Success);
    let inbox = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == "INBOX")
        .unwrap();
    let uids: Vec<u32> = store
        .memberships(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [1, 3]);
    let orphaned = store
        .emails(mailbox)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.orphaned_at.is_some())
        .count();
    assert_eq!(
        orphaned, 1,
        "kept through the grace period: it may be a move"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_local_change_gives_way_to_the_server() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let first = condstore_server(7, vec![1], imap_connector::Changes::default(), vec![]);
    Synchronizer::new(store.clone(), factory(first), SyncConfig::default())
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap();
    let inbox = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == "INBOX")
        .unwrap();
    let email = store.memberships(inbox.id).await.unwrap()[0].email_id;
    store
        .record_local_flag_change(email, inbox.id, "\\Seen".into(), true)
        .await
        .unwrap();
    // The server refuses (UNCHANGEDSINCE) and reports its own newer flags.
    let changes = imap_connector::Changes {
        changed: vec![imap_connector::FlagState {
            uid: Some(1),
            seq: 1,
            flags: vec!["\\Flagged".into()],
            modseq: Some(120),
        }],
        ..imap_connector::Changes::default()
    };
    let second = condstore_server(7, vec![1], changes, vec![1]);
    let config = SyncConfig {
        interval: Duration::ZERO,
        due_tolerance: Duration::ZERO,
        ..SyncConfig::default()
    };
    Synchronizer::new(store.clone(), factory(second), config)
        .sync_mailboxes(&[mailbox], false)
        .await
        .unwrap();
    assert!(
        store
            .pending_flag_changes(inbox.id)
            .await
            .unwrap()
            .is_empty(),
        "the change is dropped, not retried"
    );
    let membership = store.memberships(inbox.id).await.unwrap().remove(0);
    assert_eq!(
        (membership.flags, membership.modseq),
        (vec!["\\Flagged".to_owned()], Some(120))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_re_keys_known_mail_without_downloading_it() {
    let (store, _file, _, mailbox) = store_with_mailbox().await;
    let first = condstore_server(7, vec![1, 2], imap_connector::Changes::default(), vec![]);
    Synchronizer::new(store.clone(), factory(first), SyncConfig::default())
        .sync_mailboxes(&[mailbox], true)
        .await
        .unwrap();
    let ids_before: Vec<i64> = store
        .emails(mailbox)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();

    // Same two messages, now UIDs 1 and 2 under UIDVALIDITY 8: fetched as headers only.
    let mut second = MockMailServer::new();
    second
        .expect_folders()
        .returning(|_| ready(Ok(vec![inbox()])));
    second
        .expect_folder_server_id()
        .returning(|_| ready(Ok(None)));
    second
        .expect_capabilities()
        .returning(|| ready(Ok(std::collections::BTreeSet::new())));
    second
        .expect_enable_qresync()
        .returning(|| ready(Ok(false)));
    second.expect_select().returning(|_| {
        ready(Ok(SelectedFolder {
            full_name: "INBOX".into(),
            uid_validity: 8,
            uid_next: 3,
            exists: 2,
            highest_modseq: None,
            mailbox_id: None,
        }))
    });
    second.expect_all_uids().returning(|| ready(Ok(vec![1, 2])));
    second.expect_noop().returning(|| ready(Ok(())));
    second
        .expect_fetch_batch()
        .withf(|_, parts| *parts == imap_connector::FetchParts::Headers)
        .returning(|batch, _| {
            ready(Ok((
                batch.iter().map(|u| message(*u, vec![])).collect(),
                vec![],
            )))
        });
    second.expect_search().returning(|_| ready(Ok(vec![])));
    second.expect_uids_from().returning(|_| ready(Ok(vec![])));
    second.expect_flags_of().returning(|uids| {
        ready(Ok(uids
            .iter()
            .map(|&uid| imap_connector::FlagState {
                uid: Some(uid),
                seq: uid,
                flags: vec![],
                modseq: None,
            })
            .collect()))
    });
    second.expect_logout().returning(|| ready(Ok(())));
    second.expect_wire_bytes().returning(|| (0, 0));
    second.expect_commands_sent().returning(|| 0);
    let config = SyncConfig {
        interval: Duration::ZERO,
        due_tolerance: Duration::ZERO,
        ..SyncConfig::default()
    };
    let outcome = &Synchronizer::new(store.clone(), factory(second), config)
        .sync_mailboxes(&[mailbox], false)
        .await
        .unwrap()
        .outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Success, "{outcome:?}");
    let inbox = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == "INBOX")
        .unwrap();
    assert_eq!(inbox.uid_validity, Some(8));
    let ids_after: Vec<i64> = store
        .emails(mailbox)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids_after, ids_before,
        "same emails, no duplicate, no download"
    );
    assert!(
        store
            .memberships(inbox.id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.uid_validity == 8)
    );
}
