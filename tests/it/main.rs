//! The workspace's integration tests: one binary, one module per area, all against real
//! servers started by the rig (`test-support`).

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod chaos;
mod connector;
mod connector_changes;
mod connector_oauth;
mod flaky;
mod folder_identity;
mod hostile;
mod local_changes;
mod model_migrations;
mod model_store;
mod notify;
mod quirks;
mod rig;
mod sync;
mod sync_changes;
