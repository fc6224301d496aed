//! How often and how hard the synchronizer works.

use std::time::Duration;

/// Settings of the synchronizer; the defaults follow the seed (every 30 minutes).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// A mailbox is due when its last success is older than this.
    pub interval: Duration,
    /// Slack on `interval`, so that a jittered timer does not skip a mailbox by a second.
    pub due_tolerance: Duration,
    /// The most one mailbox may take in one run.
    pub mailbox_budget: Duration,
    /// The most a whole run may take; mailboxes not reached wait for the next run.
    pub run_budget: Duration,
    /// How long a claimed lease lasts; renewed after every committed batch.
    pub lease: Duration,
    /// Back-off after the first failure; doubles with each failure up to `backoff_cap`.
    pub backoff_base: Duration,
    /// Longest back-off (providers lock accounts that retry every few minutes).
    pub backoff_cap: Duration,
    /// Messages per batch (one transaction each).
    pub batch_size: usize,
    /// A UID the server keeps not returning is reported and dropped after this many attempts.
    pub max_retry_attempts: i32,
    /// Who holds the leases: unique per process.
    pub worker_id: String,
    /// Mailboxes synced at the same time by one run (each on its own connection).
    pub max_concurrent: usize,
    /// Connections re-established within one mailbox's sync after a lost link.
    pub max_reconnects: u32,
    /// Pause before the first reconnect; doubles with each, up to 10 s.
    pub reconnect_pause: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30 * 60),
            due_tolerance: Duration::from_secs(60),
            mailbox_budget: Duration::from_secs(10 * 60),
            run_budget: Duration::from_secs(55 * 60),
            lease: Duration::from_secs(5 * 60),
            backoff_base: Duration::from_secs(5 * 60),
            backoff_cap: Duration::from_secs(24 * 60 * 60),
            batch_size: 100,
            max_retry_attempts: 5,
            worker_id: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "imap-sync".to_owned()),
                std::process::id()
            ),
            max_concurrent: 1,
            max_reconnects: 5,
            reconnect_pause: Duration::from_millis(500),
        }
    }
}

impl SyncConfig {
    /// Pause before reconnect number `attempt` (1 = the first).
    pub fn reconnect_backoff(&self, attempt: u32) -> Duration {
        self.reconnect_pause
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(10)))
            .min(Duration::from_secs(10))
    }

    /// Back-off after `failures` consecutive failures (1 = the first).
    pub fn backoff(&self, failures: i32) -> Duration {
        let exponent = u32::try_from(failures.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.backoff_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = SyncConfig::default();
        assert_eq!(config.backoff(1), Duration::from_secs(300));
        assert_eq!(config.backoff(2), Duration::from_secs(600));
        assert_eq!(config.backoff(5), Duration::from_secs(4800));
        assert_eq!(config.backoff(40), Duration::from_secs(86_400));
        assert_eq!(config.reconnect_backoff(1), Duration::from_millis(500));
        assert_eq!(config.reconnect_backoff(3), Duration::from_secs(2));
        assert_eq!(config.reconnect_backoff(9), Duration::from_secs(10));
    }
}
