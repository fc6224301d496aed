//! `imap-sync`: the command line of imap-sync.
//!
//! Architecture invariant: the binary only parses the command line, loads the configuration and
//! wires the library crates together; it holds no sync, IMAP or storage logic of its own.

#![allow(clippy::print_stdout)] // A command-line tool: stdout is its interface.

mod settings;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use email_model::secrets::Keyring;
use email_model::{
    AuthKind, CREDENTIAL_NOTIFICATIONS_CAPABILITY, ImapSettings, NewMailbox, NewUser, PgStore,
    Security, SqliteStore, Store, StoreOptions,
};
use secrecy::SecretString;
use sync_core::{ImapServerFactory, OutcomeStatus, ServerFactory, SyncConfig, Synchronizer};

use crate::settings::Settings;

/// Mirror IMAP mailboxes into a relational database.
#[derive(Debug, Parser)]
#[command(name = "imap-sync", version, about)]
struct Cli {
    /// Configuration file (TOML); `IMAP_SYNC__…` environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database: a `postgres://` URL, or a SQLite file (default `imap-sync.db`).
    #[arg(long, global = true, env = "IMAP_SYNC_DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the database schema.
    Migrate,
    /// Users who own mailboxes and receive notices.
    #[command(subcommand)]
    User(UserCommand),
    /// Mailboxes to mirror.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// One sync run (Oro's `oro:cron:imap-sync`): every due mailbox, or the given ones.
    Sync {
        #[arg(long = "mailbox")]
        mailboxes: Vec<i64>,
        /// Ignore due times and back-off; re-check every synced message.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Mailboxes and folders: state, last sync, counts, back-off, errors, credential episodes.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// e.g. imap_sync_origin_credential_notifications
        #[arg(long = "capability")]
        capabilities: Vec<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MailboxCommand {
    Add(MailboxAdd),
    List {
        #[arg(long)]
        json: bool,
    },
    /// Connect, log in and print the server's capabilities (Oro's "Check connection").
    Check {
        id: i64,
    },
    /// The folder tree with types, sync switches and counts; switches applied at once.
    Folders {
        id: i64,
        #[arg(long = "enable")]
        enable: Vec<String>,
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

#[derive(Debug, Args)]
struct MailboxAdd {
    /// The owner's user id; or `--system` for a mailbox with no owner.
    #[arg(long, conflicts_with = "system", required_unless_present = "system")]
    owner: Option<i64>,
    #[arg(long)]
    system: bool,
    #[arg(long)]
    email: String,
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 993)]
    port: u16,
    #[arg(long, value_enum, default_value_t = SecurityArg::Tls)]
    security: SecurityArg,
    /// IMAP login (default: the email).
    #[arg(long)]
    user: Option<String>,
    /// Read the password from standard input (never give it as an argument).
    #[arg(long, conflicts_with = "password_env")]
    password_stdin: bool,
    /// Read the password from this environment variable.
    #[arg(long)]
    password_env: Option<String>,
    #[arg(long, default_value_t = email_model::DEFAULT_FIRST_SYNC_DAYS)]
    first_sync_days: i32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SecurityArg {
    None,
    Starttls,
    Tls,
}

fn init_logging(format: LogFormat) {
    let user_filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // Whatever the user asks for, async-imap's raw command logging (passwords) stays capped.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{user_filter},{}",
        imap_connector::REQUIRED_LOG_DIRECTIVES
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("imap-sync: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    let url = settings.database_url.clone();
    let keyring = Keyring::for_database(&url, settings.secret_keys.as_deref())
        .context("the secret key for stored passwords")?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        email_model::migrate::migrate_postgres(&url)
            .await
            .context("migrating the database")?;
        let store = PgStore::connect(&url, keyring, StoreOptions::default())?;
        execute(cli.command, store, &settings).await
    } else {
        let path = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(&url));
        email_model::migrate::migrate_sqlite(&path).context("migrating the database")?;
        let store = SqliteStore::open(&path, keyring, StoreOptions::default())?;
        execute(cli.command, store, &settings).await
    }
}

async fn execute<S: Store + Clone + std::fmt::Debug + 'static>(
    command: Command,
    store: S,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => println!("database is up to date"),
        Command::User(UserCommand::Add {
            email,
            name,
            capabilities,
        }) => {
            for capability in &capabilities {
                if capability != CREDENTIAL_NOTIFICATIONS_CAPABILITY {
                    bail!(
                        "unknown capability {capability:?} (known: {CREDENTIAL_NOTIFICATIONS_CAPABILITY})"
                    );
                }
            }
            let user = store
                .create_user(NewUser {
                    email,
                    name,
                    enabled: true,
                    capabilities,
                })
                .await?;
            println!("user {} added", user.id);
        }
        Command::User(UserCommand::List { json }) => {
            let users = store.users().await?;
            if json {
                let rows: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| serde_json::json!({"id": u.id, "email": u.email, "name": u.name, "enabled": u.enabled, "capabilities": u.capabilities}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for user in users {
                    println!(
                        "{:>4}  {:<30} {:<20} {}",
                        user.id,
                        user.email,
                        user.name,
                        user.capabilities.join(",")
                    );
                }
            }
        }
        Command::Mailbox(MailboxCommand::Add(add)) => {
            let password = read_password(&add)?;
            let mailbox = store
                .create_mailbox(NewMailbox {
                    owner_user_id: if add.system { None } else { add.owner },
                    imap: ImapSettings {
                        host: add.host,
                        port: add.port,
                        security: match add.security {
                            SecurityArg::None => Security::None,
                            SecurityArg::Starttls => Security::Starttls,
                            SecurityArg::Tls => Security::Tls,
                        },
                        user: add.user.unwrap_or_else(|| add.email.clone()),
                    },
                    email: add.email,
                    auth_kind: AuthKind::Password,
                    secret: Some(password),
                    oauth_settings: None,
                    first_sync_days: add.first_sync_days,
                })
                .await?;
            println!("mailbox {} added", mailbox.id);
        }
        Command::Mailbox(MailboxCommand::List { json }) => print_mailboxes(&store, json).await?,
        Command::Mailbox(MailboxCommand::Check { id }) => {
            let mailbox = store
                .mailbox(id)
                .await?
                .with_context(|| format!("no mailbox {id}"))?;
            let secret = store
                .mailbox_secret(id)
                .await?
                .context("the mailbox has no password")?;
            let mut server = factory(settings).server_for(&mailbox, secret);
            let capabilities = imap_connector::MailServer::capabilities(&mut server).await?;
            let _ = imap_connector::MailServer::logout(&mut server).await;
            println!(
                "connected and logged in to {}:{}",
                mailbox.imap.host, mailbox.imap.port
            );
            println!(
                "capabilities: {}",
                capabilities.into_iter().collect::<Vec<_>>().join(" ")
            );
        }
        Command::Mailbox(MailboxCommand::Folders {
            id,
            enable,
            disable,
            json,
        }) => {
            let synchronizer =
                Synchronizer::new(store.clone(), factory(settings), SyncConfig::default());
            match synchronizer.settings_changed(id).await? {
                OutcomeStatus::Success => {}
                other => bail!("could not list the folders of mailbox {id}: {other:?}"),
            }
            let folders = store.folders(id).await?;
            for (names, enabled) in [(&enable, true), (&disable, false)] {
                for name in names {
                    let folder = folders
                        .iter()
                        .find(|f| &f.full_name == name)
                        .with_context(|| format!("mailbox {id} has no folder {name:?}"))?;
                    store.set_folder_sync(folder.id, enabled).await?;
                }
            }
            print_folders(&store, id, json).await?;
        }
        Command::Mailbox(MailboxCommand::Remove { id, yes }) => {
            if !yes {
                bail!("this deletes mailbox {id} and all its synced mail: add --yes to confirm");
            }
            store.delete_mailbox(id).await?;
            println!("mailbox {id} removed");
        }
        Command::Sync {
            mailboxes,
            force,
            json,
        } => return sync(store, settings, &mailboxes, force, json).await,
        Command::Status { json } => print_status(&store, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn factory(settings: &Settings) -> ImapServerFactory {
    let mut factory = ImapServerFactory::default();
    factory.tls.extra_ca_file = settings.imap_extra_ca_file.clone();
    factory
}

async fn print_folders<S: Store>(store: &S, mailbox: i64, json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for folder in store.folders(mailbox).await? {
        let messages = store.memberships(folder.id).await?.len();
        rows.push(serde_json::json!({
            "name": folder.full_name,
            "type": folder.folder_type,
            "sync": folder.sync_enabled,
            "selectable": folder.selectable,
            "gone": folder.gone_since.is_some(),
            "messages": messages,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for row in rows {
            let name = row["name"].as_str().unwrap_or_default();
            let depth = name.matches('/').count();
            println!(
                "{:indent$}{:<30} {:<8} {} {} messages",
                "",
                name.rsplit('/').next().unwrap_or(name),
                row["type"].as_str().unwrap_or_default(),
                if row["sync"] == true {
                    "[sync]"
                } else {
                    "[    ]"
                },
                row["messages"],
                indent = depth * 2
            );
        }
    }
    Ok(())
}

fn read_password(add: &MailboxAdd) -> anyhow::Result<SecretString> {
    if add.password_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from stdin")?;
        return Ok(SecretString::from(
            password.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if let Some(variable) = &add.password_env {
        let password =
            std::env::var(variable).with_context(|| format!("environment variable {variable}"))?;
        return Ok(SecretString::from(password));
    }
    bail!("give the password with --password-stdin or --password-env VAR (never as an argument)")
}

async fn sync<S: Store + Clone + std::fmt::Debug + 'static>(
    store: S,
    settings: &Settings,
    mailboxes: &[i64],
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = SyncConfig {
        interval: std::time::Duration::from_secs(settings.sync_interval_minutes * 60),
        ..SyncConfig::default()
    };
    let synchronizer = Synchronizer::new(store.clone(), factory(settings), config);
    let report = if mailboxes.is_empty() {
        synchronizer.run_due().await?
    } else {
        synchronizer.sync_mailboxes(mailboxes, force).await?
    };
    // A cron-style deployment delivers too: the outbox is drained at the end of each run.
    let notifiers = settings.notifiers()?;
    let dispatched = notify::Dispatcher::new(store, notifiers, notify::DispatcherConfig::default())
        .drain_once()
        .await?;
    let failed = report.outcomes.iter().any(|o| {
        matches!(
            o.status,
            OutcomeStatus::Failure(_) | OutcomeStatus::InvalidCredentials(_)
        )
    });
    if json {
        let rows: Vec<serde_json::Value> = report
            .outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "mailbox": o.mailbox_id,
                    "status": format!("{:?}", o.status),
                    "folders": o.report.folders_synced,
                    "new": o.report.emails_new,
                    "known": o.report.emails_known,
                    "folder_errors": o.report.folder_errors,
                    "bytes_sent": o.report.bytes_sent,
                    "bytes_received": o.report.bytes_received,
                    "duration_ms": o.duration.as_millis(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"mailboxes": rows, "notices_delivered": dispatched.delivered})
            )?
        );
    } else {
        for outcome in &report.outcomes {
            println!(
                "mailbox {:>4}: {:?} — {} folders, {} new, {} errors, {:.1} s",
                outcome.mailbox_id,
                outcome.status,
                outcome.report.folders_synced,
                outcome.report.emails_new,
                outcome.report.folder_errors.len(),
                outcome.duration.as_secs_f64()
            );
        }
        if report.outcomes.is_empty() {
            println!("no mailbox is due");
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn print_mailboxes<S: Store>(store: &S, json: bool) -> anyhow::Result<()> {
    let mailboxes = store.mailboxes().await?;
    if json {
        let rows: Vec<serde_json::Value> = mailboxes
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "email": m.email, "owner": m.owner_user_id, "host": m.imap.host, "port": m.imap.port, "user": m.imap.user, "state": m.sync_state.as_str()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for m in mailboxes {
            let owner = m
                .owner_user_id
                .map_or_else(|| "system".to_owned(), |id| format!("user {id}"));
            println!(
                "{:>4}  {:<30} {:<10} {}:{} ({})",
                m.id,
                m.email,
                owner,
                m.imap.host,
                m.imap.port,
                m.sync_state.as_str()
            );
        }
    }
    Ok(())
}

async fn print_status<S: Store>(store: &S, json: bool) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for mailbox in store.mailboxes().await? {
        let folders = store.folders(mailbox.id).await?;
        let mut folder_rows = Vec::new();
        for folder in folders {
            let messages = store.memberships(folder.id).await?.len();
            folder_rows.push(serde_json::json!({
                "name": folder.full_name,
                "type": folder.folder_type,
                "sync": folder.sync_enabled,
                "gone": folder.gone_since.is_some(),
                "messages": messages,
                "synchronized_at": folder.synchronized_at.map(|d| d.to_rfc3339()),
            }));
        }
        let episode = store.open_episode(mailbox.id).await?.map(|e| e.reason);
        rows.push(serde_json::json!({
            "id": mailbox.id,
            "email": mailbox.email,
            "state": mailbox.sync_state.as_str(),
            "last_success": mailbox.last_success_at.map(|d| d.to_rfc3339()),
            "lag_seconds": mailbox.last_success_at.map(|d| (now - d).num_seconds()),
            "backoff_until": mailbox.backoff_until.map(|d| d.to_rfc3339()),
            "last_error": mailbox.last_error,
            "credential_episode": episode,
            "folders": folder_rows,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for row in rows {
            println!(
                "mailbox {} {}: {} (last success {}, error {})",
                row["id"], row["email"], row["state"], row["last_success"], row["last_error"]
            );
            if !row["credential_episode"].is_null() {
                println!("  credentials refused: {}", row["credential_episode"]);
            }
            for folder in row["folders"].as_array().into_iter().flatten() {
                println!(
                    "  {:<30} {:<8} sync={} messages={}",
                    folder["name"].as_str().unwrap_or_default(),
                    folder["type"].as_str().unwrap_or_default(),
                    folder["sync"],
                    folder["messages"]
                );
            }
        }
    }
    Ok(())
}
