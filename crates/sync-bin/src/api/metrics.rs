//! `/metrics`: Prometheus text.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use email_model::Store;

use super::{ApiResult, Shared};

pub(super) async fn metrics<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
) -> ApiResult {
    use std::fmt::Write as _;
    let counters = &state.daemon.counters;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP imap_sync_runs_total Mailbox syncs by trigger and outcome."
    );
    let _ = writeln!(out, "# TYPE imap_sync_runs_total counter");
    for (trigger, status, count) in counters.runs() {
        let _ = writeln!(
            out,
            "imap_sync_runs_total{{trigger=\"{}\",status=\"{status}\"}} {count}",
            trigger.as_str()
        );
    }
    for (name, help, value) in [
        (
            "imap_sync_messages_total",
            "New messages stored.",
            counters.messages_new.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_bytes_received_total",
            "Bytes received from IMAP servers.",
            counters.bytes_received.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_bytes_sent_total",
            "Bytes sent to IMAP servers.",
            counters.bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_local_changes_dropped_total",
            "Local flag changes dropped because the server changed the message first (the server's flags won).",
            counters.local_changes_dropped.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_message_failures_total",
            "Messages the database refused; set aside for a retry, the rest of their folder stored.",
            counters.message_failures.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_folder_errors_total",
            "Folders that failed within a mailbox's sync.",
            counters.folder_errors.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP imap_sync_imap_connections IDLE watcher connections open.\n# TYPE imap_sync_imap_connections gauge\nimap_sync_imap_connections {}",
        counters.idle_connections.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP imap_sync_task_restarts_total Long-running tasks restarted after a panic or an unexpected end.\n# TYPE imap_sync_task_restarts_total counter"
    );
    let restarts = counters.restarts();
    for task in ["scheduler", "watcher", "dispatcher"] {
        let count = restarts
            .iter()
            .find_map(|(name, count)| (*name == task).then_some(*count))
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "imap_sync_task_restarts_total{{task=\"{task}\"}} {count}"
        );
    }
    let now = chrono::Utc::now();
    let mailboxes = state.store.mailboxes().await?;
    let _ = writeln!(
        out,
        "# HELP imap_sync_lag_seconds Seconds since the mailbox's last successful sync.\n# TYPE imap_sync_lag_seconds gauge"
    );
    let mut backoffs = 0;
    let mut episodes = 0;
    for mailbox in &mailboxes {
        if let Some(at) = mailbox.last_success_at {
            let _ = writeln!(
                out,
                "imap_sync_lag_seconds{{mailbox=\"{}\"}} {}",
                mailbox.id,
                (now - at).num_seconds()
            );
        }
        if mailbox.backoff_until.is_some_and(|until| until > now) {
            backoffs += 1;
        }
        if state.store.open_episode(mailbox.id).await?.is_some() {
            episodes += 1;
        }
    }
    let _ = writeln!(
        out,
        "# HELP imap_sync_backoffs Mailboxes in back-off.\n# TYPE imap_sync_backoffs gauge\nimap_sync_backoffs {backoffs}"
    );
    let _ = writeln!(
        out,
        "# HELP imap_sync_open_credential_episodes Mailboxes whose credentials are refused.\n# TYPE imap_sync_open_credential_episodes gauge\nimap_sync_open_credential_episodes {episodes}"
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
