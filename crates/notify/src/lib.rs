//! `notify`: tells the right people when a mailbox's credentials stop working.
//!
//! It owns the notification channels — implementations of [`Notifier`] kept as a list of trait
//! objects — and the [`Dispatcher`] that drains the notification outbox kept by `email-model`,
//! at least once per channel, with back-off on failure. The login notice is not a channel: it
//! is read at login with [`login_notices`]. Texts live in `templates/`, not in code.
//!
//! Architecture invariant: among the workspace's crates this one depends only on `email-model`.
//! It never talks to an IMAP server and never decides when a sync runs.

mod dispatcher;
mod email;
mod push;
mod template;

use std::future::Future;
use std::pin::Pin;

pub use dispatcher::{DispatchReport, Dispatcher, DispatcherConfig};
pub use email::{EmailNotifier, SmtpSecurity, SmtpSettings};
pub use push::{
    PUSH_NOTIFY_CHANNEL, PushHub, PushNotifier, PushTokens, push_payload, websocket_routes,
};
pub use template::{Rendered, render_credential_failure};

/// Why a notice could not be delivered; it stays in the outbox and is tried again.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("delivery failed: {0}")]
    Delivery(String),
    #[error("delivery timed out")]
    Timeout,
    #[error(transparent)]
    Store(#[from] email_model::StoreError),
}

/// One way of telling a user (email, real-time push, …).
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The outbox channel this notifier serves (`email`, `push`).
    fn channel(&self) -> &'static str;
    /// Delivers one notice.
    fn deliver<'a>(
        &'a self,
        entry: &'a email_model::OutboxEntry,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;
}

/// The login notices (Oro's flash message) a user is to see now, each once. A host application
/// calls this right after the user logs in and shows what it returns.
pub async fn login_notices<S: email_model::Store>(
    store: &S,
    user_id: i64,
) -> Result<Vec<(email_model::LoginNotice, Rendered)>, NotifyError> {
    let notices = store.take_login_notices(user_id).await?;
    Ok(notices
        .into_iter()
        .map(|notice| {
            let rendered = render_credential_failure(
                &notice.mailbox_email,
                &notice.imap_user,
                &notice.imap_host,
                &notice.reason,
                notice.opened_at,
            );
            (notice, rendered)
        })
        .collect())
}
