//! The configuration: a TOML file, then `IMAP_SYNC__…` environment variables, then flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

/// Everything the binary reads from its configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// `postgres://…`, or a SQLite file (created with its key file beside it).
    pub(crate) database_url: String,
    /// `id:base64,…`; required with PostgreSQL, optional with SQLite (key file otherwise).
    pub(crate) secret_keys: Option<String>,
    pub(crate) sync_interval_minutes: u64,
    /// Mailboxes one `sync` run works on at once.
    pub(crate) max_concurrent: usize,
    /// Messages fetched and committed per transaction.
    pub(crate) sync_batch_size: usize,
    /// Extra CA to trust for IMAP (a company CA, a test server's).
    pub(crate) imap_extra_ca_file: Option<PathBuf>,
    /// COMPRESS=DEFLATE where the server offers it: less traffic, more CPU on both ends.
    pub(crate) imap_compress: bool,
    pub(crate) smtp: Option<SmtpSection>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmtpSection {
    host: String,
    port: u16,
    /// none, starttls or tls
    security: String,
    user: Option<String>,
    password: Option<String>,
    from: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "imap-sync.db".to_owned(),
            secret_keys: None,
            sync_interval_minutes: 30,
            max_concurrent: 4,
            sync_batch_size: sync_core::SyncConfig::default().batch_size,
            imap_extra_ca_file: None,
            imap_compress: true,
            smtp: None,
        }
    }
}

impl Settings {
    pub(crate) fn load(file: Option<&Path>, database_url: Option<&str>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("IMAP_SYNC")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let mut settings: Settings = builder
            .build()
            .context("reading the configuration")?
            .try_deserialize()
            .context(
                "invalid configuration (every key, with its IMAP_SYNC__ variable, is in deploy/config.example.toml)",
            )?;
        if let Some(url) = database_url {
            settings.database_url = url.to_owned();
        }
        Ok(settings)
    }

    /// The notification channels configured: email when an SMTP server is set.
    pub(crate) fn notifiers(&self) -> anyhow::Result<Vec<Box<dyn notify::Notifier>>> {
        let Some(smtp) = &self.smtp else {
            return Ok(Vec::new());
        };
        let security = match smtp.security.as_str() {
            "none" => notify::SmtpSecurity::None,
            "starttls" => notify::SmtpSecurity::Starttls,
            "tls" => notify::SmtpSecurity::Tls,
            other => anyhow::bail!("smtp.security = {other:?}: use none, starttls or tls"),
        };
        let notifier = notify::EmailNotifier::new(&notify::SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port,
            security,
            user: smtp.user.clone(),
            password: smtp.password.clone().map(SecretString::from),
            from: smtp.from.clone(),
            timeout: std::time::Duration::from_secs(30),
        })?;
        Ok(vec![Box::new(notifier)])
    }
}
