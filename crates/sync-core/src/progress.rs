//! What a sync tells its caller as it goes (a progress bar, a test's failpoint); sync-core
//! depends on no UI crate.

use std::sync::Arc;

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    MailboxStarted {
        mailbox_id: i64,
    },
    FolderStarted {
        mailbox_id: i64,
        folder: String,
        to_fetch: usize,
    },
    /// A batch was committed: its UIDs (in fetch order) and the folder's progress.
    BatchCommitted {
        mailbox_id: i64,
        folder: String,
        uids: Vec<u32>,
        done: usize,
        total: usize,
    },
    MailboxFinished {
        mailbox_id: i64,
        success: bool,
    },
}

/// Receives progress events; must not block.
pub type ProgressSink = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// A sink that drops everything.
pub fn no_progress() -> ProgressSink {
    Arc::new(|_| {})
}
