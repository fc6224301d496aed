//! Pushing the host application's flag changes to the server.
//!
//! The changes recorded for one message are merged into their net effect per flag (the last
//! one recorded wins), and sent to **every** copy of the message in the folder. With CONDSTORE
//! each copy gets one `UID STORE … (UNCHANGEDSINCE m) FLAGS.SILENT (…)` with its whole new flag
//! set, `m` being the copy's MODSEQ the mirror holds: so no change of ours can count as a
//! conflict with another of ours, and a message the server changed since is refused, never
//! overwritten. Conflict rule: when the server changed the message after the MODSEQ the host's
//! first change was based on (seen by the mirror already, or refused by the server), the
//! server's flags win; the dropped change is reported. Without CONDSTORE there is nothing to
//! compare: each net change goes out as `+FLAGS`/`-FLAGS` and the local change wins.

use std::collections::{BTreeMap, HashMap};

use email_model::{Membership, PendingFlagChange};
use imap_connector::MailServer;

use crate::error::Result;

/// A dropped change: (UID, what the host asked for, why).
pub(crate) type Dropped = (u32, String, &'static str);

/// The net effect of one message's pending changes: flag → set (true) or clear (false), and
/// the earliest MODSEQ they were based on.
#[derive(Debug, Default)]
pub(crate) struct NetChange {
    pub(crate) flags: BTreeMap<String, bool>,
    pub(crate) based_on: Option<u64>,
}

impl NetChange {
    fn describe(&self) -> String {
        self.flags
            .iter()
            .map(|(flag, set)| format!("{}{flag}", if *set { '+' } else { '-' }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `flags` with this change applied (flags compared without case, as IMAP does).
    fn applied_to(&self, flags: &[String]) -> Vec<String> {
        let mut result: Vec<String> = flags
            .iter()
            .filter(|flag| {
                !self
                    .flags
                    .iter()
                    .any(|(changed, set)| !set && changed.eq_ignore_ascii_case(flag))
            })
            .cloned()
            .collect();
        for (flag, set) in &self.flags {
            if *set && !result.iter().any(|have| have.eq_ignore_ascii_case(flag)) {
                result.push(flag.clone());
            }
        }
        result.sort();
        result
    }
}

/// Pending changes (in the order recorded) merged per email.
pub(crate) fn net_changes(pending: &[PendingFlagChange]) -> HashMap<i64, NetChange> {
    let mut net: HashMap<i64, NetChange> = HashMap::new();
    for change in pending {
        let entry = net.entry(change.email_id).or_default();
        let existing = entry
            .flags
            .keys()
            .find(|flag| flag.eq_ignore_ascii_case(&change.flag))
            .cloned();
        entry
            .flags
            .insert(existing.unwrap_or_else(|| change.flag.clone()), change.set);
        entry.based_on = match (entry.based_on, change.based_on_modseq) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    net
}

/// Sends `net` to each copy in `copies`; returns the changes dropped for a conflict.
pub(crate) async fn push<M: MailServer>(
    server: &mut M,
    copies: &[&Membership],
    net: &NetChange,
    condstore: bool,
) -> Result<Vec<Dropped>> {
    let mut dropped = Vec::new();
    for copy in copies {
        let with_condstore = condstore.then_some(copy.modseq).flatten();
        match with_condstore {
            Some(known) => {
                if net.based_on.is_some_and(|based_on| known > based_on) {
                    dropped.push((
                        copy.uid,
                        net.describe(),
                        "the server changed the message after the change was made",
                    ));
                    continue;
                }
                let wanted = net.applied_to(&copy.flags);
                let mut current = copy.flags.clone();
                current.sort();
                if wanted == current {
                    continue;
                }
                let refused = server.replace_flags(&[copy.uid], &wanted, known).await?;
                // Refused, but the message already carries what was wanted: our own earlier push
                // (a run stopped before it cleared the pending rows), not a conflict.
                if !refused.is_empty() && !already_applied(server, copy.uid, &wanted).await? {
                    dropped.push((
                        copy.uid,
                        net.describe(),
                        "the server changed the message meanwhile (UNCHANGEDSINCE)",
                    ));
                }
            }
            None => {
                for (flag, set) in &net.flags {
                    let refused = server
                        .store_flag(
                            &[copy.uid],
                            flag,
                            *set,
                            condstore.then_some(net.based_on).flatten(),
                        )
                        .await?;
                    if !refused.is_empty() {
                        dropped.push((
                            copy.uid,
                            net.describe(),
                            "the server changed the message meanwhile (UNCHANGEDSINCE)",
                        ));
                        break;
                    }
                }
            }
        }
    }
    Ok(dropped)
}

/// The message's flags on the server equal `wanted` (compared without case, `\Recent` aside).
async fn already_applied<M: MailServer>(
    server: &mut M,
    uid: u32,
    wanted: &[String],
) -> Result<bool> {
    let normalized = |flags: &[String]| {
        let mut flags: Vec<String> = flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .map(|f| f.to_ascii_lowercase())
            .collect();
        flags.sort();
        flags
    };
    let states = server.flags_of(&[uid]).await?;
    Ok(states
        .iter()
        .find(|state| state.uid == Some(uid))
        .is_some_and(|state| normalized(&state.flags) == normalized(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64, flag: &str, set: bool, based_on: Option<u64>) -> PendingFlagChange {
        PendingFlagChange {
            id,
            email_id: 1,
            folder_id: 1,
            flag: flag.to_owned(),
            set,
            based_on_modseq: based_on,
        }
    }

    #[test]
    fn changes_merge_into_their_net_effect() {
        let pending = [
            change(1, "\\Flagged", true, Some(5)),
            change(2, "\\Seen", false, Some(5)),
            change(3, "\\flagged", false, Some(7)),
            change(4, "$Important", true, Some(7)),
        ];
        let net = net_changes(&pending).remove(&1).unwrap_or_default();
        assert_eq!(net.based_on, Some(5));
        assert_eq!(
            net.applied_to(&["\\Seen".to_owned(), "\\Answered".to_owned()]),
            ["$Important", "\\Answered"]
        );
    }
}
