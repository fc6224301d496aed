//! Runs one sync of one mailbox, as the real binary will, for the crash-safety tests.
//!
//! `sync-once DATABASE MAILBOX_ID` with the secret keys in `IMAP_SYNC_SECRET_KEYS`, the CA to
//! trust in `IMAP_SYNC_EXTRA_CA`, the batch size in `IMAP_SYNC_BATCH_SIZE`. With
//! `IMAP_SYNC_FAILPOINT_AFTER_BATCHES=N` the process aborts right after its N-th committed batch.
//! Prints one line per committed batch (`batch <folder> <uids…>`), then the outcome.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // A test tool; stdout is its report.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use email_model::secrets::Keyring;
use email_model::{PgStore, SqliteStore, StoreOptions};
use sync_core::{ImapServerFactory, ProgressEvent, ServerFactory, SyncConfig, Synchronizer};

fn progress() -> sync_core::ProgressSink {
    let failpoint: Option<usize> = std::env::var("IMAP_SYNC_FAILPOINT_AFTER_BATCHES")
        .ok()
        .and_then(|n| n.parse().ok());
    let committed = Arc::new(AtomicUsize::new(0));
    Arc::new(move |event: &ProgressEvent| {
        if let ProgressEvent::BatchCommitted { folder, uids, .. } = event {
            let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
            let mut out = std::io::stdout().lock();
            writeln!(out, "batch {folder} {}", uids.join(" ")).unwrap();
            out.flush().unwrap();
            let count = committed.fetch_add(1, Ordering::SeqCst) + 1;
            if failpoint == Some(count) {
                std::process::abort();
            }
        }
    })
}

async fn run<S: email_model::Store, F: ServerFactory>(store: S, factory: F, mailbox: i64) {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|n| n.parse::<u64>().ok());
    let defaults = SyncConfig::default();
    let config = SyncConfig {
        batch_size: from_env("IMAP_SYNC_BATCH_SIZE").map_or(defaults.batch_size, |n| n as usize),
        lease: from_env("IMAP_SYNC_LEASE_SECS")
            .map_or(defaults.lease, std::time::Duration::from_secs),
        ..defaults
    };
    let synchronizer = Synchronizer::new(store, factory, config).with_progress(progress());
    let report = synchronizer.sync_mailboxes(&[mailbox], true).await.unwrap();
    println!("outcome {:?}", report.outcomes[0].status);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (database, mailbox) = (&args[1], args[2].parse::<i64>().unwrap());
    let keyring = Keyring::from_config(&std::env::var("IMAP_SYNC_SECRET_KEYS").unwrap()).unwrap();
    let mut factory = ImapServerFactory::default();
    factory.connect_policy = integration_tests::rig_connect_policy();
    factory.tls.extra_ca_file = std::env::var_os("IMAP_SYNC_EXTRA_CA").map(Into::into);
    if database.starts_with("postgres://") {
        run(
            PgStore::connect(database, keyring, StoreOptions::default()).unwrap(),
            factory,
            mailbox,
        )
        .await;
    } else {
        run(
            SqliteStore::open(
                std::path::Path::new(database),
                keyring,
                StoreOptions::default(),
            )
            .unwrap(),
            factory,
            mailbox,
        )
        .await;
    }
}
