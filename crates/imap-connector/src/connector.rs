//! [`ImapConnector`]: one account's connection, opened lazily and reopened after a failure.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_imap::imap_proto::{MailboxDatum, Response};

use crate::command::quoted;
use crate::config::ImapConfig;
use crate::connect::{Established, Instruments, establish};
use crate::error::{ConnectorError, Result};
use crate::folders::{Folder, FolderCounts, ListItem, apply_status, list_item};
use crate::select::SelectedFolder;
use crate::session::{execute, with_timeout};
use crate::stream::{ByteCounters, CommandLog, SentCommand};
use crate::utf7;

/// Creates connectors; nothing connects until the first call that needs the server.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImapConnectorFactory;

impl ImapConnectorFactory {
    pub fn create(self, config: ImapConfig) -> ImapConnector {
        ImapConnector::new(config)
    }
}

/// One IMAP account. Every method connects first if needed.
pub struct ImapConnector {
    pub(crate) config: ImapConfig,
    pub(crate) address: String,
    pub(crate) connection: Option<Established>,
    pub(crate) instruments: Instruments,
    pub(crate) selected: Option<SelectedFolder>,
    pub(crate) delimiter: Option<Option<String>>,
    /// Unsolicited changes (EXISTS, EXPUNGE, VANISHED) seen while running other commands, kept
    /// until [`ImapConnector::take_events`]: async-imap would drop them past 100.
    pub(crate) events: Vec<crate::changes::MailboxEvent>,
    pub(crate) qresync_enabled: bool,
}

impl std::fmt::Debug for ImapConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnector")
            .field("address", &self.address)
            .field("user", &self.config.user)
            .field("connected", &self.connection.is_some())
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

impl ImapConnector {
    pub fn new(config: ImapConfig) -> Self {
        Self {
            address: format!("{}:{}", config.host, config.port),
            config,
            connection: None,
            instruments: Instruments {
                counters: Arc::new(ByteCounters::default()),
                log: Arc::new(CommandLog::default()),
            },
            selected: None,
            delimiter: None,
            events: Vec::new(),
            qresync_enabled: false,
        }
    }

    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// Connects and logs in now, if not already connected.
    pub async fn connect(&mut self) -> Result<()> {
        if self.connection.is_none() {
            let established = establish(&self.config, &self.instruments).await?;
            self.connection = Some(established);
            self.selected = None;
            self.qresync_enabled = false;
        }
        Ok(())
    }

    /// The capabilities after login (uppercase), discovered once per connection.
    pub async fn capabilities(&mut self) -> Result<BTreeSet<String>> {
        self.connect().await?;
        Ok(self.established()?.capabilities.clone())
    }

    /// True if the server announced `capability` (case-insensitive).
    pub async fn has(&mut self, capability: &str) -> Result<bool> {
        self.connect().await?;
        Ok(self
            .established()?
            .capabilities
            .contains(&capability.to_ascii_uppercase()))
    }

    /// True when the current connection runs under COMPRESS=DEFLATE.
    pub fn is_compressed(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| c.compressed)
    }

    /// Bytes sent and received on the wire by this connector, over all its connections.
    pub fn byte_counters(&self) -> &ByteCounters {
        &self.instruments.counters
    }

    /// The commands sent so far (names and extension keywords, never arguments).
    pub fn command_log(&self) -> Vec<SentCommand> {
        self.instruments.log.commands()
    }

    /// How many commands were sent so far, over all connections.
    pub fn commands_sent(&self) -> u64 {
        self.instruments.log.count()
    }

    /// The folder selected last, if the connection still has it selected.
    pub fn selected(&self) -> Option<&SelectedFolder> {
        self.selected.as_ref()
    }

    /// Logs out and closes the connection.
    pub async fn logout(&mut self) -> Result<()> {
        if let Some(mut connection) = self.connection.take() {
            let limit = self.config.command_timeout;
            let _ = with_timeout(limit, "LOGOUT", connection.session.logout()).await;
        }
        self.selected = None;
        Ok(())
    }

    pub(crate) fn established(&mut self) -> Result<&mut Established> {
        self.connection
            .as_mut()
            .ok_or_else(|| ConnectorError::Protocol("not connected".into()))
    }

    /// Runs a raw command; drops the connection after a network failure so that the next call
    /// reconnects. Unsolicited EXISTS, EXPUNGE and VANISHED are kept as events.
    pub(crate) async fn run<F>(&mut self, command: &str, mut each: F) -> Result<()>
    where
        F: FnMut(&Response<'_>) -> Result<()>,
    {
        self.connect().await?;
        let limit = self.config.command_timeout;
        let address = self.address.clone();
        let mut events = Vec::new();
        let connection = self.established()?;
        let result = execute(
            &mut connection.session,
            command,
            limit,
            &address,
            |response| {
                if let Some(event) = crate::changes::unsolicited_event(response) {
                    events.push(event);
                }
                each(response)
            },
        )
        .await;
        self.events.extend(events);
        self.forget_connection_after(&result);
        result
    }

    pub(crate) fn forget_connection_after<T>(&mut self, result: &Result<T>) {
        if matches!(
            result,
            Err(ConnectorError::Connection { .. }
                | ConnectorError::Timeout { .. }
                | ConnectorError::Tls(_))
        ) {
            self.connection = None;
            self.selected = None;
        }
    }

    /// The hierarchy delimiter, from `LIST "" ""`.
    async fn delimiter(&mut self) -> Result<Option<String>> {
        if let Some(known) = &self.delimiter {
            return Ok(known.clone());
        }
        let mut delimiter = None;
        self.run(r#"LIST "" """#, |response| {
            if let Response::MailboxData(MailboxDatum::List(list)) = response {
                delimiter = list.delimiter.as_deref().map(str::to_owned);
            }
            Ok(())
        })
        .await?;
        self.delimiter = Some(delimiter.clone());
        Ok(delimiter)
    }

    /// The folders under `parent` (all folders when `None`): every level below it when
    /// `recursive`, else only its children. With `with_counts`, each selectable folder carries
    /// its counts (from LIST-STATUS when offered, else one STATUS each). Sorted by full name.
    pub async fn folders(
        &mut self,
        parent: Option<&str>,
        recursive: bool,
        with_counts: bool,
    ) -> Result<Vec<Folder>> {
        let wildcard = if recursive { "*" } else { "%" };
        let pattern = match parent {
            None => wildcard.to_owned(),
            Some(parent) => {
                let delimiter = self.delimiter().await?.unwrap_or_default();
                format!("{}{delimiter}{wildcard}", utf7::encode(parent))
            }
        };
        let condstore = self.has("CONDSTORE").await?;
        let status_items = if condstore {
            "MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
        } else {
            "MESSAGES UNSEEN UIDNEXT UIDVALIDITY"
        };
        let list_status = with_counts && self.has("LIST-STATUS").await?;
        let mut command = format!(r#"LIST "" {}"#, quoted("folder pattern", &pattern)?);
        if list_status {
            command.push_str(&format!(" RETURN (STATUS ({status_items}))"));
        }
        let mut folders: Vec<Folder> = Vec::new();
        let mut statuses: Vec<(String, FolderCounts)> = Vec::new();
        self.run(&command, |response| {
            match list_item(response) {
                Some(ListItem::Folder(folder)) => folders.push(folder),
                Some(ListItem::Status { wire_name, counts }) => statuses.push((wire_name, counts)),
                None => {}
            }
            Ok(())
        })
        .await?;
        if with_counts {
            for folder in folders.iter_mut().filter(|f| f.selectable) {
                let listed = statuses.iter().find(|(name, _)| *name == folder.wire_name);
                folder.counts = match listed {
                    Some((_, counts)) => Some(*counts),
                    None => Some(self.status(&folder.wire_name, status_items).await?),
                };
            }
        }
        folders.sort_by(|a, b| a.full_name.cmp(&b.full_name));
        Ok(folders)
    }

    async fn status(&mut self, wire_name: &str, items: &str) -> Result<FolderCounts> {
        let mut counts = FolderCounts::default();
        self.run(
            &format!("STATUS {} ({items})", quoted("folder", wire_name)?),
            |response| {
                if let Response::MailboxData(MailboxDatum::Status { status, .. }) = response {
                    apply_status(&mut counts, status);
                }
                Ok(())
            },
        )
        .await?;
        Ok(counts)
    }
}
