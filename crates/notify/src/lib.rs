//! `notify`: tells the right people when a mailbox's credentials stop working.
//!
//! It owns the notification channels (a notice shown at the next login, a real-time push, an
//! email) and the dispatcher that drains the notification outbox kept by `email-model`.
//!
//! Architecture invariant: among the workspace's crates this one depends only on `email-model`.
//! It never talks to an IMAP server and never decides when a sync runs.
