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
    /// Networks mailbox hosts may resolve to although a default rule refuses them (loopback,
    /// private, link-local): `["10.0.0.0/8"]`. Checked after DNS resolution at every connect.
    pub(crate) imap_allowed_networks: Vec<String>,
    /// Networks mailbox hosts may never resolve to.
    pub(crate) imap_denied_networks: Vec<String>,
    pub(crate) smtp: Option<SmtpSection>,
    /// The daemon's HTTP API.
    pub(crate) http: HttpSection,
    /// The daemon's scheduler and IDLE watchers.
    pub(crate) daemon: DaemonSection,
    /// Signs the WebSocket push tokens (HS256); a per-process key when unset.
    pub(crate) push_jwt_secret: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HttpSection {
    /// HOST:PORT; anything but loopback requires `token`.
    pub(crate) listen: String,
    /// Bearer token every API request must carry.
    pub(crate) token: Option<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DaemonSection {
    /// How often the scheduler looks for due mailboxes.
    pub(crate) tick_seconds: u64,
    /// Up to this much is added to each tick.
    pub(crate) jitter_millis: u64,
    /// Watch INBOX with IDLE for new mail within seconds.
    pub(crate) idle: bool,
    /// Most IDLE connections to one IMAP server.
    pub(crate) max_idle_per_server: usize,
    /// NOOP polling where a server has no IDLE.
    pub(crate) poll_seconds: u64,
    /// How long a mailbox's lease lasts without renewal (a dead daemon's mailboxes move to
    /// another daemon after this).
    pub(crate) lease_seconds: u64,
    /// How often a watcher looks for a "sync now" asked from another process.
    pub(crate) request_check_seconds: u64,
}

impl Default for DaemonSection {
    fn default() -> Self {
        Self {
            tick_seconds: 60,
            jitter_millis: 10_000,
            idle: true,
            max_idle_per_server: 20,
            poll_seconds: 120,
            lease_seconds: 300,
            request_check_seconds: 30,
        }
    }
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
            imap_allowed_networks: Vec::new(),
            imap_denied_networks: Vec::new(),
            smtp: None,
            http: HttpSection::default(),
            daemon: DaemonSection::default(),
            push_jwt_secret: None,
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
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("imap_allowed_networks")
                .with_list_parse_key("imap_denied_networks"),
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
        settings.check_bounds()?;
        settings.connect_policy()?;
        Ok(settings)
    }

    /// Where mailbox hosts may be reached (see `imap_allowed_networks`).
    pub(crate) fn connect_policy(&self) -> anyhow::Result<imap_connector::ConnectPolicy> {
        imap_connector::ConnectPolicy::parse(
            &self.imap_allowed_networks,
            &self.imap_denied_networks,
        )
        .map_err(anyhow::Error::msg)
    }

    /// Every number within its range, or an error naming the key, its variable and the range.
    fn check_bounds(&self) -> anyhow::Result<()> {
        fn within(
            key: &str,
            value: u64,
            range: std::ops::RangeInclusive<u64>,
        ) -> anyhow::Result<()> {
            anyhow::ensure!(
                range.contains(&value),
                "{key} = {value} is out of range: use {} to {} (IMAP_SYNC__{} in the environment)",
                range.start(),
                range.end(),
                key.to_ascii_uppercase().replace('.', "__")
            );
            Ok(())
        }
        let daemon = &self.daemon;
        within(
            "sync_interval_minutes",
            self.sync_interval_minutes,
            1..=10_080,
        )?;
        within("max_concurrent", self.max_concurrent as u64, 1..=64)?;
        within("sync_batch_size", self.sync_batch_size as u64, 1..=10_000)?;
        within("daemon.tick_seconds", daemon.tick_seconds, 1..=86_400)?;
        within("daemon.jitter_millis", daemon.jitter_millis, 0..=3_600_000)?;
        within(
            "daemon.max_idle_per_server",
            daemon.max_idle_per_server as u64,
            0..=10_000,
        )?;
        within("daemon.poll_seconds", daemon.poll_seconds, 1..=86_400)?;
        within(
            "daemon.request_check_seconds",
            daemon.request_check_seconds,
            1..=3_600,
        )?;
        within("daemon.lease_seconds", daemon.lease_seconds, 2..=86_400)?;
        Ok(())
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
