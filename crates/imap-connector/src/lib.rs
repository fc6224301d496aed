//! `imap-connector`: everything imap-sync says to an IMAP server.
//!
//! It owns the connection (plain, STARTTLS, implicit TLS), authentication (LOGIN, XOAUTH2),
//! capabilities, ID, COMPRESS=DEFLATE, the folder tree, SELECT, UID SEARCH and a streaming
//! UID FETCH whose messages are parsed (mail-parser) into its own types. Every workaround for a
//! trap of async-imap lives here: raw commands whose tagged NO/BAD is checked, a timeout on
//! every read, bounded command lines.
//!
//! # Logging and secrets
//! Nothing in this crate logs a password or token. async-imap, underneath, logs every line it
//! sends at TRACE level through the `log` crate — the LOGIN password and the XOAUTH2 string
//! included. A binary that installs a logger **must** drop those records whatever filter the
//! user sets: [`may_log`] says which targets may be written (the `imap-sync` binary applies it
//! at the `log` bridge and as a layer filter no `RUST_LOG` directive overrides).
//!
//! Architecture invariant: this crate depends on no other crate of the workspace. It knows no
//! database and no sync policy, so it can be reused alone as an IMAP library.

mod changes;
mod command;
mod config;
mod connect;
mod connector;
mod content;
mod error;
mod features;
mod fetch;
mod flags;
mod folders;
mod idle;
mod message;
mod oauth;
mod policy;
mod seam;
mod search;
mod searching;
mod select;
mod session;
mod stream;
mod tls;
pub mod utf7;

pub use changes::{Changes, FlagState, MailboxEvent};
pub use command::{MAX_FLAG_LEN, SYSTEM_FLAGS, flag_problem};
pub use config::{Credentials, DEFAULT_MAX_MESSAGE_SIZE, ImapConfig, Security, TlsOptions};
pub use connector::{ImapConnector, ImapConnectorFactory};
pub use content::{ContentKey, VOLATILE_HEADERS};
pub use error::{ConnectorError, Result};
pub use features::Features;
pub use fetch::{FetchParts, FetchStream};
pub use flags::CopyResult;
pub use folders::{Folder, FolderCounts, FolderType};
pub use idle::{MAX_IDLE, WaitOutcome, WaitedVia};
pub use message::{
    Address, Attachment, Body, FetchedMessage, GmailIds, Headers, Importance, ParseProblem,
};
pub use oauth::{OAuth2Settings, OAuth2TokenProvider, TokenError, TokenGrant, TokenSource};
pub use policy::ConnectPolicy;
pub use seam::MailServer;
#[cfg(feature = "mock")]
pub use seam::MockMailServer;
pub use search::{CompiledSearch, Criterion, SearchQuery};
pub use select::SelectedFolder;
pub use stream::{ByteCounters, SentCommand};
pub use tls::normalize_fingerprint;

/// The crates whose logs carry raw protocol lines, secrets included: async-imap logs every
/// line it sends (the LOGIN password, the XOAUTH2 string) at TRACE through the `log` crate.
pub const SECRET_BEARING_LOG_CRATES: &[&str] = &["async_imap"];

/// Whether a log record from `target` may be written at all. A binary applies this as a
/// filter that every record must pass besides the user's own (`RUST_LOG`), so no directive,
/// however specific, lets a secret-bearing line through — and drops those crates at the
/// `log` bridge too (`tracing_log::LogTracer::builder().ignore_crate(..)`).
pub fn may_log(target: &str) -> bool {
    !SECRET_BEARING_LOG_CRATES.iter().any(|krate| {
        target == *krate
            || target
                .strip_prefix(krate)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

/// Filter directives for binaries that use only an `EnvFilter`; prefer [`may_log`], which a
/// more specific directive cannot override.
pub const REQUIRED_LOG_DIRECTIVES: &str = "async_imap=off";
