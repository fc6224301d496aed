//! UID SEARCH in the selected folder: as written, from a typed query, and the new-mail search
//! with its fallback for servers that answer `UID n:*` wrongly.

use async_imap::imap_proto::{MailboxDatum, Response};

use crate::command::quoted;
use crate::connector::ImapConnector;
use crate::error::Result;
use crate::fetch::{FetchParts, FetchStream};

impl ImapConnector {
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
        self.search_standard(query).await
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

    /// The UIDs matching `query` in standard criteria only (never Gmail's X-GM-RAW, whose
    /// dates are days in the account's time zone): what the sync engine searches with.
    pub async fn search_standard(
        &mut self,
        query: &crate::search::SearchQuery,
    ) -> Result<Vec<u32>> {
        let compiled = query.compile(self.has("LITERAL+").await?);
        let charset = if compiled.needs_utf8 {
            "CHARSET UTF-8 "
        } else {
            ""
        };
        self.uid_search(&format!("{charset}{}", compiled.criteria))
            .await
    }

    /// The UIDs from `first` up in the selected folder: `UID SEARCH UID first:*`, without the
    /// highest UID that `first:*` also matches when it lies below `first` (RFC 9051). A server
    /// that answers with no UID at all while the folder holds mail breaks the rule that `*` is
    /// in the range (seen on deployed servers; new mail was never imported): then the UIDs
    /// come from `UID FETCH first:* (UID)` instead.
    pub async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>> {
        let first = first.max(1);
        let found = self
            .search_standard(&crate::search::SearchQuery::new().uids(first, None))
            .await?;
        let holds_mail = self.selected.as_ref().is_some_and(|s| s.exists > 0);
        if !found.is_empty() || !holds_mail {
            return Ok(found.into_iter().filter(|uid| *uid >= first).collect());
        }
        tracing::warn!(
            first,
            "UID SEARCH UID n:* came back empty from a folder that holds mail: listing with UID FETCH"
        );
        let mut uids = Vec::new();
        self.run(&format!("UID FETCH {first}:* (UID)"), |response| {
            if let Response::Fetch(_, attributes) = response {
                for attribute in attributes {
                    if let async_imap::imap_proto::AttributeValue::Uid(uid) = attribute {
                        uids.push(*uid);
                    }
                }
            }
            Ok(())
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids.into_iter().filter(|uid| *uid >= first).collect())
    }
}
