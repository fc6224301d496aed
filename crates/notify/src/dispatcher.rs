//! The dispatcher: drains the outbox into the channels, at least once per notice.

use std::time::Duration;

use chrono::Utc;
use email_model::Store;

use crate::Notifier;

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Notices per drain.
    pub batch: i64,
    /// First retry after a failed delivery; doubles per attempt up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Limit for one delivery, whatever the channel does.
    pub delivery_timeout: Duration,
    /// One email reminder per recipient when an episode is still open this long after it
    /// opened; off (`None`) by default.
    pub reminder_after: Option<Duration>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(6 * 60 * 60),
            delivery_timeout: Duration::from_secs(30),
            reminder_after: None,
        }
    }
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: usize,
    pub failed: usize,
    /// Notices of a channel with no notifier configured (e.g. email without SMTP).
    pub no_channel: usize,
}

/// Hands outbox entries to the notifiers.
#[derive(Debug)]
pub struct Dispatcher<S: Store> {
    store: S,
    notifiers: Vec<Box<dyn Notifier>>,
    config: DispatcherConfig,
}

impl<S: Store> Dispatcher<S> {
    /// A channel without a notifier (email with no SMTP server) is said here, and warned about
    /// when a notice for it waits.
    pub fn new(store: S, notifiers: Vec<Box<dyn Notifier>>, config: DispatcherConfig) -> Self {
        for channel in email_model::OUTBOX_CHANNELS {
            if !notifiers.iter().any(|n| n.channel() == channel) {
                tracing::info!(
                    channel,
                    "notification channel off: its notices stay in the outbox"
                );
            }
        }
        Self {
            store,
            notifiers,
            config,
        }
    }

    /// Delivers what is due in the outbox now; failures wait their back-off. Never blocks longer
    /// than the delivery timeout per notice.
    pub async fn drain_once(&self) -> Result<DispatchReport, crate::NotifyError> {
        let mut report = DispatchReport::default();
        if let Some(delay) = self.config.reminder_after {
            let opened_before =
                Utc::now() - chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1));
            self.store.queue_reminders(opened_before).await?;
        }
        for entry in self
            .store
            .undelivered_notifications(self.config.batch)
            .await?
        {
            let Some(notifier) = self.notifiers.iter().find(|n| n.channel() == entry.channel)
            else {
                tracing::warn!(
                    channel = %entry.channel,
                    user = entry.user_id,
                    "a notice waits for a channel that is off (email needs an [smtp] section; push needs `imap-sync run`)"
                );
                report.no_channel += 1;
                continue;
            };
            let outcome =
                tokio::time::timeout(self.config.delivery_timeout, notifier.deliver(&entry)).await;
            match outcome {
                Ok(Ok(())) => {
                    self.store.mark_notification_delivered(entry.id).await?;
                    report.delivered += 1;
                }
                Ok(Err(error)) => self.failed(&entry, error.to_string(), &mut report).await?,
                Err(_) => {
                    self.failed(&entry, "delivery timed out".into(), &mut report)
                        .await?;
                }
            }
        }
        Ok(report)
    }

    /// Drains the outbox every `poll_interval` until `stop` completes (the daemon's loop; a
    /// one-shot sync calls [`Self::drain_once`] at the end of its run instead).
    pub async fn run(&self, poll_interval: Duration, stop: impl std::future::Future<Output = ()>) {
        self.run_with_wakeups(poll_interval, None, stop).await;
    }

    /// [`Self::run`], woken at once by `wakeups` (on PostgreSQL, `PgStore::listen` on
    /// `OUTBOX_NOTIFY_CHANNEL`, notified whenever notices are queued).
    pub async fn run_with_wakeups(
        &self,
        poll_interval: Duration,
        mut wakeups: Option<&mut tokio::sync::mpsc::UnboundedReceiver<String>>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.drain_once().await {
                tracing::error!(%error, "draining the notification outbox failed");
            }
            let woken = async {
                match wakeups.as_mut() {
                    Some(receiver) => {
                        if receiver.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(poll_interval) => {}
                () = woken => {}
                () = &mut stop => return,
            }
        }
    }

    async fn failed(
        &self,
        entry: &email_model::OutboxEntry,
        error: String,
        report: &mut DispatchReport,
    ) -> Result<(), crate::NotifyError> {
        let exponent = u32::try_from(entry.attempts).unwrap_or(0).min(16);
        let wait = self
            .config
            .backoff
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.config.max_backoff);
        tracing::warn!(id = entry.id, channel = %entry.channel, %error, ?wait, "notice not delivered; will retry");
        let retry_at =
            Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        self.store
            .mark_notification_failed(entry.id, error, retry_at)
            .await?;
        report.failed += 1;
        Ok(())
    }
}
