//! Faults stay where they happen: a panic in one mailbox's sync is that mailbox's failure, and a
//! long-running task that panics or ends early is restarted with back-off and counted, so one
//! bad message, row or server never stops the service.
//!
//! Failpoints for the tests that prove it come from `IMAP_SYNC_FAILPOINTS` (read once; unset in
//! production): `mailbox-panic:ID` panics inside mailbox ID's sync, `scheduler-panic:N` panics
//! the scheduler's first N ticks.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `future`; a panic inside it comes back as `Err(message)`.
pub async fn catch_panic<T>(future: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(payload.as_ref()))
}

/// Back-off before restarting a task after its `restarts`-th failure: 2 s doubling to a minute.
pub fn restart_backoff(restarts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(restarts.clamp(1, 6)).min(60))
}

static FAILPOINTS: LazyLock<Vec<(String, i64)>> = LazyLock::new(|| {
    std::env::var("IMAP_SYNC_FAILPOINTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|point| {
            let (name, arg) = point.trim().split_once(':')?;
            Some((name.to_owned(), arg.parse().ok()?))
        })
        .collect()
});

static SCHEDULER_PANICS: AtomicI64 = AtomicI64::new(0);

/// Panics when the test failpoint `mailbox-panic:ID` names this mailbox.
pub(crate) fn failpoint_mailbox(mailbox_id: i64) {
    if FAILPOINTS
        .iter()
        .any(|(name, id)| name == "mailbox-panic" && *id == mailbox_id)
    {
        panic!("failpoint mailbox-panic:{mailbox_id}");
    }
}

/// Panics the scheduler's first N ticks under the test failpoint `scheduler-panic:N`.
pub(crate) fn failpoint_scheduler() {
    if let Some((_, times)) = FAILPOINTS
        .iter()
        .find(|(name, _)| name == "scheduler-panic")
        && SCHEDULER_PANICS.fetch_add(1, Ordering::Relaxed) < *times
    {
        panic!("failpoint scheduler-panic");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_comes_back_as_its_message() {
        let caught = catch_panic(async { panic!("boom {}", 7) }).await;
        assert_eq!(caught.err().as_deref(), Some("boom 7"));
        assert_eq!(catch_panic(async { 5 }).await.ok(), Some(5));
        assert_eq!(restart_backoff(1), Duration::from_secs(2));
        assert_eq!(restart_backoff(30), Duration::from_secs(60));
    }
}
