//! Storing a batch so that one message the database refuses never blocks a folder: the batch
//! is tried whole (the fast path, one transaction); when the database refuses its values, each
//! message is stored in a transaction of its own, the refused ones are set aside with their
//! UIDs and reasons, and the batch's cursors commit last. Nothing is lost: a refused UID waits
//! in `retry_uids` and is tried again on later runs.

use email_model::{BatchReport, EmailBatch, FolderCursors, NewEmail, Store, StoreError};

/// What storing a batch did: the counts of what was stored, and the messages refused.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) report: BatchReport,
    /// (UID, why the database refused it).
    pub(crate) refused: Vec<(u32, String)>,
}

/// Stores `batch`, isolating the messages whose values the database refuses.
pub(crate) async fn store_isolating<S: Store>(
    store: &S,
    batch: EmailBatch,
) -> Result<Stored, StoreError> {
    // Kept for the slow path only; a batch's texts are small next to parsing them.
    let emails = batch.emails.clone();
    let error = match store.store_batch(batch.clone()).await {
        Ok(report) => {
            return Ok(Stored {
                report,
                refused: Vec::new(),
            });
        }
        Err(error) if error.is_about_the_data() && !emails.is_empty() => error,
        Err(error) => return Err(error),
    };
    tracing::warn!(%error, messages = emails.len(), "the database refused a batch: storing its messages one by one");
    let mut stored = Stored::default();
    for email in emails {
        let uid = email.uid;
        match store.store_batch(single(&batch, email)).await {
            Ok(report) => {
                stored.report.new_emails += report.new_emails;
                stored.report.known_emails += report.known_emails;
                stored.report.memberships += report.memberships;
            }
            Err(error) if error.is_about_the_data() => {
                tracing::warn!(uid, %error, "message refused by the database: set aside for a retry");
                stored.refused.push((uid, error.to_string()));
            }
            Err(error) => return Err(error),
        }
    }
    store
        .store_batch(EmailBatch {
            emails: Vec::new(),
            ..batch
        })
        .await?;
    Ok(stored)
}

/// One message of `batch` in a batch of its own, moving no cursor.
fn single(batch: &EmailBatch, email: NewEmail) -> EmailBatch {
    EmailBatch {
        mailbox_id: batch.mailbox_id,
        folder_id: batch.folder_id,
        uid_validity: batch.uid_validity,
        emails: vec![email],
        cursors: FolderCursors::default(),
    }
}
