//! Following a folder's changes: CONDSTORE/QRESYNC where the server has them (CHANGEDSINCE,
//! VANISHED), and the fallback where it does not (all UIDs, FLAGS in chunks).

use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response};

use crate::command;
use crate::connector::ImapConnector;
use crate::error::Result;
use crate::fetch::uid_batches;
use crate::select::{SelectReply, SelectedFolder};

/// A change the server announced on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxEvent {
    /// The folder now holds this many messages.
    Exists(u32),
    /// The message at this sequence number was expunged (servers without QRESYNC).
    Expunged(u32),
    /// These UIDs were expunged (QRESYNC).
    Vanished(Vec<u32>),
    /// A message's flags changed.
    Flags(FlagState),
}

/// A message's flags as the server has them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagState {
    /// Known when the server sent it (always after UID commands and with QRESYNC).
    pub uid: Option<u32>,
    pub seq: u32,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
}

/// What changed in the selected folder since a MODSEQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub changed: Vec<FlagState>,
    /// Expunged UIDs (only with QRESYNC; without it, compare UID lists).
    pub vanished: Vec<u32>,
    pub highest_modseq: Option<u64>,
}

pub(crate) fn expand_ranges(ranges: &[std::ops::RangeInclusive<u32>]) -> Vec<u32> {
    ranges.iter().flat_map(|r| r.clone()).collect()
}

fn flag_state(seq: u32, attributes: &[AttributeValue<'_>]) -> Option<FlagState> {
    let mut state = FlagState {
        uid: None,
        seq,
        flags: Vec::new(),
        modseq: None,
    };
    let mut has_flags = false;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(uid) => state.uid = Some(*uid),
            AttributeValue::Flags(flags) => {
                has_flags = true;
                state.flags = flags
                    .iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .map(|f| f.to_string())
                    .collect();
            }
            AttributeValue::ModSeq(modseq) => state.modseq = Some(*modseq),
            _ => {}
        }
    }
    has_flags.then_some(state)
}

/// The events a response carries when it arrives unasked (FETCH answers are not events here:
/// they may be the answer to the command itself).
pub(crate) fn unsolicited_event(response: &Response<'_>) -> Option<MailboxEvent> {
    match response {
        Response::MailboxData(MailboxDatum::Exists(n)) => Some(MailboxEvent::Exists(*n)),
        Response::Expunge(seq) => Some(MailboxEvent::Expunged(*seq)),
        Response::Vanished {
            earlier: false,
            uids,
        } => Some(MailboxEvent::Vanished(expand_ranges(uids))),
        _ => None,
    }
}

/// Every event a response carries, FETCH included (for IDLE and NOOP polling).
pub(crate) fn any_event(response: &Response<'_>) -> Option<MailboxEvent> {
    match response {
        Response::Fetch(seq, attributes) => flag_state(*seq, attributes).map(MailboxEvent::Flags),
        other => unsolicited_event(other),
    }
}

impl ImapConnector {
    /// The changes announced so far without being asked for (and forgets them).
    pub fn take_events(&mut self) -> Vec<MailboxEvent> {
        std::mem::take(&mut self.events)
    }

    /// `ENABLE QRESYNC` when the server has it (once per connection); true when enabled.
    pub async fn enable_qresync(&mut self) -> Result<bool> {
        if self.qresync_enabled {
            return Ok(true);
        }
        if !self.has("QRESYNC").await? {
            return Ok(false);
        }
        self.run("ENABLE QRESYNC", |_| Ok(())).await?;
        self.qresync_enabled = true;
        Ok(true)
    }

    /// `SELECT folder (QRESYNC (uidvalidity modseq [known-uids]))`: selects and, in the same
    /// round trip, learns what changed since `modseq` — flags of changed messages and UIDs
    /// expunged. Needs QRESYNC (see [`Self::enable_qresync`]).
    pub async fn select_qresync(
        &mut self,
        full_name: &str,
        uid_validity: u32,
        modseq: u64,
        known_uids: Option<&str>,
    ) -> Result<(SelectedFolder, Changes)> {
        self.enable_qresync().await?;
        let known = known_uids.map(|set| format!(" {set}")).unwrap_or_default();
        let command = format!(
            "SELECT {} (QRESYNC ({uid_validity} {modseq}{known}))",
            command::folder(full_name)?
        );
        let mut reply = SelectReply::default();
        let mut changes = Changes::default();
        self.selected = None;
        self.run(&command, |response| {
            if reply.read(response) {
                return Ok(());
            }
            match response {
                Response::Vanished { uids, .. } => changes.vanished.extend(expand_ranges(uids)),
                Response::Fetch(seq, attributes) => {
                    changes.changed.extend(flag_state(*seq, attributes));
                }
                _ => {}
            }
            Ok(())
        })
        .await?;
        self.events.clear();
        changes.highest_modseq = reply.highest_modseq();
        let selected = self.selected_from(full_name, reply).await?;
        self.selected = Some(selected.clone());
        Ok((selected, changes))
    }

    /// Flag changes (and, with QRESYNC enabled, expunged UIDs) in the selected folder since
    /// `modseq` among UIDs up to `up_to_uid`, the highest the caller knows:
    /// `UID FETCH 1:up_to_uid (UID FLAGS) (CHANGEDSINCE modseq [VANISHED])`. Never `1:*`: some
    /// servers read `*` as the highest UID present now, so an expunged top message would lie
    /// outside the range and its VANISHED never come.
    pub async fn changes_since(&mut self, modseq: u64, up_to_uid: u32) -> Result<Changes> {
        let up_to_uid = up_to_uid.max(1);
        let vanished = if self.qresync_enabled {
            " VANISHED"
        } else {
            ""
        };
        let command =
            format!("UID FETCH 1:{up_to_uid} (UID FLAGS MODSEQ) (CHANGEDSINCE {modseq}{vanished})");
        let mut changes = Changes::default();
        // Expunges announced since the last command are part of the answer.
        self.events.retain(|event| match event {
            MailboxEvent::Vanished(uids) => {
                changes.vanished.extend(uids);
                false
            }
            _ => true,
        });
        self.run(&command, |response| {
            match response {
                Response::Fetch(seq, attributes) => {
                    changes.changed.extend(flag_state(*seq, attributes));
                }
                Response::Vanished { uids, .. } => changes.vanished.extend(expand_ranges(uids)),
                _ => {}
            }
            Ok(())
        })
        .await?;
        self.events
            .retain(|event| !matches!(event, MailboxEvent::Vanished(_)));
        changes.vanished.sort_unstable();
        changes.vanished.dedup();
        changes.highest_modseq = changes.changed.iter().filter_map(|c| c.modseq).max();
        Ok(changes)
    }

    /// Every UID in the selected folder (the fallback for servers without QRESYNC). A NOOP
    /// goes first: a server may hold back other sessions' expunges until a command that allows
    /// them, and answer the SEARCH from the session's older view.
    pub async fn all_uids(&mut self) -> Result<Vec<u32>> {
        self.run("NOOP", |_| Ok(())).await?;
        self.uid_search("ALL").await
    }

    /// The flags of these UIDs, fetched in chunks (the fallback for servers without CONDSTORE).
    pub async fn flags_of(&mut self, uids: &[u32]) -> Result<Vec<FlagState>> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut states = Vec::with_capacity(sorted.len());
        let items = if self.has("CONDSTORE").await? {
            "(UID FLAGS MODSEQ)"
        } else {
            "(UID FLAGS)"
        };
        for (set, _) in uid_batches(&sorted) {
            self.run(&format!("UID FETCH {set} {items}"), |response| {
                if let Response::Fetch(seq, attributes) = response {
                    states.extend(flag_state(*seq, attributes));
                }
                Ok(())
            })
            .await?;
        }
        Ok(states)
    }
}
