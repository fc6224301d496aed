//! What can go wrong reading or writing the mirror.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("connecting to the database: {0}")]
    Connection(String),
    #[error("migrations: {0}")]
    Migrations(String),
    #[error("secrets: {0}")]
    Secrets(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A write that would break a rule of the model (written in docs/schema.md).
    #[error("refused: {0}")]
    Refused(String),
    /// A new host or login makes the mailbox another account while it holds synced mail.
    #[error(
        "mailbox {mailbox_id} holds mail synced from {old_account}; {new_account} is another account"
    )]
    OtherAccount {
        mailbox_id: i64,
        old_account: String,
        new_account: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;
