//! [`ImapConnector`]: one account's connection, opened lazily and reopened after a failure.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, RequestId, Response, ResponseCode, Status,
};

use crate::command::{self, quoted};
use crate::config::ImapConfig;
use crate::connect::{Established, Instruments, establish};
use crate::error::{ConnectorError, Result};
use crate::folders::{Folder, FolderCounts, ListItem, apply_status, list_item};
use crate::message::{Body, FetchedMessage, GmailIds, parse};
use crate::session::{execute, outcome_text, with_timeout};
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

/// The state of the selected folder, from SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedFolder {
    pub full_name: String,
    pub uid_validity: Option<u32>,
    pub uid_next: Option<u32>,
    pub exists: u32,
    pub highest_modseq: Option<u64>,
    /// The server's own id of the folder (RFC 8474 `[MAILBOXID (…)]`), when it offers one.
    pub mailbox_id: Option<String>,
}

impl SelectedFolder {
    /// An empty state for `full_name`, filled by the SELECT's responses.
    pub(crate) fn opening(full_name: &str) -> Self {
        Self {
            full_name: full_name.to_owned(),
            uid_validity: None,
            uid_next: None,
            exists: 0,
            highest_modseq: None,
            mailbox_id: None,
        }
    }

    /// Takes what a SELECT or EXAMINE response says about the folder; false for other responses.
    pub(crate) fn read(&mut self, response: &Response<'_>) -> bool {
        match response {
            Response::MailboxData(MailboxDatum::Exists(n)) => self.exists = *n,
            Response::Data {
                status: Status::Ok,
                outcome,
            }
            | Response::Done {
                status: Status::Ok,
                outcome,
                ..
            } => match outcome.code {
                Some(ResponseCode::UidValidity(v)) => self.uid_validity = Some(v),
                Some(ResponseCode::UidNext(n)) => self.uid_next = Some(n),
                Some(ResponseCode::HighestModSeq(m)) => self.highest_modseq = Some(m),
                // imap-proto does not know RFC 8474's code: it stays in the text.
                None => match outcome.information.as_deref().and_then(mailbox_id_in) {
                    Some(id) => self.mailbox_id = Some(id),
                    None => return false,
                },
                _ => return false,
            },
            _ => return false,
        }
        true
    }
}

/// What to download of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchParts {
    /// Flags, dates, sizes, ids and the header.
    Headers,
    /// All of that and the whole message, parsed; messages over the size limit get their
    /// header only and [`Body::TooLarge`].
    Full,
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

/// No command line longer than this (RFC 7162 advises 8 KB; some servers choke on less).
const MAX_UID_SET_LEN: usize = 1000;
/// Messages per FETCH command, so that the size probe's answers stay small.
const MAX_UIDS_PER_BATCH: usize = 500;

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

    /// Selects a folder by its decoded full name; with CONDSTORE when offered, so that
    /// HIGHESTMODSEQ comes back.
    pub async fn select(&mut self, full_name: &str) -> Result<SelectedFolder> {
        self.open(full_name, "SELECT").await
    }

    /// The server's own id of a folder (RFC 8474 MAILBOXID), from an `EXAMINE` (which leaves
    /// no folder selected); `None` without a command when the server does not offer OBJECTID.
    pub async fn folder_server_id(&mut self, full_name: &str) -> Result<Option<String>> {
        if !self.has("OBJECTID").await? {
            return Ok(None);
        }
        let examined = self.open(full_name, "EXAMINE").await;
        self.selected = None;
        Ok(examined?.mailbox_id)
    }

    async fn open(&mut self, full_name: &str, verb: &str) -> Result<SelectedFolder> {
        let condstore = self.has("CONDSTORE").await?;
        let mut command = format!("{verb} {}", command::folder(full_name)?);
        if condstore {
            command.push_str(" (CONDSTORE)");
        }
        self.selected = None;
        let mut selected = SelectedFolder::opening(full_name);
        let result = self
            .run(&command, |response| {
                selected.read(response);
                Ok(())
            })
            .await;
        // Events of the previous folder, and this SELECT's own EXISTS, are no news now.
        self.events.clear();
        match result {
            Ok(()) => {
                self.selected = Some(selected.clone());
                Ok(selected)
            }
            Err(ConnectorError::Protocol(text) | ConnectorError::FolderNotFound(text)) => {
                Err(select_refusal(full_name, &text))
            }
            Err(other) => Err(other),
        }
    }

    /// `UID SEARCH <criteria>` in the selected folder, criteria as written (`SINCE 1-Jan-2026`,
    /// `UID 100:*`). A refused SEARCH is an error, not an empty result.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>> {
        let mut uids = Vec::new();
        self.run(&format!("UID SEARCH {criteria}"), |response| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = response {
                uids.extend_from_slice(found);
            }
            Ok(())
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The UIDs of the selected folder's messages that match `query`: Gmail's `X-GM-RAW` when the
    /// server has X-GM-EXT-1 and the query has a Gmail form, standard criteria otherwise
    /// (`CHARSET UTF-8` for non-ASCII values). ESEARCH is not used: the response parser
    /// underneath cannot read its answers, and plain UID SEARCH returns the same UIDs.
    pub async fn find_uids(&mut self, query: &crate::search::SearchQuery) -> Result<Vec<u32>> {
        if self.has("X-GM-EXT-1").await?
            && let Some(raw) = query.to_gmail_raw().filter(|raw| !raw.is_empty())
        {
            return if raw.is_ascii() {
                self.uid_search(&format!("X-GM-RAW {}", quoted("search", &raw)?))
                    .await
            } else {
                self.uid_search(&format!(
                    "CHARSET UTF-8 X-GM-RAW {{{}+}}\r\n{raw}",
                    raw.len()
                ))
                .await
            };
        }
        let compiled = query.compile(self.has("LITERAL+").await?);
        let charset = if compiled.needs_utf8 {
            "CHARSET UTF-8 "
        } else {
            ""
        };
        self.uid_search(&format!("{charset}{}", compiled.criteria))
            .await
    }

    /// Streams the messages of the selected folder that match `query`.
    pub async fn find_items(
        &mut self,
        query: &crate::search::SearchQuery,
        parts: FetchParts,
    ) -> Result<FetchStream<'_>> {
        let uids = self.find_uids(query).await?;
        Ok(self.fetch(&uids, parts))
    }

    /// Streams the messages with these UIDs from the selected folder, in batches whose command
    /// lines stay under about 1,000 characters. Memory holds one message at a time.
    pub fn fetch(&mut self, uids: &[u32], parts: FetchParts) -> FetchStream<'_> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let received_before = self.byte_counters().received();
        FetchStream {
            received_before,
            batches: uid_batches(&sorted).into(),
            requested: sorted.iter().copied().collect(),
            returned: HashSet::new(),
            connector: self,
            parts,
            commands: VecDeque::new(),
            in_flight: None,
        }
    }

    async fn fetch_items(&mut self, with_body: bool) -> Result<String> {
        let mut items = String::from("UID FLAGS INTERNALDATE RFC822.SIZE");
        if self.has("CONDSTORE").await? {
            items.push_str(" MODSEQ");
        }
        if self.has("X-GM-EXT-1").await? {
            items.push_str(" X-GM-MSGID X-GM-THRID X-GM-LABELS");
        }
        if self.has("OBJECTID").await? {
            items.push_str(" EMAILID THREADID");
        }
        items.push_str(if with_body {
            " BODY.PEEK[]"
        } else {
            " BODY.PEEK[HEADER]"
        });
        Ok(format!("({items})"))
    }
}

fn select_refusal(full_name: &str, text: &str) -> ConnectorError {
    let upper = text.to_ascii_uppercase();
    if upper.contains("[CANNOT]") || upper.contains("SELECTABLE") || upper.contains("NOSELECT") {
        ConnectorError::FolderNotSelectable(full_name.to_owned())
    } else if upper.contains("[NONEXISTENT]")
        || upper.contains("EXIST")
        || upper.contains("UNKNOWN")
    {
        ConnectorError::FolderNotFound(full_name.to_owned())
    } else {
        ConnectorError::Protocol(text.to_owned())
    }
}

/// UID sets (`1:5,9,12:20`) of at most [`MAX_UIDS_PER_BATCH`] UIDs and about
/// [`MAX_UID_SET_LEN`] characters, from sorted, distinct UIDs.
pub(crate) fn uid_batches(sorted: &[u32]) -> Vec<(String, Vec<u32>)> {
    let mut batches = Vec::new();
    let mut set = String::new();
    let mut members = Vec::new();
    let mut index = 0;
    while index < sorted.len() {
        let start = sorted[index];
        let mut end = start;
        while index + 1 < sorted.len()
            && sorted[index + 1] == end + 1
            && members.len() + (end - start) as usize + 1 < MAX_UIDS_PER_BATCH
        {
            index += 1;
            end = sorted[index];
        }
        let range = if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        };
        let count = (end - start) as usize + 1;
        if !members.is_empty()
            && (set.len() + 1 + range.len() > MAX_UID_SET_LEN
                || members.len() + count > MAX_UIDS_PER_BATCH)
        {
            batches.push((std::mem::take(&mut set), std::mem::take(&mut members)));
        }
        if !set.is_empty() {
            set.push(',');
        }
        set.push_str(&range);
        members.extend(start..=end);
        index += 1;
    }
    if !members.is_empty() {
        batches.push((set, members));
    }
    batches
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandKind {
    WholeMessages,
    HeadersOnly,
    /// Over the size limit: headers only, marked too large.
    TooLarge,
}

/// Messages as they arrive; see [`ImapConnector::fetch`].
#[derive(Debug)]
pub struct FetchStream<'a> {
    connector: &'a mut ImapConnector,
    parts: FetchParts,
    batches: VecDeque<(String, Vec<u32>)>,
    commands: VecDeque<(String, CommandKind)>,
    in_flight: Option<(RequestId, CommandKind)>,
    requested: HashSet<u32>,
    returned: HashSet<u32>,
    /// Bytes received on the connection before this fetch, for the error of a cut link.
    received_before: u64,
}

impl FetchStream<'_> {
    /// The next message; `None` when all batches are done. After an error the stream ends.
    pub async fn next(&mut self) -> Option<Result<FetchedMessage>> {
        match self.advance().await {
            Ok(Some(message)) => Some(Ok(message)),
            Ok(None) => None,
            Err(error) => {
                self.batches.clear();
                self.commands.clear();
                self.in_flight = None;
                self.connector
                    .forget_connection_after::<()>(&Err(clone_kind(&error)));
                Some(Err(self.with_progress(error)))
            }
        }
    }

    /// A lost connection says how far the fetch got: "… after 312 KB of a FETCH of 100
    /// messages (41 received)".
    fn with_progress(&self, error: ConnectorError) -> ConnectorError {
        match error {
            ConnectorError::Connection { address, source } => {
                let received = self
                    .connector
                    .byte_counters()
                    .received()
                    .saturating_sub(self.received_before);
                ConnectorError::Connection {
                    address,
                    source: std::io::Error::new(
                        source.kind(),
                        format!(
                            "{source} after {} KB of a FETCH of {} messages ({} received)",
                            received / 1024,
                            self.requested.len(),
                            self.returned.len()
                        ),
                    ),
                }
            }
            other => other,
        }
    }

    /// UIDs that were asked for and that the server did not return (expunged meanwhile, or
    /// withheld): the caller may retry them later. Complete once [`Self::next`] returned `None`.
    pub fn missing(&self) -> Vec<u32> {
        let mut missing: Vec<u32> = self.requested.difference(&self.returned).copied().collect();
        missing.sort_unstable();
        missing
    }

    async fn advance(&mut self) -> Result<Option<FetchedMessage>> {
        let limit = self.connector.config.command_timeout;
        let address = self.connector.address.clone();
        loop {
            if self.in_flight.is_none() {
                if self.commands.is_empty() {
                    let Some((set, members)) = self.batches.pop_front() else {
                        return Ok(None);
                    };
                    self.plan_batch(&set, &members).await?;
                    continue;
                }
                let (command, kind) = self.commands.pop_front().expect("not empty");
                self.connector.connect().await?;
                let session = &mut self.connector.established()?.session;
                let tag = with_timeout(limit, "UID FETCH", session.run_command(&command))
                    .await?
                    .map_err(|e| crate::error::from_imap(e, &address, false))?;
                self.in_flight = Some((tag, kind));
            }
            let (tag, kind) = self.in_flight.clone().expect("in flight");
            let session = &mut self.connector.established()?.session;
            let response = with_timeout(limit, "UID FETCH", session.read_response())
                .await?
                .map_err(|source| ConnectorError::Connection {
                    address: address.clone(),
                    source,
                })?
                .ok_or_else(|| ConnectorError::Connection {
                    address: address.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "connection closed during UID FETCH",
                    ),
                })?;
            match response.parsed() {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    self.in_flight = None;
                    if *status != Status::Ok {
                        // async-imap would end the stream quietly here; a refused FETCH is an error.
                        return Err(crate::error::classify_refusal(
                            &format!("UID FETCH: {status:?} {}", outcome_text(outcome)),
                            false,
                        ));
                    }
                }
                Response::Fetch(_, attributes) => {
                    let limit_bytes = self.connector.config.max_message_size;
                    if let Some(message) = message_from(attributes, kind, limit_bytes)
                        && self.requested.contains(&message.uid)
                        && self.returned.insert(message.uid)
                    {
                        return Ok(Some(message));
                    }
                }
                _ => {}
            }
        }
    }

    /// Queues the commands of one batch: for whole messages, a size probe first splits the
    /// batch into those to download and those over the limit.
    async fn plan_batch(&mut self, set: &str, members: &[u32]) -> Result<()> {
        match self.parts {
            FetchParts::Headers => {
                let items = self.connector.fetch_items(false).await?;
                self.commands
                    .push_back((format!("UID FETCH {set} {items}"), CommandKind::HeadersOnly));
            }
            FetchParts::Full => {
                let limit = self.connector.config.max_message_size;
                // Only what the probe saw is fetched: a UID it did not return is gone (expunged
                // meanwhile) and ends up in `missing()`.
                let (mut small, mut large) = (Vec::new(), Vec::new());
                self.connector
                    .run(&format!("UID FETCH {set} (UID RFC822.SIZE)"), |response| {
                        if let Response::Fetch(_, attributes) = response {
                            let uid = attributes.iter().find_map(|a| match a {
                                AttributeValue::Uid(uid) => Some(*uid),
                                _ => None,
                            });
                            let size = attributes.iter().find_map(|a| match a {
                                AttributeValue::Rfc822Size(size) => Some(u64::from(*size)),
                                _ => None,
                            });
                            if let (Some(uid), Some(size)) = (uid, size)
                                && members.binary_search(&uid).is_ok()
                            {
                                if size > limit {
                                    large.push(uid);
                                } else {
                                    small.push(uid);
                                }
                            }
                        }
                        Ok(())
                    })
                    .await?;
                small.sort_unstable();
                large.sort_unstable();
                for (batch, kind, with_body) in [
                    (small, CommandKind::WholeMessages, true),
                    (large, CommandKind::TooLarge, false),
                ] {
                    if batch.is_empty() {
                        continue;
                    }
                    let items = self.connector.fetch_items(with_body).await?;
                    for (set, _) in uid_batches(&batch) {
                        self.commands
                            .push_back((format!("UID FETCH {set} {items}"), kind));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A copy of the error's kind, for deciding whether the connection is still usable.
fn clone_kind(error: &ConnectorError) -> ConnectorError {
    match error {
        ConnectorError::Connection { address, source } => ConnectorError::Connection {
            address: address.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        ConnectorError::Timeout { operation, limit } => ConnectorError::Timeout {
            operation: operation.clone(),
            limit: *limit,
        },
        ConnectorError::Tls(text) => ConnectorError::Tls(text.clone()),
        other => ConnectorError::Protocol(other.to_string()),
    }
}

/// Builds a message from a FETCH response that carries a UID and a body section.
fn message_from(
    attributes: &[AttributeValue<'_>],
    kind: CommandKind,
    limit: u64,
) -> Option<FetchedMessage> {
    let mut uid = None;
    let mut flags = Vec::new();
    let mut modseq = None;
    let mut internal_date = None;
    let mut size = None;
    let mut gmail = GmailIds::default();
    let mut email_id = None;
    let mut thread_id = None;
    let mut section: Option<&[u8]> = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(value) => uid = Some(*value),
            // \Recent belongs to one session (and is gone from IMAP4rev2): not a message's state.
            AttributeValue::Flags(values) => {
                flags = values
                    .iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .map(|f| f.to_string())
                    .collect();
            }
            AttributeValue::ModSeq(value) => modseq = Some(*value),
            AttributeValue::InternalDate(text) => {
                internal_date =
                    chrono::DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
                        .ok()
                        .map(|d| d.with_timezone(&chrono::Utc));
            }
            AttributeValue::Rfc822Size(value) => size = Some(u64::from(*value)),
            AttributeValue::GmailMsgId(value) => gmail.message_id = Some(*value),
            AttributeValue::GmailThrId(value) => gmail.thread_id = Some(*value),
            AttributeValue::GmailLabels(labels) => {
                gmail.labels = labels.iter().map(|l| l.to_string()).collect();
            }
            AttributeValue::EmailId(value) => email_id = Some(value.to_string()),
            AttributeValue::ThreadId(value) => thread_id = value.as_ref().map(|v| v.to_string()),
            AttributeValue::BodySection { data, .. } => section = data.as_deref(),
            AttributeValue::Rfc822(data) | AttributeValue::Rfc822Header(data) => {
                section = data.as_deref();
            }
            _ => {}
        }
    }
    let uid = uid?;
    // A FETCH without the section is an unsolicited flag update, not an answer to us.
    let raw = section?;
    let with_body = kind == CommandKind::WholeMessages;
    let (headers, parsed_body, problems) = parse(raw, with_body);
    let content = crate::content::content_key(raw, with_body, size);
    let body = match kind {
        CommandKind::WholeMessages => parsed_body.unwrap_or(Body::HeadersOnly),
        CommandKind::HeadersOnly => Body::HeadersOnly,
        CommandKind::TooLarge => Body::TooLarge {
            size: size.unwrap_or_default(),
            limit,
        },
    };
    Some(FetchedMessage {
        uid,
        flags,
        modseq,
        internal_date,
        size,
        gmail,
        email_id,
        thread_id,
        headers,
        body,
        problems,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compressed_and_split() {
        assert_eq!(uid_batches(&[1, 2, 3, 5, 7, 8])[0].0, "1:3,5,7:8");
        let many: Vec<u32> = (1..=4000).map(|n| n * 2).collect();
        let batches = uid_batches(&many);
        assert!(batches.iter().all(|(set, _)| set.len() <= MAX_UID_SET_LEN));
        assert!(
            batches
                .iter()
                .all(|(_, members)| members.len() <= MAX_UIDS_PER_BATCH)
        );
        let total: usize = batches.iter().map(|(_, m)| m.len()).sum();
        assert_eq!(total, many.len());
        let contiguous: Vec<u32> = (1..=1200).collect();
        let batches = uid_batches(&contiguous);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].0, "1:500");
    }
}

/// The id in a response text that starts with `[MAILBOXID (id)]`, when it is a valid RFC 8474
/// objectid (1–255 letters, digits, `_` or `-`); anything else is ignored.
fn mailbox_id_in(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('[')?;
    let (code, rest) = rest.split_once(' ')?;
    if !code.eq_ignore_ascii_case("MAILBOXID") {
        return None;
    }
    let id = rest.strip_prefix('(')?.split_once(")]")?.0;
    let valid = (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then(|| id.to_owned())
}

#[cfg(test)]
mod mailbox_id_tests {
    use super::mailbox_id_in;

    #[test]
    fn the_rfc_8474_code_is_read_and_anything_odd_is_ignored() {
        assert_eq!(
            mailbox_id_in("[MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Ok").as_deref(),
            Some("F2212ea87-6097-4256-9d51-71338625")
        );
        assert_eq!(mailbox_id_in("[mailboxid (abc)]").as_deref(), Some("abc"));
        for odd in [
            "Ok",
            "[MAILBOXID ()] Ok",
            "[MAILBOXID (a b)] Ok",
            "[MAILBOXID (a\r\n)] Ok",
            "[MAILBOXID abc] Ok",
            "[UIDNEXT 4] Ok",
        ] {
            assert_eq!(mailbox_id_in(odd), None, "{odd}");
        }
        assert_eq!(
            mailbox_id_in(&format!("[MAILBOXID ({})]", "x".repeat(256))),
            None
        );
    }
}
