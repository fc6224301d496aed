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
//! included. A binary that installs a logger **must** add [`REQUIRED_LOG_DIRECTIVES`] to its
//! filter, whatever level the user asks for.
//!
//! Architecture invariant: this crate depends on no other crate of the workspace. It knows no
//! database and no sync policy, so it can be reused alone as an IMAP library.

mod changes;
mod command;
mod config;
mod connect;
mod connector;
mod error;
mod flags;
mod folders;
mod idle;
mod message;
mod oauth;
mod seam;
mod search;
mod session;
mod stream;
mod tls;
pub mod utf7;

pub use changes::{Changes, FlagState, MailboxEvent};
pub use command::{MAX_FLAG_LEN, SYSTEM_FLAGS, flag_problem};
pub use config::{Credentials, DEFAULT_MAX_MESSAGE_SIZE, ImapConfig, Security, TlsOptions};
pub use connector::{FetchParts, FetchStream, ImapConnector, ImapConnectorFactory, SelectedFolder};
pub use error::{ConnectorError, Result};
pub use flags::CopyResult;
pub use folders::{Folder, FolderCounts, FolderType};
pub use idle::{MAX_IDLE, WaitOutcome, WaitedVia};
pub use message::{
    Address, Attachment, Body, FetchedMessage, GmailIds, Headers, Importance, ParseProblem,
};
pub use oauth::{OAuth2Settings, OAuth2TokenProvider, TokenError, TokenGrant, TokenSource};
pub use seam::MailServer;
#[cfg(feature = "mock")]
pub use seam::MockMailServer;
pub use search::{CompiledSearch, Criterion, SearchQuery};
pub use stream::{ByteCounters, SentCommand};

/// Filter directives a binary must add to its log filter: they keep async-imap's TRACE
/// logging of raw commands (which include the LOGIN password and the XOAUTH2 string) out of
/// the logs. For tracing-subscriber: `EnvFilter::new(format!("{user_filter},{REQUIRED_LOG_DIRECTIVES}"))`
/// — later directives for the same target win.
pub const REQUIRED_LOG_DIRECTIVES: &str = "async_imap=info";
