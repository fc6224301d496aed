//! What can go wrong reading or writing the mirror.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(diesel::result::Error),
    /// A row with this value exists already (a unique key): `field` names the value's column.
    #[error("{field}: {reason}")]
    Conflict { field: String, reason: String },
    #[error("connecting to the database: {0}")]
    Connection(String),
    #[error("migrations: {0}")]
    Migrations(String),
    #[error("secrets: {0}")]
    Secrets(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A value from outside (a user, an API, a configuration) that the model does not accept;
    /// `field` names it and `reason` says what is accepted.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
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

impl StoreError {
    /// The database refused the values (a byte it cannot hold, a value too large, a constraint):
    /// the same write fails again, while a smaller one may succeed. Not a lost connection or a
    /// transaction conflict, which are worth retrying as they are.
    pub fn is_about_the_data(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Database(Error::DatabaseError(kind, _)) => !matches!(
                kind,
                DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::SerializationFailure
                    | DatabaseErrorKind::ReadOnlyTransaction
            ),
            StoreError::Database(Error::SerializationError(_)) => true,
            StoreError::Invalid { .. } | StoreError::Conflict { .. } => true,
            _ => false,
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    /// Key violations are the caller's mistake (a duplicate, a missing reference) and say which
    /// column; everything else is a database fault.
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                let field = violated_column(info.as_ref());
                StoreError::Conflict {
                    reason: format!("another row already has this {field}"),
                    field,
                }
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                let field = violated_column(info.as_ref());
                StoreError::Invalid {
                    reason: format!("the row this {field} names does not exist"),
                    field,
                }
            }
            _ => StoreError::Database(error),
        }
    }
}

/// The column a key violation is about: PostgreSQL names the constraint (`users_email_key`,
/// `mailboxes_owner_user_id_fkey`, with the table in `table_name`), SQLite the column in its
/// message (`UNIQUE constraint failed: users.email`).
fn violated_column(info: &dyn diesel::result::DatabaseErrorInformation) -> String {
    if let Some(column) = info.column_name() {
        return column.to_owned();
    }
    if let Some(constraint) = info.constraint_name() {
        let without_table = info
            .table_name()
            .and_then(|table| constraint.strip_prefix(table))
            .map_or(constraint, |rest| rest.trim_start_matches('_'));
        return without_table
            .trim_end_matches("_fkey")
            .trim_end_matches("_key")
            .to_owned();
    }
    info.message()
        .rsplit_once(": ")
        .map(|(_, columns)| columns)
        .map(|columns| {
            columns
                .split(", ")
                .map(|c| c.rsplit('.').next().unwrap_or(c))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|columns| !columns.contains(' ') || columns.contains(", "))
        .unwrap_or_else(|| "reference".to_owned())
}
