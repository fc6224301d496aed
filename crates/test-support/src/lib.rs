//! `test-support`: the hermetic test rig every imap-sync test stands on.
//!
//! It owns the servers tests talk to — a Dovecot in two variants (full and minimal), a
//! PostgreSQL with a fresh database per test, a fresh SQLite file per test, a scripted IMAP
//! server for replies a real server will not give, a flaky link that cuts connections — plus a raw IMAP client to seed mailboxes and
//! one deterministic generator of realistic mail.
//!
//! Servers run on loopback with free ports, their data in temporary directories, in the
//! foreground under a watchdog that stops them and deletes their directories when the process
//! that started them exits, however it exits. `cargo xtask test` starts them once per run and
//! hands them to tests through environment variables; without those variables each test process
//! starts its own. A missing server program is an error that says how to install it, never a
//! skipped test.
//!
//! Architecture invariant: this crate depends on no other crate of the workspace; it takes a
//! migrations folder as input instead of depending on `email-model`.

mod dirs;
mod dovecot;
mod error;
mod flaky_link;
mod hostile;
mod mailgen;
mod migrations;
mod postgres;
mod process;
mod raw_imap;
mod scripted;
mod sqlite;
mod tls;
mod tls_front;

pub use dirs::{RIG_TMPDIR_VAR, process_scratch_dir, rig_tmp_root, unique_name};
pub use dovecot::{
    DovecotEndpoint, DovecotServer, DovecotVariant, PASSWORD as DOVECOT_PASSWORD, shared_dovecot,
};
pub use error::RigError;
pub use flaky_link::{FlakyLink, LinkMode};
pub use hostile::{HostileMessage, hostile_corpus, sentinel};
pub use mailgen::{GeneratedMessage, MailGenerator, MailGeneratorConfig, SplitMix64};
pub use migrations::fingerprint as migrations_fingerprint;
pub use postgres::{DATABASE_URL_VAR, PostgresServer, TestDatabase, shared_postgres_url};
pub use process::{Lifetime, Supervised, process_running};
pub use raw_imap::{AppendItem, RawImap, Reply, Status, quote};
pub use scripted::{Expect, Script, ScriptError, ScriptedImapServer, Transcript};
pub use sqlite::TestSqlite;
pub use tls::{ServerIdentity, client_config_trusting};
pub use tls_front::{SelfSignedCertificate, TlsFront};
