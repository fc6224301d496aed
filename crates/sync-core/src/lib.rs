//! `sync-core`: the synchronizer and the IMAP processor that keep the mirror in step with the
//! server.
//!
//! It owns the sync policy: which mailboxes are due, leases, time budgets, back-off, credential
//! episodes, first-sync windows, newest-first backfill, incremental new mail and crash-safe
//! resume points (see [`processor`]'s cursors).
//!
//! Architecture invariant: it reaches the server, the database and the notification channels
//! only through traits (`imap_connector::MailServer`, `email_model::Store`, and the
//! [`ServerFactory`] seam); it never depends on `sync-bin`.

mod config;
mod convert;
mod daemon;
mod error;
mod factory;
mod folder_refresh;
mod isolate;
mod local_changes;
pub mod processor;
mod progress;
mod supervise;
mod synchronizer;

pub use config::SyncConfig;
pub use daemon::{Daemon, DaemonConfig, DaemonCounters, SyncHandover, Trigger};
pub use error::{Result, SyncError};
pub use factory::{
    ImapServerFactory, OAuth2MailboxSettings, ServerFactory, oauth2_secret, renew_oauth2_secret,
};
pub use processor::{MailboxReport, PhaseTimes};
pub use progress::{ProgressEvent, ProgressSink, no_progress};
pub use supervise::{catch_panic, restart_backoff};
pub use synchronizer::{MailboxOutcome, OutcomeStatus, RunReport, Synchronizer};
