//! The command line's shape (clap); what each command does lives in its own module.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Mirror IMAP mailboxes into a relational database.
#[derive(Debug, Parser)]
#[command(name = "imap-sync", version, about)]
pub(crate) struct Cli {
    /// Configuration file (TOML); `IMAP_SYNC__…` environment variables override it.
    #[arg(long, global = true, env = "IMAP_SYNC_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Database: a `postgres://` URL, or a SQLite file (default `imap-sync.db`).
    #[arg(long, global = true, env = "IMAP_SYNC_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or update the database schema.
    Migrate,
    /// Users who own mailboxes and receive notices.
    #[command(subcommand)]
    User(UserCommand),
    /// Mailboxes to mirror.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// One sync run (Oro's `oro:cron:imap-sync`): every due mailbox, or the given ones.
    Sync(SyncArgs),
    /// The daemon: scheduled syncs, IDLE push, notices and the HTTP API, until SIGTERM.
    Run,
    /// Mailboxes and folders: state, last sync, counts, lag, back-off, errors, credential episodes.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Sync only these mailboxes (repeatable); default: every due mailbox.
    #[arg(long = "mailbox")]
    pub(crate) mailboxes: Vec<i64>,
    /// Ignore due times and back-off; re-check every synced message.
    #[arg(long)]
    pub(crate) force: bool,
    /// Mailboxes synced at once, each on its own connection (default: the configuration's).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) max_concurrent: Option<u16>,
    /// Stop starting work after this long (`90s`, `10m`, `1h`); the rest waits for the next run.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) max_exec_time: Option<Duration>,
    /// A JSON report on stdout, with IMAP commands, bytes and the time per phase.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A duration of at most a week (a run that long is a mistake, and larger values overflow the
/// deadline arithmetic).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 90s, 10m, 1h30m)"))?;
    if duration > Duration::from_secs(7 * 24 * 3600) {
        return Err("at most a week (168h)".to_owned());
    }
    Ok(duration)
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// e.g. imap_sync_origin_credential_notifications (repeatable)
        #[arg(long = "capability")]
        capabilities: Vec<String>,
        /// Add the user disabled.
        #[arg(long)]
        disabled: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Update {
        id: i64,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Replaces the user's capabilities (repeatable).
        #[arg(long = "capability", conflicts_with = "no_capabilities")]
        capabilities: Vec<String>,
        /// Removes every capability.
        #[arg(long)]
        no_capabilities: bool,
    },
    /// Delete the user and the mailboxes it owns, with their mail.
    Remove {
        id: i64,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MailboxCommand {
    Add(MailboxAdd),
    List {
        #[arg(long)]
        json: bool,
    },
    /// One mailbox's settings (never its password), state, back-off, episode and folders.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Change settings. A new password keeps the mail and ends the back-off; a new host or
    /// login on a mailbox holding mail needs `--reset`, which deletes that mail.
    Update(MailboxUpdate),
    /// Connect, log in and print the server's capabilities (Oro's "Check connection").
    Check {
        id: i64,
    },
    /// The folder tree with types, sync switches and counts; switches applied at once.
    Folders {
        id: i64,
        /// Switch a folder's sync on (its full name; repeatable).
        #[arg(long = "enable")]
        enable: Vec<String>,
        /// Switch a folder's sync off; its mail is kept (repeatable).
        #[arg(long = "disable")]
        disable: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete the mailbox and all its synced mail.
    Remove {
        id: i64,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

/// Where the password comes from: never a plain argument (it would show in `ps` and shell
/// history).
#[derive(Debug, Args)]
pub(crate) struct PasswordSource {
    /// Read the password (or OAuth2 token) from standard input.
    #[arg(long, conflicts_with = "password_env")]
    pub(crate) password_stdin: bool,
    /// Read the password (or OAuth2 token) from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct MailboxAdd {
    /// The owner's user id; or `--system` for a mailbox with no owner.
    #[arg(long, conflicts_with = "system", required_unless_present = "system")]
    pub(crate) owner: Option<i64>,
    /// A system mailbox: its notices go to every user with the capability
    /// imap_sync_origin_credential_notifications.
    #[arg(long)]
    pub(crate) system: bool,
    #[arg(long)]
    pub(crate) email: String,
    #[arg(long)]
    pub(crate) host: String,
    /// Default: 993 with tls, 143 otherwise.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    #[arg(long, value_enum, default_value_t = SecurityArg::Tls)]
    pub(crate) security: SecurityArg,
    /// IMAP login (default: the email).
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// `password`; `oauth2` (the password source gives a refresh token, exchanged for access
    /// tokens at the token endpoint at each login; rotated tokens are stored); or `oauth2-token`
    /// (an XOAUTH2 access token the host application keeps fresh).
    #[arg(long, value_enum, default_value_t = AuthArg::Password)]
    pub(crate) auth: AuthArg,
    #[command(flatten)]
    pub(crate) password: PasswordSource,
    #[command(flatten)]
    pub(crate) oauth: OAuthArgs,
    /// Days of mail the first sync takes (1 to 36500).
    #[arg(long, default_value_t = email_model::DEFAULT_FIRST_SYNC_DAYS, value_parser = clap::value_parser!(i32).range(1..=36_500))]
    pub(crate) first_sync_days: i32,
    /// Accept exactly this certificate (SHA-256 fingerprint, as the TLS error shows it) besides
    /// the trusted ones: for a server with a self-signed certificate.
    #[arg(long, value_name = "SHA256")]
    pub(crate) tls_pin: Option<String>,
}

/// The OAuth2 client of `--auth oauth2`.
#[derive(Debug, Args)]
pub(crate) struct OAuthArgs {
    /// Token endpoint and scope of a known provider.
    #[arg(long, value_enum)]
    pub(crate) oauth_provider: Option<OAuthProvider>,
    /// The token endpoint (instead of --oauth-provider).
    #[arg(long)]
    pub(crate) oauth_token_endpoint: Option<String>,
    #[arg(long)]
    pub(crate) oauth_client_id: Option<String>,
    #[arg(long)]
    pub(crate) oauth_scope: Option<String>,
    /// Read the client secret from this environment variable (stored sealed, with the token).
    #[arg(long, value_name = "VAR")]
    pub(crate) oauth_client_secret_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OAuthProvider {
    Google,
    Microsoft,
}

#[derive(Debug, Args)]
pub(crate) struct MailboxUpdate {
    pub(crate) id: i64,
    #[arg(long)]
    pub(crate) email: Option<String>,
    #[arg(long)]
    pub(crate) host: Option<String>,
    #[arg(long)]
    pub(crate) port: Option<u16>,
    #[arg(long, value_enum)]
    pub(crate) security: Option<SecurityArg>,
    #[arg(long)]
    pub(crate) user: Option<String>,
    #[command(flatten)]
    pub(crate) password: PasswordSource,
    /// Days of mail the first sync takes (1 to 36500).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=36_500))]
    pub(crate) first_sync_days: Option<i32>,
    /// Accept exactly this certificate (SHA-256 fingerprint) besides the trusted ones; `none`
    /// removes the pin.
    #[arg(long, value_name = "SHA256|none")]
    pub(crate) tls_pin: Option<String>,
    /// Allow a new host or login on a mailbox holding mail: its synced mail is deleted and the
    /// mailbox starts over.
    #[arg(long)]
    pub(crate) reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SecurityArg {
    None,
    Starttls,
    Tls,
}

impl From<SecurityArg> for email_model::Security {
    fn from(security: SecurityArg) -> Self {
        match security {
            SecurityArg::None => Self::None,
            SecurityArg::Starttls => Self::Starttls,
            SecurityArg::Tls => Self::Tls,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthArg {
    Password,
    Oauth2,
    Oauth2Token,
}
