//! FETCH: messages streamed in batches of UID sets, parsed one at a time.

use std::collections::{HashSet, VecDeque};

use async_imap::imap_proto::{AttributeValue, RequestId, Response, Status};

use crate::connector::ImapConnector;
use crate::error::{ConnectorError, Result};
use crate::message::{Body, FetchedMessage, GmailIds, parse};
use crate::session::{outcome_text, with_timeout};

/// No command line longer than this (RFC 7162 advises 8 KB; some servers choke on less).
const MAX_UID_SET_LEN: usize = 1000;
/// Messages per FETCH command, so that the size probe's answers stay small.
const MAX_UIDS_PER_BATCH: usize = 500;

/// What to download of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchParts {
    /// Flags, dates, sizes, ids and the header.
    Headers,
    /// All of that and the whole message, parsed; messages over the size limit get their
    /// header only and [`Body::TooLarge`].
    Full,
}

impl ImapConnector {
    /// Every message with these UIDs, and the UIDs the server did not return. A server that
    /// refuses a FETCH naming UIDs expunged meanwhile (BAD or NO, where RFC 9051 wants OK and
    /// nothing for them; seen on deployed servers) is asked which of them it still lists and
    /// fetched again for those: the gone ones are "not returned", the folder goes on.
    pub async fn fetch_all(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> Result<(Vec<FetchedMessage>, Vec<u32>)> {
        match self.collect(uids, parts).await {
            Err(ConnectorError::Protocol(refusal)) if !uids.is_empty() => {
                let mut sorted = uids.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                let mut live = Vec::new();
                for (set, _) in uid_batches(&sorted) {
                    live.extend(self.uid_search(&format!("UID {set}")).await?);
                }
                live.retain(|uid| sorted.binary_search(uid).is_ok());
                live.sort_unstable();
                live.dedup();
                if live.len() == sorted.len() {
                    // Every UID is there: the refusal is about something else.
                    return Err(ConnectorError::Protocol(refusal));
                }
                tracing::warn!(
                    asked = sorted.len(),
                    live = live.len(),
                    %refusal,
                    "FETCH refused for UIDs gone meanwhile: fetching the ones still listed"
                );
                let (messages, mut missing) = self.collect(&live, parts).await?;
                missing.extend(sorted.iter().filter(|uid| live.binary_search(uid).is_err()));
                missing.sort_unstable();
                Ok((messages, missing))
            }
            other => other,
        }
    }

    async fn collect(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> Result<(Vec<FetchedMessage>, Vec<u32>)> {
        let mut stream = self.fetch(uids, parts);
        let mut messages = Vec::with_capacity(uids.len());
        while let Some(message) = stream.next().await {
            messages.push(message?);
        }
        Ok((messages, stream.missing()))
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
