//! `imap-sync`: the command line of imap-sync.
//!
//! Architecture invariant: the binary only parses the command line, loads the configuration and
//! wires the library crates together; it holds no sync, IMAP or storage logic of its own.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool: stdout is its interface.

mod api;
mod cli;
#[cfg(test)]
mod deploy_files;
mod mailboxes;
mod serve;
mod settings;
mod status;
mod sync;
mod users;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use email_model::secrets::Keyring;
use email_model::{PgStore, SqliteStore, Store, StoreOptions};
use sync_core::ImapServerFactory;

use crate::cli::{Cli, Command, LogFormat};
use crate::settings::Settings;

/// Logs to stderr at the user's `RUST_LOG` (info by default). Records of crates that log raw
/// protocol lines (async-imap: passwords, tokens) are dropped twice over, whatever `RUST_LOG`
/// says: at the `log` bridge, and by a layer filter every record must pass besides the user's.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer as _, filter};
    let user_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let mut bridge = tracing_log::LogTracer::builder();
    for krate in imap_connector::SECRET_BEARING_LOG_CRATES {
        bridge = bridge.ignore_crate(*krate);
    }
    let _ = bridge.init();
    let never_secrets = filter::filter_fn(|meta| imap_connector::may_log(meta.target()));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(user_filter).with_filter(never_secrets));
    let _ = tracing::subscriber::set_global_default(subscriber);
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
        if matches!(cli.command, Command::Run) {
            // The dispatcher wakes at once when a notice is queued, by any process.
            let wakeups = store
                .listen(email_model::OUTBOX_NOTIFY_CHANNEL)
                .await
                .inspect_err(|error| tracing::warn!(%error, "LISTEN failed: the outbox is polled"))
                .ok();
            return serve::run(store, &settings, wakeups).await;
        }
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
        Command::User(command) => users::run(&store, command).await?,
        Command::Mailbox(command) => mailboxes::run(&store, settings, command).await?,
        Command::Sync(args) => return sync::run(store, settings, args).await,
        Command::Status { json } => status::print_status(&store, json).await?,
        Command::Run => return serve::run(store, settings, None).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// The IMAP side as configured.
pub(crate) fn factory(settings: &Settings) -> ImapServerFactory {
    let mut factory = ImapServerFactory::default();
    factory.tls.extra_ca_file = settings.imap_extra_ca_file.clone();
    factory.compress = settings.imap_compress;
    // Validated when the settings were loaded.
    factory.connect_policy = settings.connect_policy().unwrap_or_default();
    factory
}
