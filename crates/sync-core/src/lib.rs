//! `sync-core`: the synchronizer and the IMAP processor that keep the mirror in step with the
//! server.
//!
//! It owns the sync policy: which mailboxes are due, leases, time budgets, back-off, first-sync
//! windows, incremental sync and crash-safe resume points.
//!
//! Architecture invariant: it reaches the server, the database and the notification channels
//! only through traits whose implementations live in `imap-connector`, `email-model` and
//! `notify`; it never depends on `sync-bin`.
