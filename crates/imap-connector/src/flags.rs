//! Changing flags one at a time (never replacing the whole set), and moving or copying mail.

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{Response, ResponseCode, Status};

use crate::command::{self, flag_list};
use crate::connector::ImapConnector;
use crate::error::Result;
use crate::fetch::uid_batches;

/// Where copied or moved messages landed (from COPYUID, when the server has UIDPLUS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the target folder.
    pub uid_validity: Option<u32>,
    /// (UID in the source folder, UID in the target folder).
    pub mapping: Vec<(u32, u32)>,
    /// For a move: the originals are gone from the source folder. False only for a move on a
    /// server with neither MOVE nor UIDPLUS, where they are marked `\Deleted` but left in place
    /// (a plain EXPUNGE would also remove other users' deleted mail).
    pub expunged: bool,
}

fn members(set: &[UidSetMember]) -> Vec<u32> {
    set.iter()
        .flat_map(|member| match member {
            UidSetMember::UidRange(range) => range.clone().collect::<Vec<_>>(),
            UidSetMember::Uid(uid) => vec![*uid],
        })
        .collect()
}

fn copy_uid(code: &Option<ResponseCode<'_>>, result: &mut CopyResult) {
    if let Some(ResponseCode::CopyUid(validity, source, target)) = code {
        result.uid_validity = Some(*validity);
        result
            .mapping
            .extend(members(source).into_iter().zip(members(target)));
    }
}

/// UIDs named in `[MODIFIED 1,3:5]` (UNCHANGEDSINCE failures), which imap-proto leaves in the text.
fn modified_uids(text: &str) -> Vec<u32> {
    let Some(rest) = text
        .to_ascii_uppercase()
        .split("[MODIFIED ")
        .nth(1)
        .map(str::to_owned)
    else {
        return Vec::new();
    };
    let set = rest.split(']').next().unwrap_or_default();
    set.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                (Ok(a), Ok(b)) => (a.min(b)..=a.max(b)).collect(),
                _ => Vec::new(),
            },
            None => part.trim().parse().ok().into_iter().collect(),
        })
        .collect()
}

impl ImapConnector {
    /// Adds `flags` to these UIDs (`+FLAGS.SILENT`), leaving their other flags alone. With
    /// `unchanged_since`, messages changed on the server after that MODSEQ are left as they
    /// are and returned (CONDSTORE's UNCHANGEDSINCE).
    pub async fn add_flags(
        &mut self,
        uids: &[u32],
        flags: &[&str],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<u32>> {
        self.store_flags(uids, "+FLAGS.SILENT", flags, unchanged_since)
            .await
    }

    /// Sets exactly `flags` on these UIDs (`FLAGS.SILENT`). Only safe with `unchanged_since`
    /// (CONDSTORE): the server then refuses a message changed after that MODSEQ, so flags set by
    /// someone else meanwhile are never overwritten; such messages are returned.
    pub async fn replace_flags(
        &mut self,
        uids: &[u32],
        flags: &[&str],
        unchanged_since: u64,
    ) -> Result<Vec<u32>> {
        self.store_flags(uids, "FLAGS.SILENT", flags, Some(unchanged_since))
            .await
    }

    /// Removes `flags` from these UIDs (`-FLAGS.SILENT`); see [`Self::add_flags`].
    pub async fn remove_flags(
        &mut self,
        uids: &[u32],
        flags: &[&str],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<u32>> {
        self.store_flags(uids, "-FLAGS.SILENT", flags, unchanged_since)
            .await
    }

    async fn store_flags(
        &mut self,
        uids: &[u32],
        item: &str,
        flags: &[&str],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<u32>> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let condition = match unchanged_since {
            Some(modseq) if self.has("CONDSTORE").await? => format!(" (UNCHANGEDSINCE {modseq})"),
            _ => String::new(),
        };
        let flags = flag_list(flags)?;
        let mut modified = Vec::new();
        for (set, _) in uid_batches(&sorted) {
            self.run(
                &format!("UID STORE {set}{condition} {item} {flags}"),
                |response| {
                    if let Response::Done {
                        status: Status::Ok,
                        outcome,
                        ..
                    } = response
                    {
                        modified.extend(modified_uids(
                            outcome.information.as_deref().unwrap_or_default(),
                        ));
                    }
                    Ok(())
                },
            )
            .await?;
        }
        Ok(modified)
    }

    /// Copies these UIDs to `target` (a decoded full name).
    pub async fn copy_uids(&mut self, uids: &[u32], target: &str) -> Result<CopyResult> {
        let mut result = CopyResult {
            expunged: false,
            ..CopyResult::default()
        };
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let target = command::folder(target)?;
        for (set, _) in uid_batches(&sorted) {
            self.run(&format!("UID COPY {set} {target}"), |response| {
                if let Response::Done { outcome, .. } = response {
                    copy_uid(&outcome.code, &mut result);
                }
                Ok(())
            })
            .await?;
        }
        Ok(result)
    }

    /// Moves these UIDs to `target`: UID MOVE when offered; else COPY, `\Deleted` and UID
    /// EXPUNGE (UIDPLUS) — see [`CopyResult::expunged`] for a server with neither.
    pub async fn move_uids(&mut self, uids: &[u32], target: &str) -> Result<CopyResult> {
        if !self.has("MOVE").await? {
            let mut result = self.copy_uids(uids, target).await?;
            self.add_flags(uids, &["\\Deleted"], None).await?;
            if self.has("UIDPLUS").await? {
                let mut sorted = uids.to_vec();
                sorted.sort_unstable();
                for (set, _) in uid_batches(&sorted) {
                    self.run(&format!("UID EXPUNGE {set}"), |_| Ok(())).await?;
                }
                result.expunged = true;
            }
            return Ok(result);
        }
        let mut result = CopyResult {
            expunged: true,
            ..CopyResult::default()
        };
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let target = command::folder(target)?;
        for (set, _) in uid_batches(&sorted) {
            // The COPYUID of a MOVE comes in an untagged OK before the expunges.
            self.run(&format!("UID MOVE {set} {target}"), |response| {
                match response {
                    Response::Data {
                        status: Status::Ok,
                        outcome,
                    }
                    | Response::Done { outcome, .. } => {
                        copy_uid(&outcome.code, &mut result);
                    }
                    _ => {}
                }
                Ok(())
            })
            .await?;
        }
        // The moved messages' own EXPUNGE/VANISHED are the answer, not news.
        self.events
            .retain(|event| matches!(event, crate::changes::MailboxEvent::Exists(_)));
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_sets_are_read_from_the_text() {
        assert_eq!(
            modified_uids("[MODIFIED 7,9:11] Conditional STORE failed"),
            [7, 9, 10, 11]
        );
        assert!(modified_uids("Store completed.").is_empty());
    }
}
