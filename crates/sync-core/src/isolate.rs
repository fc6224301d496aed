//! Storing a batch so that one message the database refuses never blocks a folder: the batch
//! is tried whole (the fast path, one transaction, nothing copied); when the database refuses
//! its values, its messages are fetched again one at a time and each is stored in a
//! transaction of its own; the refused ones are set aside with their UIDs and reasons, and the
//! batch's cursors commit last. Nothing is lost: a refused UID waits in `retry_uids` and is
//! tried again on later runs.

use email_model::{BatchReport, EmailBatch, FolderCursors, Store, StoreError};
use imap_connector::{FetchParts, MailServer};

use crate::convert::new_email;
use crate::error::SyncError;

/// What storing a batch did: the counts of what was stored, and the messages refused.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) report: BatchReport,
    /// (UID, why the database refused it).
    pub(crate) refused: Vec<(u32, String)>,
}

impl From<BatchReport> for Stored {
    fn from(report: BatchReport) -> Self {
        Self {
            report,
            refused: Vec::new(),
        }
    }
}

/// What a whole batch's commit needs to be redone one message at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPlace {
    pub(crate) mailbox_id: i64,
    pub(crate) folder_id: i64,
    pub(crate) uid_validity: u32,
    pub(crate) cursors: FolderCursors,
}

impl BatchPlace {
    pub(crate) fn of(batch: &EmailBatch) -> Self {
        Self {
            mailbox_id: batch.mailbox_id,
            folder_id: batch.folder_id,
            uid_validity: batch.uid_validity,
            cursors: batch.cursors,
        }
    }
}

/// After the database refused a batch of `uids`: fetches and stores them one by one, then the
/// batch's cursors.
pub(crate) async fn store_one_by_one<S: Store, M: MailServer>(
    store: &S,
    server: &mut M,
    place: BatchPlace,
    uids: &[u32],
    refusal: &StoreError,
) -> Result<Stored, SyncError> {
    tracing::warn!(%refusal, messages = uids.len(), "the database refused a batch: storing its messages one by one");
    let mut stored = Stored::default();
    for &uid in uids {
        let (messages, _) = server.fetch_batch(&[uid], FetchParts::Full).await?;
        let batch = EmailBatch {
            mailbox_id: place.mailbox_id,
            folder_id: place.folder_id,
            uid_validity: place.uid_validity,
            emails: messages.into_iter().map(new_email).collect(),
            cursors: FolderCursors::default(),
        };
        match store.store_batch(batch).await {
            Ok(report) => {
                stored.report.new_emails += report.new_emails;
                stored.report.known_emails += report.known_emails;
                stored.report.memberships += report.memberships;
            }
            Err(error) if error.is_about_the_data() => {
                tracing::warn!(uid, %error, "message refused by the database: set aside for a retry");
                stored.refused.push((uid, error.to_string()));
            }
            Err(error) => return Err(error.into()),
        }
    }
    store
        .store_batch(EmailBatch {
            mailbox_id: place.mailbox_id,
            folder_id: place.folder_id,
            uid_validity: place.uid_validity,
            emails: Vec::new(),
            cursors: place.cursors,
        })
        .await?;
    Ok(stored)
}
