//! Why a mailbox's sync failed.

use imap_connector::ConnectorError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Server(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] email_model::StoreError),
    #[error("the mailbox has no credentials")]
    NoCredentials,
    #[error("time budget of {0:?} reached")]
    BudgetReached(std::time::Duration),
    /// A bug met this mailbox's data: the panic is contained to its sync and recorded.
    #[error(
        "the sync stopped on an internal error ({0}); the other mailboxes are not affected. Please report it with the daemon's log"
    )]
    Panicked(String),
    /// Shutting down: stopped between batches; everything committed is consistent.
    #[error("stopped for shutdown")]
    Stopped,
}

impl SyncError {
    /// A refused login: the case that opens a credential episode and backs off long.
    pub fn is_invalid_credentials(&self) -> bool {
        matches!(
            self,
            Self::Server(ConnectorError::InvalidCredentials { .. })
        )
    }

    /// The connection was lost or stopped answering: worth a new connection within the run.
    pub fn is_lost_link(&self) -> bool {
        matches!(
            self,
            Self::Server(ConnectorError::Connection { .. } | ConnectorError::Timeout { .. })
        )
    }
}

pub type Result<T> = std::result::Result<T, SyncError>;
