//! What the sync engine needs from a mail server, as a trait: the seam at which sync-core's
//! logic is unit-tested with a mock, while integration tests use the real connector.

use std::collections::BTreeSet;

use crate::connector::{FetchParts, ImapConnector, SelectedFolder};
use crate::error::Result;
use crate::folders::Folder;
use crate::message::FetchedMessage;

/// A mail server seen from the sync engine.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait MailServer: Send {
    /// Capabilities after login, uppercase.
    fn capabilities(&mut self) -> impl Future<Output = Result<BTreeSet<String>>> + Send;

    /// Every folder, with counts when asked.
    fn folders(&mut self, with_counts: bool) -> impl Future<Output = Result<Vec<Folder>>> + Send;

    fn select(&mut self, full_name: &str) -> impl Future<Output = Result<SelectedFolder>> + Send;

    fn uid_search(&mut self, criteria: &str) -> impl Future<Output = Result<Vec<u32>>> + Send;

    /// The messages with these UIDs, and the UIDs the server did not return. The caller
    /// bounds memory by the number of UIDs it asks for at once.
    fn fetch_batch(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> impl Future<Output = Result<(Vec<FetchedMessage>, Vec<u32>)>> + Send;

    fn logout(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// Bytes (sent, received) on the wire so far.
    fn wire_bytes(&self) -> (u64, u64);
}

impl MailServer for ImapConnector {
    async fn capabilities(&mut self) -> Result<BTreeSet<String>> {
        ImapConnector::capabilities(self).await
    }

    async fn folders(&mut self, with_counts: bool) -> Result<Vec<Folder>> {
        ImapConnector::folders(self, None, true, with_counts).await
    }

    async fn select(&mut self, full_name: &str) -> Result<SelectedFolder> {
        ImapConnector::select(self, full_name).await
    }

    async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>> {
        ImapConnector::uid_search(self, criteria).await
    }

    async fn fetch_batch(
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

    async fn logout(&mut self) -> Result<()> {
        ImapConnector::logout(self).await
    }

    fn wire_bytes(&self) -> (u64, u64) {
        let counters = self.byte_counters();
        (counters.sent(), counters.received())
    }
}
