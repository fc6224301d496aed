//! `email-model`: what the mirror looks like in the database, and every write made to it.
//!
//! It owns the domain types (users, mailboxes, folders, emails, memberships, notification
//! outbox), the identity rules that decide when two messages are the same email, the schema and
//! its migrations for PostgreSQL and SQLite, the encryption of stored secrets, and the stores
//! that read and write them.
//!
//! Architecture invariant: this crate depends on no other crate of the workspace. It knows no
//! IMAP: a host application can read the mirror through it without linking an IMAP client.

mod error;
pub mod identity;
pub mod migrate;
mod model;
pub mod rules;
pub mod schema;
pub mod secrets;
mod store;

pub use error::{Result, StoreError};
pub use model::*;
#[cfg(feature = "mock")]
pub use store::MockStore;
pub use store::{PgStore, SqliteStore, Store, StoreOptions};
