//! SELECT and EXAMINE: the selected folder's state, with what a server left out derived.

use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};

use crate::command;
use crate::connector::ImapConnector;
use crate::error::{ConnectorError, Result};

/// The state of the selected folder, from SELECT or EXAMINE. UIDVALIDITY and UIDNEXT are
/// always there: a server that leaves UIDNEXT out has it derived from its highest UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedFolder {
    pub full_name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub exists: u32,
    pub highest_modseq: Option<u64>,
    /// The server's own id of the folder (RFC 8474 `[MAILBOXID (…)]`), when it offers one.
    pub mailbox_id: Option<String>,
}

/// What a SELECT's responses said, before the gaps are filled.
#[derive(Debug, Default)]
pub(crate) struct SelectReply {
    exists: u32,
    uid_validity: Option<u32>,
    uid_next: Option<u32>,
    highest_modseq: Option<u64>,
    mailbox_id: Option<String>,
}

impl SelectReply {
    pub(crate) fn highest_modseq(&self) -> Option<u64> {
        self.highest_modseq
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

impl ImapConnector {
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
        let mut reply = SelectReply::default();
        let result = self
            .run(&command, |response| {
                reply.read(response);
                Ok(())
            })
            .await;
        // Events of the previous folder, and this SELECT's own EXISTS, are no news now.
        self.events.clear();
        match result {
            Ok(()) => {
                let selected = self.selected_from(full_name, reply).await?;
                self.selected = Some(selected.clone());
                Ok(selected)
            }
            Err(ConnectorError::Protocol(text) | ConnectorError::FolderNotFound(text)) => {
                Err(select_refusal(full_name, &text))
            }
            Err(other) => Err(other),
        }
    }

    /// The folder's state from a SELECT's reply. Without UIDVALIDITY nothing can be mirrored
    /// (UIDs would mean nothing): an error. Without UIDNEXT (seen on deployed servers) it is
    /// the highest UID plus one, from `UID FETCH * (UID)` — never 0 while the folder holds mail,
    /// which would make every UID look new.
    pub(crate) async fn selected_from(
        &mut self,
        full_name: &str,
        reply: SelectReply,
    ) -> Result<SelectedFolder> {
        let uid_validity = reply.uid_validity.ok_or_else(|| {
            ConnectorError::Protocol(format!(
                "the server selected {full_name} without a UIDVALIDITY (RFC 9051 requires one); \
                 its mail cannot be mirrored until it sends one"
            ))
        })?;
        let uid_next = match reply.uid_next {
            Some(next) => next,
            None if reply.exists == 0 => 1,
            None => {
                tracing::warn!(
                    folder = full_name,
                    "SELECT gave no UIDNEXT: derived from the highest UID"
                );
                let mut highest = 0;
                self.run("UID FETCH * (UID)", |response| {
                    if let Response::Fetch(_, attributes) = response {
                        for attribute in attributes {
                            if let AttributeValue::Uid(uid) = attribute {
                                highest = highest.max(*uid);
                            }
                        }
                    }
                    Ok(())
                })
                .await?;
                highest.saturating_add(1)
            }
        };
        Ok(SelectedFolder {
            full_name: full_name.to_owned(),
            uid_validity,
            uid_next,
            exists: reply.exists,
            highest_modseq: reply.highest_modseq,
            mailbox_id: reply.mailbox_id,
        })
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
mod tests {
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
