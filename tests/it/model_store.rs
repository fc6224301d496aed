//! One conformance suite for the store, run unchanged on PostgreSQL (a fresh database per
//! test) and SQLite (a fresh file per test).

use chrono::{Duration, TimeZone, Utc};
use email_model::secrets::{Keyring, SecretKey};
use email_model::{
    Address, AuthKind, BodyState, CREDENTIAL_NOTIFICATIONS_CAPABILITY, EmailBatch, FlagUpdate,
    FolderCursors, ImapSettings, MailboxSettingsChange, MailboxSettingsUpdate, NewAttachment,
    NewEmail, NewMailbox, NewUser, PgStore, Security, ServerFolder, SqliteStore, Store, StoreError,
    StoreOptions, SyncRunOutcome,
};
use integration_tests::workspace_root;
use secrecy::{ExposeSecret, SecretString};
use test_support::{TestDatabase, TestSqlite};

fn keyring() -> Keyring {
    Keyring::new(SecretKey::generate("k1").unwrap(), Vec::new())
}

pub(crate) async fn postgres_store() -> (PgStore, TestDatabase) {
    let database = TestDatabase::new(&workspace_root().join("migrations/postgres"))
        .await
        .unwrap();
    let store = PgStore::connect(database.url(), keyring(), StoreOptions::default()).unwrap();
    (store, database)
}

pub(crate) fn sqlite_store() -> (SqliteStore, TestSqlite) {
    let database = TestSqlite::new(&workspace_root().join("migrations/sqlite")).unwrap();
    let store = SqliteStore::open(database.path(), keyring(), StoreOptions::default()).unwrap();
    (store, database)
}

/// Runs each listed conformance test on both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _database) = super::postgres_store().await;
                    super::$name(&store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _database) = super::sqlite_store();
                    super::$name(&store).await;
                }
            )*
        }
    };
}

conformance!(
    users_and_mailboxes,
    folder_merge_adds_renames_keeps_and_deletes,
    a_replayed_batch_changes_nothing,
    a_batch_failing_half_way_leaves_nothing,
    a_reused_message_id_stays_two_emails,
    one_message_in_two_folders_is_one_email,
    delete_rules_keep_mail_that_is_elsewhere_and_purge_orphans_after_grace,
    a_move_keeps_the_email_id,
    mailboxes_never_share_rows,
    threads_are_stable_as_replies_arrive,
    flag_updates_and_modseq,
    leases_exclude_each_other_until_they_expire,
    a_changed_uidvalidity_is_refused_without_remap,
    a_uidvalidity_remap_keeps_known_mail_and_fetches_only_new,
    retry_uids_count_attempts,
    local_flag_changes_wait_with_their_modseq,
    credential_episodes_notify_once_and_withdraw_on_success,
    system_mailboxes_notify_capability_holders,
    due_mailboxes_are_claimed_once_stalest_first,
    another_account_needs_a_reset_that_deletes_its_mail,
    a_partial_run_leaves_the_mailbox_due,
    values_from_outside_are_refused_naming_the_field,
    nul_bytes_are_replaced_and_stored_alike_on_both_backends,
    an_email_re_keyed_into_another_folder_is_never_purged,
);

async fn user_and_mailbox<S: Store>(store: &S, email: &str) -> (i64, i64) {
    let user = store
        .create_user(NewUser {
            email: email.to_owned(),
            name: "Owner".into(),
            enabled: true,
            capabilities: vec![],
        })
        .await
        .unwrap();
    let mailbox = store
        .create_mailbox(NewMailbox {
            owner_user_id: Some(user.id),
            email: email.to_owned(),
            imap: ImapSettings {
                host: "imap.example.test".into(),
                port: 993,
                security: Security::Tls,
                user: email.to_owned(),
            },
            auth_kind: AuthKind::Password,
            secret: Some(SecretString::from("plaintext-pw-123".to_owned())),
            oauth_settings: None,
            first_sync_days: 365,
        })
        .await
        .unwrap();
    (user.id, mailbox.id)
}

fn server_folder(full_name: &str, folder_type: &str, uid_validity: Option<u32>) -> ServerFolder {
    ServerFolder {
        full_name: full_name.into(),
        name: full_name.rsplit('/').next().unwrap().into(),
        parent_full_name: full_name.rsplit_once('/').map(|(p, _)| p.to_owned()),
        delimiter: Some("/".into()),
        folder_type: folder_type.into(),
        selectable: true,
        uid_validity,
        server_id: None,
    }
}

async fn folder_id<S: Store>(store: &S, mailbox: i64, full_name: &str) -> i64 {
    store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == full_name)
        .unwrap_or_else(|| panic!("no folder {full_name}"))
        .id
}

async fn mailbox_with_folders<S: Store>(store: &S, email: &str) -> (i64, i64, i64) {
    let (_, mailbox) = user_and_mailbox(store, email).await;
    store
        .merge_folders(
            mailbox,
            vec![
                server_folder("INBOX", "inbox", None),
                server_folder("Archive", "archive", None),
            ],
        )
        .await
        .unwrap();
    (
        mailbox,
        folder_id(store, mailbox, "INBOX").await,
        folder_id(store, mailbox, "Archive").await,
    )
}

fn message(uid: u32, message_id: &str, subject: &str) -> NewEmail {
    NewEmail {
        uid,
        flags: vec!["\\Seen".into()],
        modseq: Some(u64::from(uid) * 10),
        message_id: Some(format!("<{message_id}>")),
        subject: Some(subject.into()),
        from: Some(Address {
            name: Some("Alice".into()),
            email: Some("alice@example.test".into()),
        }),
        to: vec![Address {
            name: None,
            email: Some("bob@example.test".into()),
        }],
        // The same message keeps its headers wherever it is; its UID and arrival vary.
        sent_at: Some(Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()),
        internal_date: Some(
            Utc.with_ymd_and_hms(2026, 11, 1, 10, 1, 0).unwrap()
                + Duration::minutes(i64::from(uid)),
        ),
        body_text: Some(format!("body of {subject}")),
        body_state: BodyState::Stored,
        size: Some(1000),
        ..NewEmail::default()
    }
}

fn batch(mailbox: i64, folder: i64, emails: Vec<NewEmail>) -> EmailBatch {
    let top = emails.iter().map(|e| e.uid).max();
    EmailBatch {
        mailbox_id: mailbox,
        folder_id: folder,
        uid_validity: 1000,
        emails,
        cursors: FolderCursors {
            synced_up_to_uid: top,
            uid_next: top.map(|t| t + 1),
            ..FolderCursors::default()
        },
    }
}

async fn users_and_mailboxes<S: Store>(store: &S) {
    let admin = store
        .create_user(NewUser {
            email: "admin@example.test".into(),
            name: "Admin".into(),
            enabled: true,
            capabilities: vec![CREDENTIAL_NOTIFICATIONS_CAPABILITY.into()],
        })
        .await
        .unwrap();
    assert!(
        store
            .user(admin.id)
            .await
            .unwrap()
            .unwrap()
            .has_capability(CREDENTIAL_NOTIFICATIONS_CAPABILITY)
    );
    let (owner, mailbox) = user_and_mailbox(store, "owner@example.test").await;
    let stored = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(stored.owner_user_id, Some(owner));
    assert!(stored.has_secret && !stored.is_system());
    assert_eq!(
        store
            .mailbox_secret(mailbox)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "plaintext-pw-123"
    );
    store
        .set_mailbox_secret(mailbox, SecretString::from("rotated".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        store
            .mailbox_secret(mailbox)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "rotated"
    );

    store.set_user_enabled(owner, false).await.unwrap();
    assert!(!store.user(owner).await.unwrap().unwrap().enabled);
    assert_eq!(store.users().await.unwrap().len(), 2);
    store.delete_user(owner).await.unwrap();
    assert!(
        store.mailbox(mailbox).await.unwrap().is_none(),
        "a user's mailboxes go with it"
    );
    assert!(matches!(
        store.set_user_enabled(owner, true).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn folder_merge_adds_renames_keeps_and_deletes<S: Store>(store: &S) {
    let (_, mailbox) = user_and_mailbox(store, "folders@example.test").await;
    let report = store
        .merge_folders(
            mailbox,
            vec![
                server_folder("INBOX", "inbox", None),
                server_folder("Sent", "sent", None),
                server_folder("Archive", "archive", None),
                server_folder("Projects", "other", Some(77)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.added.len(), 4);
    let folders = store.folders(mailbox).await.unwrap();
    let enabled: Vec<&str> = folders
        .iter()
        .filter(|f| f.sync_enabled)
        .map(|f| f.full_name.as_str())
        .collect();
    assert_eq!(enabled, ["INBOX", "Sent"], "INBOX and Sent sync by default");

    let projects = folder_id(store, mailbox, "Projects").await;
    let mut first = batch(mailbox, projects, vec![message(1, "p1@x", "plan")]);
    first.uid_validity = 77;
    store.store_batch(first).await.unwrap();

    // Projects renamed to Work (same UIDVALIDITY), Archive deleted on the server (empty).
    let report = store
        .merge_folders(
            mailbox,
            vec![
                server_folder("INBOX", "inbox", None),
                server_folder("Sent", "sent", None),
                server_folder("Work", "other", Some(77)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.renamed, [("Projects".to_owned(), "Work".to_owned())]);
    assert_eq!(report.deleted, ["Archive"]);
    assert_eq!(
        folder_id(store, mailbox, "Work").await,
        projects,
        "a rename keeps the folder and its mail"
    );
    assert_eq!(store.memberships(projects).await.unwrap().len(), 1);

    // Work deleted on the server while holding mail: kept, marked gone; then it comes back.
    let report = store
        .merge_folders(
            mailbox,
            vec![
                server_folder("INBOX", "inbox", None),
                server_folder("Sent", "sent", None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.kept_gone, ["Work"]);
    let work = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == projects)
        .unwrap();
    assert!(work.gone_since.is_some());
    let report = store
        .merge_folders(
            mailbox,
            vec![
                server_folder("INBOX", "inbox", None),
                server_folder("Sent", "sent", None),
                server_folder("Work", "other", Some(77)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.returned, ["Work"]);

    store.set_folder_sync(projects, true).await.unwrap();
    store.set_folder_sync(projects, false).await.unwrap();
    assert_eq!(
        store.memberships(projects).await.unwrap().len(),
        1,
        "switching a folder off keeps its mail"
    );
}

async fn a_replayed_batch_changes_nothing<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "replay@example.test").await;
    let mut with_file = message(2, "m2@x", "with file");
    with_file.attachments = vec![NewAttachment {
        name: Some("a.pdf".into()),
        content_type: "application/pdf".into(),
        size: 3,
        content_id: None,
        inline: false,
        content: vec![1, 2, 3],
    }];
    let emails = vec![
        message(1, "m1@x", "one"),
        with_file,
        message(3, "m3@x", "three"),
    ];
    let first = store
        .store_batch(batch(mailbox, inbox, emails.clone()))
        .await
        .unwrap();
    assert_eq!((first.new_emails, first.known_emails), (3, 0));
    let second = store
        .store_batch(batch(mailbox, inbox, emails))
        .await
        .unwrap();
    assert_eq!((second.new_emails, second.known_emails), (0, 3));
    let stored = store.emails(mailbox).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(store.memberships(inbox).await.unwrap().len(), 3);
    let file = stored
        .iter()
        .find(|e| e.subject.as_deref() == Some("with file"))
        .unwrap();
    assert_eq!(file.attachments.len(), 1, "no duplicate attachment");
    assert_eq!(
        file.attachments[0].content.as_deref(),
        Some(&[1u8, 2, 3][..])
    );
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox)
        .unwrap();
    assert_eq!(
        (
            folder.uid_validity,
            folder.synced_up_to_uid,
            folder.uid_next
        ),
        (Some(1000), 3, Some(4))
    );

    // The cursor never moves backwards.
    store
        .store_batch(batch(mailbox, inbox, vec![message(1, "m1@x", "one")]))
        .await
        .unwrap();
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox)
        .unwrap();
    assert_eq!(folder.synced_up_to_uid, 3);
}

async fn a_batch_failing_half_way_leaves_nothing<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "atomic@example.test").await;
    // UID 0 does not exist (RFC 3501): its membership fails after the emails were written.
    let mut broken = batch(
        mailbox,
        inbox,
        vec![
            message(1, "a@x", "a"),
            message(2, "b@x", "b"),
            message(0, "c@x", "c"),
        ],
    );
    broken.cursors.synced_up_to_uid = Some(2);
    assert!(store.store_batch(broken).await.is_err());
    assert!(
        store.emails(mailbox).await.unwrap().is_empty(),
        "no email of the failed batch stays"
    );
    assert!(store.memberships(inbox).await.unwrap().is_empty());
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox)
        .unwrap();
    assert_eq!(
        (folder.synced_up_to_uid, folder.uid_validity),
        (0, None),
        "cursors did not move"
    );
}

async fn a_reused_message_id_stays_two_emails<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "reuse@example.test").await;
    store
        .store_batch(batch(
            mailbox,
            inbox,
            vec![
                message(1, "same@x", "first"),
                message(2, "same@x", "second"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(store.emails(mailbox).await.unwrap().len(), 2);
}

async fn one_message_in_two_folders_is_one_email<S: Store>(store: &S) {
    let (mailbox, inbox, archive) = mailbox_with_folders(store, "copies@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(5, "m@x", "hello")]))
        .await
        .unwrap();
    let report = store
        .store_batch(batch(mailbox, archive, vec![message(9, "m@x", "hello")]))
        .await
        .unwrap();
    assert_eq!((report.new_emails, report.known_emails), (0, 1));
    let emails = store.emails(mailbox).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(
        store.memberships(inbox).await.unwrap()[0].email_id,
        emails[0].id
    );
    assert_eq!(
        store.memberships(archive).await.unwrap()[0].email_id,
        emails[0].id
    );
}

async fn delete_rules_keep_mail_that_is_elsewhere_and_purge_orphans_after_grace<S: Store>(
    store: &S,
) {
    let (mailbox, inbox, archive) = mailbox_with_folders(store, "delete@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(1, "m@x", "kept")]))
        .await
        .unwrap();
    store
        .store_batch(batch(mailbox, archive, vec![message(1, "m@x", "kept")]))
        .await
        .unwrap();
    let id = store.emails(mailbox).await.unwrap()[0].id;

    assert_eq!(store.remove_uids(inbox, 1000, vec![1]).await.unwrap(), 1);
    let email = store.email(id).await.unwrap().unwrap();
    assert_eq!(email.orphaned_at, None, "still in Archive");

    assert_eq!(store.remove_uids(archive, 1000, vec![1]).await.unwrap(), 1);
    let orphaned_at = store
        .email(id)
        .await
        .unwrap()
        .unwrap()
        .orphaned_at
        .expect("orphaned, still readable");

    assert_eq!(
        store
            .purge_orphans(mailbox, orphaned_at - Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert!(
        store.email(id).await.unwrap().is_some(),
        "the grace period has not ended"
    );
    assert_eq!(
        store
            .purge_orphans(mailbox, orphaned_at + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.email(id).await.unwrap().is_none());
}

/// Issue 22, case 4: a message leaves folder A and lands in folder B whose UIDVALIDITY has just
/// changed; A is synced first (the email is marked orphaned), then B's re-key attaches it: the
/// mark is cleared, and the purge never deletes an email that has a membership.
async fn an_email_re_keyed_into_another_folder_is_never_purged<S: Store>(store: &S) {
    let (mailbox, inbox, archive) = mailbox_with_folders(store, "rekey-purge@example.test").await;
    let moved = message(1, "moved@x", "moved");
    store
        .store_batch(batch(mailbox, inbox, vec![moved.clone()]))
        .await
        .unwrap();
    store
        .store_batch(batch(
            mailbox,
            archive,
            vec![message(1, "other@x", "other")],
        ))
        .await
        .unwrap();
    let id = store
        .emails(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.subject.as_deref() == Some("moved"))
        .unwrap()
        .id;
    store.remove_uids(inbox, 1000, vec![1]).await.unwrap();
    assert!(
        store
            .email(id)
            .await
            .unwrap()
            .unwrap()
            .orphaned_at
            .is_some()
    );
    let report = store
        .remap_uid_validity(
            archive,
            2000,
            vec![email_model::RemapItem {
                uid: 7,
                keys: moved.known_keys(),
                flags: vec![],
                modseq: None,
                in_window: true,
            }],
            FolderCursors::default(),
        )
        .await
        .unwrap();
    assert!(
        report.to_fetch.is_empty() && report.ambiguous.is_empty(),
        "{report:?}"
    );
    assert_eq!(store.email(id).await.unwrap().unwrap().orphaned_at, None);
    // Only "other" goes: it left Archive with the old UIDVALIDITY and is nowhere now.
    assert_eq!(
        store
            .purge_orphans(mailbox, Utc::now() + Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    assert!(store.email(id).await.unwrap().is_some());
    assert_eq!(store.memberships(archive).await.unwrap()[0].email_id, id);
}

async fn a_move_keeps_the_email_id<S: Store>(store: &S) {
    let (mailbox, inbox, archive) = mailbox_with_folders(store, "move@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(3, "moved@x", "moving")]))
        .await
        .unwrap();
    let id = store.emails(mailbox).await.unwrap()[0].id;
    // "Gone here" seen before "new there".
    store.remove_uids(inbox, 1000, vec![3]).await.unwrap();
    store
        .store_batch(batch(
            mailbox,
            archive,
            vec![message(40, "moved@x", "moving")],
        ))
        .await
        .unwrap();
    let emails = store.emails(mailbox).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].id, id);
    assert_eq!(emails[0].orphaned_at, None);
}

async fn mailboxes_never_share_rows<S: Store>(store: &S) {
    let (first, first_inbox, _) = mailbox_with_folders(store, "one@example.test").await;
    let (second, second_inbox, _) = mailbox_with_folders(store, "two@example.test").await;
    store
        .store_batch(batch(
            first,
            first_inbox,
            vec![message(1, "shared@x", "same")],
        ))
        .await
        .unwrap();
    store
        .store_batch(batch(
            second,
            second_inbox,
            vec![message(1, "shared@x", "same")],
        ))
        .await
        .unwrap();
    let (a, b) = (
        store.emails(first).await.unwrap(),
        store.emails(second).await.unwrap(),
    );
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a[0].id, b[0].id);
    assert!(matches!(
        store
            .store_batch(batch(first, second_inbox, vec![message(2, "x@x", "x")]))
            .await,
        Err(StoreError::Refused(_))
    ));
}

async fn threads_are_stable_as_replies_arrive<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "threads@example.test").await;
    let root = message(1, "root@x", "Plan");
    let mut reply = message(2, "reply@x", "Re: Plan");
    reply.in_reply_to = Some("<root@x>".into());
    reply.references = vec!["<root@x>".into()];
    let mut second_reply = message(3, "reply2@x", "Re: Plan");
    second_reply.in_reply_to = Some("<reply@x>".into());
    second_reply.references = vec!["<root@x>".into(), "<reply@x>".into()];

    store
        .store_batch(batch(mailbox, inbox, vec![root]))
        .await
        .unwrap();
    let thread = store.emails(mailbox).await.unwrap()[0].thread_id.clone();
    store
        .store_batch(batch(mailbox, inbox, vec![reply]))
        .await
        .unwrap();
    store
        .store_batch(batch(mailbox, inbox, vec![second_reply]))
        .await
        .unwrap();
    let emails = store.emails(mailbox).await.unwrap();
    assert!(emails.iter().all(|e| e.thread_id == thread), "{emails:?}");

    // A reply stored before what it answers: the parent joins the reply's thread.
    let mut late_reply = message(10, "late-reply@x", "Re: Later");
    late_reply.in_reply_to = Some("<later@x>".into());
    store
        .store_batch(batch(mailbox, inbox, vec![late_reply]))
        .await
        .unwrap();
    store
        .store_batch(batch(mailbox, inbox, vec![message(11, "later@x", "Later")]))
        .await
        .unwrap();
    let emails = store.emails(mailbox).await.unwrap();
    let later: Vec<&str> = emails
        .iter()
        .filter(|e| e.subject.as_deref().is_some_and(|s| s.contains("Later")))
        .map(|e| e.thread_id.as_str())
        .collect();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0], later[1]);
    assert_ne!(later[0], thread);
    assert!(
        emails.iter().filter(|e| e.thread_id == thread).count() == 3,
        "earlier threads unchanged"
    );
}

async fn flag_updates_and_modseq<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "flags@example.test").await;
    store
        .store_batch(batch(
            mailbox,
            inbox,
            vec![message(1, "a@x", "a"), message(2, "b@x", "b")],
        ))
        .await
        .unwrap();
    let changed = store
        .update_flags(
            inbox,
            1000,
            vec![FlagUpdate {
                uid: 2,
                flags: vec!["\\Seen".into(), "\\Flagged".into()],
                modseq: Some(99),
            }],
            Some(99),
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let memberships = store.memberships(inbox).await.unwrap();
    assert_eq!(memberships[1].flags, ["\\Seen", "\\Flagged"]);
    assert_eq!(memberships[1].modseq, Some(99));
    assert_eq!(memberships[0].flags, ["\\Seen"]);
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox)
        .unwrap();
    assert_eq!(folder.highest_modseq, Some(99));
}

async fn leases_exclude_each_other_until_they_expire<S: Store>(store: &S) {
    let (_, mailbox) = user_and_mailbox(store, "lease@example.test").await;
    let soon = Utc::now() + Duration::minutes(5);
    assert!(
        store
            .acquire_lease(mailbox, "worker-a".into(), soon)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease(mailbox, "worker-b".into(), soon)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease(mailbox, "worker-a".into(), soon)
            .await
            .unwrap(),
        "the holder renews"
    );
    store
        .release_lease(mailbox, "worker-b".into())
        .await
        .unwrap();
    assert!(
        !store
            .acquire_lease(mailbox, "worker-b".into(), soon)
            .await
            .unwrap(),
        "only the holder releases"
    );
    // A crashed worker's lease expires.
    assert!(
        store
            .acquire_lease(
                mailbox,
                "worker-a".into(),
                Utc::now() - Duration::seconds(1)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease(mailbox, "worker-b".into(), soon)
            .await
            .unwrap()
    );
    store
        .release_lease(mailbox, "worker-b".into())
        .await
        .unwrap();
    assert!(
        store
            .acquire_lease(mailbox, "worker-a".into(), soon)
            .await
            .unwrap()
    );
}

async fn a_changed_uidvalidity_is_refused_without_remap<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "uidvalidity@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(1, "a@x", "a")]))
        .await
        .unwrap();
    let mut other = batch(mailbox, inbox, vec![message(1, "b@x", "b")]);
    other.uid_validity = 2000;
    assert!(matches!(
        store.store_batch(other).await,
        Err(StoreError::Refused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_reaches_either_database() {
    let (pg, database) = postgres_store().await;
    user_and_mailbox(&pg, "secret@example.test").await;
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let dump: String = client
        .query_one(
            "SELECT string_agg(row_to_json(m)::text, ' ') FROM mailboxes m",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!dump.contains("plaintext-pw-123"), "{dump}");

    let (sqlite, file) = sqlite_store();
    user_and_mailbox(&sqlite, "secret@example.test").await;
    drop(sqlite);
    for suffix in ["", "-wal"] {
        let mut path = file.path().as_os_str().to_owned();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(16).any(|w| w == b"plaintext-pw-123"),
                "{path:?}"
            );
        }
    }
}

async fn a_uidvalidity_remap_keeps_known_mail_and_fetches_only_new<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "remap@example.test").await;
    let (one, two, three) = (
        message(1, "one@x", "one"),
        message(2, "two@x", "two"),
        message(3, "three@x", "three"),
    );
    let mut flagged = two.clone();
    flagged.flags = vec!["\\Flagged".into()];
    store
        .store_batch(batch(mailbox, inbox, vec![one.clone(), flagged, three]))
        .await
        .unwrap();
    let ids_before: Vec<(Option<String>, i64)> = store
        .emails(mailbox)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.subject, e.id))
        .collect();

    let unknown = message(12, "new@x", "new").known_keys();
    let report = store
        .remap_uid_validity(
            inbox,
            2000,
            [
                (10, one.known_keys()),
                (11, two.known_keys()),
                (12, unknown),
            ]
            .into_iter()
            .map(|(uid, keys)| email_model::RemapItem {
                uid,
                keys,
                flags: vec![format!("$Fresh{uid}")],
                modseq: Some(u64::from(uid) * 10),
                in_window: true,
            })
            .collect(),
            FolderCursors {
                synced_up_to_uid: Some(11),
                uid_next: Some(13),
                ..FolderCursors::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (report.remapped, report.dropped, report.to_fetch.clone()),
        (2, 1, vec![12])
    );
    // What is still to fetch is due as a retry, committed with the cursor that covers it.
    let due: Vec<u32> = store
        .retry_uids(inbox, 2000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.uid)
        .collect();
    assert_eq!(due, [12]);
    let memberships = store.memberships(inbox).await.unwrap();
    let keys: Vec<(u32, u32)> = memberships
        .iter()
        .map(|m| (m.uid_validity, m.uid))
        .collect();
    assert_eq!(keys, [(2000, 10), (2000, 11)]);
    assert_eq!(
        (memberships[1].flags.clone(), memberships[1].modseq),
        (vec!["$Fresh11".to_owned()], Some(110)),
        "the new generation's flags and MODSEQ, never the old generation's"
    );
    let emails = store.emails(mailbox).await.unwrap();
    for (subject, id) in &ids_before {
        let now = emails.iter().find(|e| &e.subject == subject).unwrap();
        assert_eq!(now.id, *id, "email rows untouched");
        assert_eq!(
            now.orphaned_at.is_some(),
            subject.as_deref() == Some("three")
        );
    }
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox)
        .unwrap();
    assert_eq!(
        (folder.uid_validity, folder.synced_up_to_uid),
        (Some(2000), 11)
    );
}

async fn retry_uids_count_attempts<S: Store>(store: &S) {
    let (_, inbox, _) = mailbox_with_folders(store, "retry@example.test").await;
    store
        .record_retry_uids(inbox, 1000, vec![5, 6], "empty FETCH".into())
        .await
        .unwrap();
    store
        .record_retry_uids(inbox, 1000, vec![6], "empty FETCH again".into())
        .await
        .unwrap();
    let retries = store.retry_uids(inbox, 1000).await.unwrap();
    assert_eq!(
        retries
            .iter()
            .map(|r| (r.uid, r.attempts))
            .collect::<Vec<_>>(),
        [(5, 1), (6, 2)]
    );
    assert_eq!(retries[1].last_error.as_deref(), Some("empty FETCH again"));
    store.clear_retry_uids(inbox, 1000, vec![5]).await.unwrap();
    assert_eq!(store.retry_uids(inbox, 1000).await.unwrap().len(), 1);
}

async fn local_flag_changes_wait_with_their_modseq<S: Store>(store: &S) {
    let (mailbox, inbox, archive) = mailbox_with_folders(store, "local@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(4, "m@x", "read me")]))
        .await
        .unwrap();
    let email = store.emails(mailbox).await.unwrap()[0].id;
    let id = store
        .record_local_flag_change(email, inbox, "\\Seen".into(), false)
        .await
        .unwrap();
    let pending = store.pending_flag_changes(inbox).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].id, pending[0].set, pending[0].based_on_modseq),
        (id, false, Some(40))
    );
    assert!(matches!(
        store
            .record_local_flag_change(email, archive, "\\Seen".into(), true)
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .settle_pending_flag_changes(vec![id], Vec::new())
        .await
        .unwrap();
    assert!(store.pending_flag_changes(inbox).await.unwrap().is_empty());
}

/// Issue 15: PostgreSQL refuses NUL in text; every text column gets U+FFFD instead, on both
/// backends alike, and the message after it is stored as usual.
async fn nul_bytes_are_replaced_and_stored_alike_on_both_backends<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "nul@example.test").await;
    let mut hostile = message(5, "n\0ul@x", "sub\0ject");
    hostile.from = Some(Address {
        name: Some("Ali\0ce".into()),
        email: Some("a\0@x.test".into()),
    });
    hostile.body_text = Some("body\0text".into());
    hostile.body_html = Some("<p>\0</p>".into());
    hostile.references = vec!["<r\0ef@x>".into()];
    hostile.attachments = vec![email_model::NewAttachment {
        name: Some("file\0.txt".into()),
        content_type: "text/plain".into(),
        size: 3,
        content_id: None,
        inline: false,
        content: b"a\0b".to_vec(),
    }];
    let report = store
        .store_batch(batch(
            mailbox,
            inbox,
            vec![hostile, message(6, "after@x", "after")],
        ))
        .await
        .unwrap();
    assert_eq!(report.new_emails, 2);
    let emails = store.emails(mailbox).await.unwrap();
    let stored = emails
        .iter()
        .find(|e| e.subject.as_deref() == Some("sub\u{fffd}ject"))
        .unwrap();
    assert_eq!(stored.body_text.as_deref(), Some("body\u{fffd}text"));
    assert_eq!(
        stored.from.as_ref().and_then(|a| a.name.as_deref()),
        Some("Ali\u{fffd}ce")
    );
    assert_eq!(
        stored.attachments[0].name.as_deref(),
        Some("file\u{fffd}.txt")
    );
    // Bytes of an attachment are bytes: kept exactly.
    assert_eq!(stored.attachments[0].content.as_deref(), Some(&b"a\0b"[..]));
    assert!(emails.iter().any(|e| e.subject.as_deref() == Some("after")));
}

/// The field a refusal names.
fn field<T>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Invalid { field, .. } | StoreError::Conflict { field, .. }) => field,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got success"),
    }
}

/// Issue 15: the store refuses what the sync would choke on, naming the field, whatever the
/// caller (API, CLI, a host's own code).
async fn values_from_outside_are_refused_naming_the_field<S: Store>(store: &S) {
    let (user, mailbox, inbox, _) = {
        let (mailbox, inbox, archive) = mailbox_with_folders(store, "outside@example.test").await;
        let user = store.mailbox(mailbox).await.unwrap().unwrap().owner_user_id;
        (user, mailbox, inbox, archive)
    };
    store
        .store_batch(batch(mailbox, inbox, vec![message(4, "m@x", "flag me")]))
        .await
        .unwrap();
    let email = store.emails(mailbox).await.unwrap()[0].id;
    let injection = "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen";
    for bad in [
        injection,
        "",
        "two words",
        "\\Recent",
        "ü",
        &"k".repeat(129),
    ] {
        let result = store
            .record_local_flag_change(email, inbox, bad.into(), true)
            .await;
        assert_eq!(field(result), "flag", "{bad:?}");
    }
    assert!(store.pending_flag_changes(inbox).await.unwrap().is_empty());
    // A system flag in any case is stored in its canonical spelling.
    store
        .record_local_flag_change(email, inbox, "\\flagged".into(), true)
        .await
        .unwrap();
    assert_eq!(
        store.pending_flag_changes(inbox).await.unwrap()[0].flag,
        "\\Flagged"
    );

    for days in [0, -1, 36_501, i32::MAX] {
        assert_eq!(
            field(store.set_first_sync_days(mailbox, days).await),
            "first_sync_days"
        );
    }
    store.set_first_sync_days(mailbox, 36_500).await.unwrap();
    let duplicate = store
        .create_user(NewUser {
            email: "outside@example.test".into(),
            name: "Again".into(),
            enabled: true,
            capabilities: vec![],
        })
        .await;
    assert_eq!(field(duplicate), "email");
    let new_mailbox = |owner: Option<i64>, host: &str, days: i32| NewMailbox {
        owner_user_id: owner,
        email: "second@example.test".into(),
        imap: ImapSettings {
            host: host.into(),
            port: 993,
            security: Security::Tls,
            user: "second".into(),
        },
        auth_kind: AuthKind::Password,
        secret: None,
        oauth_settings: None,
        first_sync_days: days,
    };
    assert_eq!(
        field(
            store
                .create_mailbox(new_mailbox(Some(9_999), "imap.x.test", 30))
                .await
        ),
        "owner_user_id"
    );
    assert_eq!(
        field(
            store
                .create_mailbox(new_mailbox(user, "imap.x.test", 0))
                .await
        ),
        "first_sync_days"
    );
    assert_eq!(
        field(store.create_mailbox(new_mailbox(user, "a b\r\n", 30)).await),
        "host"
    );
    assert_eq!(store.mailboxes().await.unwrap().len(), 1);
}

async fn credential_episodes_notify_once_and_withdraw_on_success<S: Store>(store: &S) {
    let (owner, mailbox) = user_and_mailbox(store, "episode@example.test").await;
    let first = store
        .open_credential_episode(mailbox, "AUTHENTICATIONFAILED".into())
        .await
        .unwrap();
    assert!(first.is_new);
    assert_eq!(first.recipients, [owner]);
    let again = store
        .open_credential_episode(mailbox, "AUTHENTICATIONFAILED".into())
        .await
        .unwrap();
    assert!(!again.is_new, "a retry inside the episode");
    assert_eq!(again.episode.id, first.episode.id);
    let outbox = store.undelivered_notifications(100).await.unwrap();
    let channels: Vec<&str> = outbox.iter().map(|e| e.channel.as_str()).collect();
    assert_eq!(
        channels,
        ["push", "email"],
        "one notice per channel, not per retry"
    );
    assert_eq!(outbox[0].user_email, "episode@example.test");
    assert_eq!(store.login_notices(owner).await.unwrap().len(), 1);

    store
        .mark_notification_delivered(outbox[0].id)
        .await
        .unwrap();
    store
        .mark_notification_failed(
            outbox[1].id,
            "SMTP down".into(),
            Utc::now() + Duration::minutes(5),
        )
        .await
        .unwrap();
    assert!(
        store
            .undelivered_notifications(100)
            .await
            .unwrap()
            .is_empty(),
        "a failed notice waits its back-off"
    );
    store
        .mark_notification_failed(
            outbox[1].id,
            "SMTP down".into(),
            Utc::now() - Duration::seconds(1),
        )
        .await
        .unwrap();
    let left = store.undelivered_notifications(100).await.unwrap();
    assert_eq!((left.len(), left[0].attempts), (1, 2));
    assert_eq!(
        (left[0].imap_host.as_str(), left[0].imap_user.as_str()),
        ("imap.example.test", "episode@example.test")
    );

    // The login notice: once per user per episode.
    assert_eq!(store.take_login_notices(owner).await.unwrap().len(), 1);
    assert!(
        store.take_login_notices(owner).await.unwrap().is_empty(),
        "shown once"
    );

    assert!(store.close_credential_episode(mailbox).await.unwrap());
    assert!(
        store
            .undelivered_notifications(100)
            .await
            .unwrap()
            .is_empty(),
        "undelivered notices withdrawn"
    );
    assert!(store.login_notices(owner).await.unwrap().is_empty());
    assert!(!store.close_credential_episode(mailbox).await.unwrap());
    let later = store
        .open_credential_episode(mailbox, "AUTHENTICATIONFAILED".into())
        .await
        .unwrap();
    assert!(
        later.is_new && later.episode.id != first.episode.id,
        "a later failure is a new episode"
    );
}

async fn system_mailboxes_notify_capability_holders<S: Store>(store: &S) {
    let mut ids = Vec::new();
    for (email, capable, enabled) in [
        ("a@x", true, true),
        ("b@x", true, false),
        ("c@x", false, true),
    ] {
        let user = store
            .create_user(NewUser {
                email: email.into(),
                name: email.into(),
                enabled,
                capabilities: if capable {
                    vec![CREDENTIAL_NOTIFICATIONS_CAPABILITY.into()]
                } else {
                    vec![]
                },
            })
            .await
            .unwrap();
        ids.push(user.id);
    }
    let system = store
        .create_mailbox(NewMailbox {
            owner_user_id: None,
            email: "support@example.test".into(),
            imap: ImapSettings {
                host: "imap.example.test".into(),
                port: 993,
                security: Security::Tls,
                user: "support".into(),
            },
            auth_kind: AuthKind::Password,
            secret: Some(SecretString::from("pw".to_owned())),
            oauth_settings: None,
            first_sync_days: 30,
        })
        .await
        .unwrap();
    assert!(system.is_system());
    let opened = store
        .open_credential_episode(system.id, "refused".into())
        .await
        .unwrap();
    assert_eq!(
        opened.recipients,
        [ids[0]],
        "enabled capability holders only"
    );
    assert_eq!(store.login_notices(ids[0]).await.unwrap().len(), 1);
    assert_eq!(store.login_notices(ids[2]).await.unwrap().len(), 0);
    assert_eq!(store.take_login_notices(ids[0]).await.unwrap().len(), 1);
    assert!(
        store.take_login_notices(ids[1]).await.unwrap().is_empty(),
        "a disabled user gets nothing"
    );
    assert!(
        store.take_login_notices(ids[2]).await.unwrap().is_empty(),
        "no capability, no notice"
    );
}

async fn due_mailboxes_are_claimed_once_stalest_first<S: Store>(store: &S) {
    let (_, first) = user_and_mailbox(store, "due1@example.test").await;
    let (_, second) = user_and_mailbox(store, "due2@example.test").await;
    let lease = Utc::now() + Duration::minutes(10);
    let due_before = Utc::now() - Duration::minutes(25);
    // Both never synced: both due; each claim takes a different one.
    let run = store.start_sync_run(second).await.unwrap();
    store
        .finish_sync_run(
            run,
            SyncRunOutcome {
                success: true,
                ..SyncRunOutcome::default()
            },
        )
        .await
        .unwrap();
    let a = store
        .claim_due_mailbox("w1".into(), lease, Utc::now() + Duration::seconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, first, "never-synced first");
    let b = store
        .claim_due_mailbox("w2".into(), lease, Utc::now() + Duration::seconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.id, second);
    assert!(
        store
            .claim_due_mailbox("w3".into(), lease, Utc::now() + Duration::seconds(1))
            .await
            .unwrap()
            .is_none()
    );
    store.release_lease(second, "w2".into()).await.unwrap();
    // Synced a moment ago: not due yet.
    assert!(
        store
            .claim_due_mailbox("w3".into(), lease, due_before)
            .await
            .unwrap()
            .is_none()
    );

    store.release_lease(first, "w1".into()).await.unwrap();
    let run = store.start_sync_run(first).await.unwrap();
    store
        .finish_sync_run(
            run,
            SyncRunOutcome {
                success: false,
                message: Some("refused".into()),
                backoff_until: Some(Utc::now() + Duration::hours(1)),
                ..SyncRunOutcome::default()
            },
        )
        .await
        .unwrap();
    let failed = store.mailbox(first).await.unwrap().unwrap();
    assert_eq!(
        (failed.consecutive_failures, failed.last_error.as_deref()),
        (1, Some("refused"))
    );
    assert!(
        store
            .claim_due_mailbox("w3".into(), lease, Utc::now() + Duration::seconds(1))
            .await
            .unwrap()
            .map(|m| m.id)
            == Some(second),
        "a mailbox in back-off waits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_batch_notifies_postgres_listeners() {
    use futures::StreamExt;
    let (store, database) = postgres_store().await;
    let (client, mut connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(notification) = message {
                let _ = sender.send(notification.payload().to_owned());
            }
        }
    });
    client
        .batch_execute("LISTEN imap_sync_changes")
        .await
        .unwrap();
    let (mailbox, inbox, _) = mailbox_with_folders(&store, "notify@example.test").await;
    store
        .store_batch(batch(
            mailbox,
            inbox,
            vec![message(1, "a@x", "a"), message(2, "b@x", "b")],
        ))
        .await
        .unwrap();
    let payload = tokio::time::timeout(std::time::Duration::from_secs(10), notifications.recv())
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["mailbox"], mailbox);
    assert_eq!(payload["folder"], inbox);
    assert_eq!(payload["new"], 2);
}

async fn another_account_needs_a_reset_that_deletes_its_mail<S: Store>(store: &S) {
    let (mailbox, inbox, _) = mailbox_with_folders(store, "account@example.test").await;
    store
        .store_batch(batch(mailbox, inbox, vec![message(1, "a1@x", "one")]))
        .await
        .unwrap();
    let current = store.mailbox(mailbox).await.unwrap().unwrap();
    let settings = |host: &str, user: &str, reset| MailboxSettingsUpdate {
        email: "renamed@example.test".into(),
        imap: ImapSettings {
            host: host.into(),
            port: 143,
            security: Security::Starttls,
            user: user.into(),
        },
        reset,
    };

    // Same account (host case aside): the port, security and address change, the mail stays.
    let same = store
        .update_mailbox_settings(
            mailbox,
            settings("IMAP.example.test", &current.imap.user, false),
        )
        .await
        .unwrap();
    assert_eq!(same, MailboxSettingsChange::default());
    let changed = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(
        (changed.email.as_str(), changed.imap.port),
        ("renamed@example.test", 143)
    );
    assert_eq!(store.emails(mailbox).await.unwrap().len(), 1);

    // Another login on a mailbox holding mail: refused, nothing changed.
    let refused = store
        .update_mailbox_settings(
            mailbox,
            settings("IMAP.example.test", "someone-else", false),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::OtherAccount { mailbox_id, .. } if mailbox_id == mailbox),
        "{refused:?}"
    );
    assert_eq!(
        store.mailbox(mailbox).await.unwrap().unwrap().imap.user,
        current.imap.user
    );
    assert_eq!(store.emails(mailbox).await.unwrap().len(), 1);

    // With the reset: mail and folders gone, the mailbox starts over with its password.
    let reset = store
        .update_mailbox_settings(
            mailbox,
            settings("other.example.test", "someone-else", true),
        )
        .await
        .unwrap();
    assert_eq!(
        reset,
        MailboxSettingsChange {
            other_account: true,
            data_reset: true
        }
    );
    assert!(store.emails(mailbox).await.unwrap().is_empty());
    assert!(store.folders(mailbox).await.unwrap().is_empty());
    let after = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(after.imap.host, "other.example.test");
    assert!(after.last_success_at.is_none() && after.has_secret);

    // An empty mailbox changes account without a reset.
    let empty = store
        .update_mailbox_settings(mailbox, settings("third.example.test", "third", false))
        .await
        .unwrap();
    assert!(empty.other_account && !empty.data_reset);

    // Users' details change too.
    let (user, _) = user_and_mailbox(store, "details@example.test").await;
    store
        .set_user_details(user, "new@example.test".into(), "New Name".into())
        .await
        .unwrap();
    let user = store.user(user).await.unwrap().unwrap();
    assert_eq!(
        (user.email.as_str(), user.name.as_str()),
        ("new@example.test", "New Name")
    );
}

async fn a_partial_run_leaves_the_mailbox_due<S: Store>(store: &S) {
    let (_, mailbox) = user_and_mailbox(store, "partial@example.test").await;
    let run = store.start_sync_run(mailbox).await.unwrap();
    store
        .finish_sync_run(
            run,
            SyncRunOutcome {
                success: true,
                partial: true,
                message: Some("stopped for shutdown".into()),
                ..SyncRunOutcome::default()
            },
        )
        .await
        .unwrap();
    let after = store.mailbox(mailbox).await.unwrap().unwrap();
    assert_eq!(after.sync_state.as_str(), "success");
    assert!(
        after.last_success_at.is_none(),
        "still due: the rest follows at once"
    );
    let run = store.start_sync_run(mailbox).await.unwrap();
    store
        .finish_sync_run(
            run,
            SyncRunOutcome {
                success: true,
                ..SyncRunOutcome::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .mailbox(mailbox)
            .await
            .unwrap()
            .unwrap()
            .last_success_at
            .is_some()
    );
}
