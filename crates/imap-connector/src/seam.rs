//! What the sync engine needs from a mail server, as a trait: the seam at which sync-core's
//! logic is unit-tested with a mock, while integration tests use the real connector.

use std::collections::BTreeSet;

use crate::changes::{Changes, FlagState};
use crate::connector::ImapConnector;
use crate::error::Result;
use crate::fetch::FetchParts;
use crate::folders::Folder;
use crate::message::FetchedMessage;
use crate::search::SearchQuery;
use crate::select::SelectedFolder;

/// A mail server seen from the sync engine.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait MailServer: Send {
    /// Capabilities after login, uppercase.
    fn capabilities(&mut self) -> impl Future<Output = Result<BTreeSet<String>>> + Send;

    /// Every folder, with counts when asked.
    fn folders(&mut self, with_counts: bool) -> impl Future<Output = Result<Vec<Folder>>> + Send;

    fn select(&mut self, full_name: &str) -> impl Future<Output = Result<SelectedFolder>> + Send;

    /// The server's own id of a folder (RFC 8474 MAILBOXID); `None` where it offers none.
    fn folder_server_id(
        &mut self,
        full_name: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// The UIDs of the selected folder matching `query` (standard criteria).
    fn search(&mut self, query: &SearchQuery) -> impl Future<Output = Result<Vec<u32>>> + Send;

    /// The UIDs from `first` up in the selected folder (new mail above a cursor).
    fn uids_from(&mut self, first: u32) -> impl Future<Output = Result<Vec<u32>>> + Send;

    /// The messages with these UIDs, and the UIDs the server did not return. The caller
    /// bounds memory by the number of UIDs it asks for at once.
    fn fetch_batch(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> impl Future<Output = Result<(Vec<FetchedMessage>, Vec<u32>)>> + Send;

    fn logout(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// `ENABLE QRESYNC` when offered (before SELECT); true when enabled.
    fn enable_qresync(&mut self) -> impl Future<Output = Result<bool>> + Send;
    /// Flag changes (and expunges, with QRESYNC) in the selected folder since `modseq`.
    /// Changes since `modseq` among UIDs up to `up_to_uid` (the highest the caller knows).
    fn changes_since(
        &mut self,
        modseq: u64,
        up_to_uid: u32,
    ) -> impl Future<Output = Result<Changes>> + Send;
    /// NOOP: lets the server deliver what other sessions changed (expunges it held back).
    fn noop(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Every UID of the selected folder.
    fn all_uids(&mut self) -> impl Future<Output = Result<Vec<u32>>> + Send;
    /// The flags of these UIDs.
    fn flags_of(&mut self, uids: &[u32]) -> impl Future<Output = Result<Vec<FlagState>>> + Send;
    /// Adds (`set`) or removes one flag; with `unchanged_since`, returns the UIDs the server
    /// changed after that MODSEQ, left untouched.
    fn store_flag(
        &mut self,
        uids: &[u32],
        flag: &str,
        set: bool,
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = Result<Vec<u32>>> + Send;

    /// Sets exactly `flags` on these UIDs where unchanged since `unchanged_since` (CONDSTORE);
    /// returns the UIDs the server refused because they changed meanwhile.
    fn replace_flags(
        &mut self,
        uids: &[u32],
        flags: &[String],
        unchanged_since: u64,
    ) -> impl Future<Output = Result<Vec<u32>>> + Send;

    /// Bytes (sent, received) on the wire so far.
    fn wire_bytes(&self) -> (u64, u64);
    /// IMAP commands sent so far.
    fn commands_sent(&self) -> u64;
    /// Waits on the selected folder until the server reports a change (IDLE, or NOOP every
    /// `poll_interval` where IDLE is missing), `timeout` passes, or `stop` turns true.
    fn wait_for_changes(
        &mut self,
        timeout: std::time::Duration,
        poll_interval: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> impl Future<Output = Result<crate::WaitOutcome>> + Send;
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

    async fn folder_server_id(&mut self, full_name: &str) -> Result<Option<String>> {
        ImapConnector::folder_server_id(self, full_name).await
    }

    async fn search(&mut self, query: &SearchQuery) -> Result<Vec<u32>> {
        ImapConnector::search_standard(self, query).await
    }

    async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>> {
        ImapConnector::uids_from(self, first).await
    }

    async fn fetch_batch(
        &mut self,
        uids: &[u32],
        parts: FetchParts,
    ) -> Result<(Vec<FetchedMessage>, Vec<u32>)> {
        ImapConnector::fetch_all(self, uids, parts).await
    }

    async fn logout(&mut self) -> Result<()> {
        ImapConnector::logout(self).await
    }

    async fn enable_qresync(&mut self) -> Result<bool> {
        ImapConnector::enable_qresync(self).await
    }

    async fn changes_since(&mut self, modseq: u64, up_to_uid: u32) -> Result<Changes> {
        ImapConnector::changes_since(self, modseq, up_to_uid).await
    }

    async fn noop(&mut self) -> Result<()> {
        self.run("NOOP", |_| Ok(())).await
    }

    async fn all_uids(&mut self) -> Result<Vec<u32>> {
        ImapConnector::all_uids(self).await
    }

    async fn flags_of(&mut self, uids: &[u32]) -> Result<Vec<FlagState>> {
        ImapConnector::flags_of(self, uids).await
    }

    async fn store_flag(
        &mut self,
        uids: &[u32],
        flag: &str,
        set: bool,
        unchanged_since: Option<u64>,
    ) -> Result<Vec<u32>> {
        if set {
            self.add_flags(uids, &[flag], unchanged_since).await
        } else {
            self.remove_flags(uids, &[flag], unchanged_since).await
        }
    }

    async fn replace_flags(
        &mut self,
        uids: &[u32],
        flags: &[String],
        unchanged_since: u64,
    ) -> Result<Vec<u32>> {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        ImapConnector::replace_flags(self, uids, &flags, unchanged_since).await
    }

    fn wire_bytes(&self) -> (u64, u64) {
        let counters = self.byte_counters();
        (counters.sent(), counters.received())
    }

    fn commands_sent(&self) -> u64 {
        self.commands_sent()
    }

    async fn wait_for_changes(
        &mut self,
        timeout: std::time::Duration,
        poll_interval: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<crate::WaitOutcome> {
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        ImapConnector::wait_for_changes(self, timeout, poll_interval, stopped).await
    }
}
