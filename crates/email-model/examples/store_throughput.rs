//! Measures how fast the stores take parsed mail: 10,000 generated emails of about 15 KB with
//! their memberships, in batches of 500, on PostgreSQL and SQLite (the rig's servers).
//! `cargo run --release -p email-model --example store_throughput [-- COUNT]`

#![allow(clippy::print_stdout, clippy::unwrap_used)] // A measuring tool.

use std::time::Instant;

use chrono::{TimeZone, Utc};
use email_model::secrets::{Keyring, SecretKey};
use email_model::{
    Address, AuthKind, BodyState, EmailBatch, FolderCursors, ImapSettings, NewEmail, NewMailbox,
    PgStore, Security, ServerFolder, SqliteStore, Store, StoreOptions,
};
use test_support::{MailGenerator, MailGeneratorConfig, TestDatabase, TestSqlite};

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
    })
}

fn emails(count: usize) -> (Vec<NewEmail>, usize) {
    let end = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut bytes = 0;
    let emails = MailGenerator::new(MailGeneratorConfig::over_days_before(11, end, 300))
        .take(count)
        .enumerate()
        .map(|(index, message)| {
            bytes += message.raw.len();
            let text = String::from_utf8_lossy(&message.raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            NewEmail {
                uid: u32::try_from(index + 1).unwrap(),
                flags: message.flags.iter().map(|f| (*f).to_owned()).collect(),
                modseq: Some(index as u64 + 1),
                message_id: Some(message.message_id.clone()),
                subject: Some(message.subject.clone()),
                from: Some(Address {
                    name: None,
                    email: header(head, "From").map(str::to_owned),
                }),
                to: vec![Address {
                    name: None,
                    email: header(head, "To").map(str::to_owned),
                }],
                sent_at: Some(message.date),
                internal_date: Some(message.internal_date),
                in_reply_to: message.in_reply_to.clone(),
                size: Some(message.raw.len() as u64),
                body_text: Some(body.to_owned()),
                body_state: BodyState::Stored,
                ..NewEmail::default()
            }
        })
        .collect();
    (emails, bytes)
}

async fn measure<S: Store>(name: &str, store: &S, emails: &[NewEmail], bytes: usize) {
    let mailbox = store
        .create_mailbox(NewMailbox {
            owner_user_id: None,
            email: "bench@example.test".into(),
            imap: ImapSettings {
                host: "h".into(),
                port: 993,
                security: Security::Tls,
                user: "u".into(),
            },
            auth_kind: AuthKind::Password,
            secret: None,
            oauth_settings: None,
            first_sync_days: 365,
        })
        .await
        .unwrap();
    store
        .merge_folders(
            mailbox.id,
            vec![ServerFolder {
                full_name: "INBOX".into(),
                name: "INBOX".into(),
                parent_full_name: None,
                delimiter: Some("/".into()),
                folder_type: "inbox".into(),
                selectable: true,
                uid_validity: None,
                server_id: None,
            }],
        )
        .await
        .unwrap();
    let folder = store.folders(mailbox.id).await.unwrap()[0].id;
    let start = Instant::now();
    for chunk in emails.chunks(500) {
        store
            .store_batch(EmailBatch {
                mailbox_id: mailbox.id,
                folder_id: folder,
                uid_validity: 1,
                emails: chunk.to_vec(),
                cursors: FolderCursors {
                    synced_up_to_uid: chunk.last().map(|e| e.uid),
                    ..FolderCursors::default()
                },
            })
            .await
            .unwrap();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name:>10}: {} emails in {seconds:.2} s = {:.0} emails/s, {:.1} MB/s",
        emails.len(),
        emails.len() as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}

#[tokio::main]
async fn main() {
    let count = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let (emails, bytes) = emails(count);
    println!(
        "{count} emails, {:.1} MB, mean {:.1} KB",
        bytes as f64 / 1e6,
        bytes as f64 / count as f64 / 1024.0
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let keyring = || Keyring::new(SecretKey::generate("k1").unwrap(), Vec::new());

    let database = TestDatabase::new(&root.join("postgres")).await.unwrap();
    let pg = PgStore::connect(database.url(), keyring(), StoreOptions::default()).unwrap();
    measure("postgres", &pg, &emails, bytes).await;

    let file = TestSqlite::new(&root.join("sqlite")).unwrap();
    let sqlite = SqliteStore::open(file.path(), keyring(), StoreOptions::default()).unwrap();
    measure("sqlite", &sqlite, &emails, bytes).await;
}
