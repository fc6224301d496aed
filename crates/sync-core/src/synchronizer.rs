//! The synchronizer: which mailboxes to sync, one at a time under a lease, and what their
//! outcome means (back-off, credential episodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use email_model::{Mailbox, Store, StoreError, SyncRunOutcome};
use futures::StreamExt;
use imap_connector::{ConnectorError, MailServer};

use crate::config::SyncConfig;
use crate::error::SyncError;
use crate::factory::ServerFactory;
use crate::processor::{MailboxReport, Processor};
use crate::progress::{ProgressEvent, ProgressSink, no_progress};

/// A mailbox's sync: its run id and report, or the run id, the error and what was committed
/// before it.
type Processed = Result<(i64, MailboxReport), (i64, SyncError, MailboxReport)>;

/// How one mailbox's turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxOutcome {
    pub mailbox_id: i64,
    pub status: OutcomeStatus,
    pub report: MailboxReport,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeStatus {
    Success,
    /// The server refused the credentials: an episode is open, the mailbox backs off long.
    InvalidCredentials(String),
    Failure(String),
    /// Not synced: another worker holds its lease.
    LeaseHeld,
    /// Not synced: not due yet, or in back-off (without force); due again at `due_at` (none
    /// when the mailbox is switched off or has no credentials).
    NotDue {
        due_at: Option<DateTime<Utc>>,
    },
    /// Not synced: the run's time budget ran out first.
    BudgetReached,
    NotFound,
}

/// Which mailboxes [`Synchronizer::sync_one`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Due by its interval and out of back-off.
    WhenDue,
    /// Out of back-off, whatever its interval.
    Now,
    /// Whatever its state; every synced message re-checked.
    Force,
}

/// Every mailbox's outcome in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub outcomes: Vec<MailboxOutcome>,
    /// The run budget ran out before every due mailbox had its turn.
    pub budget_reached: bool,
}

/// Syncs mailboxes through a store and a server factory.
pub struct Synchronizer<S: Store, F: ServerFactory> {
    store: S,
    factory: F,
    config: SyncConfig,
    progress: ProgressSink,
    stop: Arc<AtomicBool>,
}

impl<S: Store, F: ServerFactory> std::fmt::Debug for Synchronizer<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synchronizer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The delay a throttling server suggests ("Suggested Backoff Time: 299961 milliseconds").
fn suggested_delay(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let after = lower.split("backoff time:").nth(1)?;
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let value: u64 = digits.parse().ok()?;
    Some(if after.contains("millisecond") {
        Duration::from_millis(value)
    } else {
        Duration::from_secs(value)
    })
}

impl<S: Store, F: ServerFactory> Synchronizer<S, F> {
    pub fn new(store: S, factory: F, config: SyncConfig) -> Self {
        Self {
            store,
            factory,
            config,
            progress: no_progress(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops work when `stop` turns true: no new mailbox starts, and running ones stop after
    /// their current batch (committed, consistent) and release their leases.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Syncs one mailbox now, though its interval has not passed (new mail announced by IDLE,
    /// a "sync now" request): its back-off and leases are still respected.
    pub async fn sync_now(&self, id: i64) -> Result<MailboxOutcome, StoreError> {
        let run_deadline = Instant::now() + self.config.run_budget;
        self.sync_one(id, Mode::Now, run_deadline).await
    }

    /// Sends progress events to `progress`.
    pub fn with_progress(mut self, progress: ProgressSink) -> Self {
        self.progress = progress;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// Syncs every due mailbox within the run budget, `max_concurrent` at a time.
    pub async fn run_due(&self) -> Result<RunReport, StoreError> {
        let run_deadline = Instant::now() + self.config.run_budget;
        let run_started = Utc::now();
        let workers = (0..self.config.max_concurrent.max(1))
            .map(|_| self.claim_and_sync(run_deadline, run_started));
        let mut report = RunReport::default();
        for worker in futures::future::join_all(workers).await {
            let worker = worker?;
            report.outcomes.extend(worker.outcomes);
            report.budget_reached |= worker.budget_reached;
        }
        Ok(report)
    }

    /// One worker of [`Self::run_due`]: claims due mailboxes until none is left.
    async fn claim_and_sync(
        &self,
        run_deadline: Instant,
        run_started: DateTime<Utc>,
    ) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        loop {
            if Instant::now() >= run_deadline {
                report.budget_reached = true;
                break;
            }
            if self.stopping() {
                break;
            }
            // A mailbox synced during this run is not due again in it, whatever the interval
            // (0 would otherwise claim the same mailbox for ever).
            let due_before = (Utc::now() - self.due_age()).min(run_started);
            let Some(mailbox) = self
                .store
                .claim_due_mailbox(
                    self.config.worker_id.clone(),
                    self.lease_until(),
                    due_before,
                )
                .await?
            else {
                break;
            };
            report
                .outcomes
                .push(self.sync_claimed(mailbox, false, run_deadline).await);
        }
        Ok(report)
    }

    /// Syncs the given mailboxes (the manual command). Without `force`, a mailbox that is not
    /// due or is in back-off is skipped; with it, both are ignored. A lease held by another
    /// worker is always respected.
    pub async fn sync_mailboxes(&self, ids: &[i64], force: bool) -> Result<RunReport, StoreError> {
        let run_deadline = Instant::now() + self.config.run_budget;
        let outcomes: Vec<Result<MailboxOutcome, StoreError>> = futures::stream::iter(ids)
            .map(|&id| {
                let mode = if force { Mode::Force } else { Mode::WhenDue };
                self.sync_one(id, mode, run_deadline)
            })
            .buffered(self.config.max_concurrent.max(1))
            .collect()
            .await;
        let mut report = RunReport::default();
        for outcome in outcomes {
            let outcome = outcome?;
            report.budget_reached |= outcome.status == OutcomeStatus::BudgetReached;
            report.outcomes.push(outcome);
        }
        Ok(report)
    }

    async fn sync_one(
        &self,
        id: i64,
        mode: Mode,
        run_deadline: Instant,
    ) -> Result<MailboxOutcome, StoreError> {
        let skipped = |status| MailboxOutcome {
            mailbox_id: id,
            status,
            report: MailboxReport::default(),
            duration: Duration::ZERO,
        };
        if Instant::now() >= run_deadline || self.stopping() {
            return Ok(skipped(OutcomeStatus::BudgetReached));
        }
        let Some(mailbox) = self.store.mailbox(id).await? else {
            return Ok(skipped(OutcomeStatus::NotFound));
        };
        let due = match mode {
            Mode::WhenDue => self.is_due(&mailbox),
            Mode::Now => self.is_syncable_now(&mailbox),
            Mode::Force => true,
        };
        if !due {
            return Ok(skipped(OutcomeStatus::NotDue {
                due_at: self.due_at(&mailbox),
            }));
        }
        if !self
            .store
            .acquire_lease(id, self.config.worker_id.clone(), self.lease_until())
            .await?
        {
            return Ok(skipped(OutcomeStatus::LeaseHeld));
        }
        Ok(self
            .sync_claimed(mailbox, mode == Mode::Force, run_deadline)
            .await)
    }

    /// After the user changed a mailbox's settings: its folders are synced at once (listed and
    /// merged); its mail follows at the next scheduled run.
    pub async fn settings_changed(&self, mailbox_id: i64) -> Result<OutcomeStatus, SyncError> {
        let Some(mailbox) = self.store.mailbox(mailbox_id).await? else {
            return Ok(OutcomeStatus::NotFound);
        };
        if !self
            .store
            .acquire_lease(
                mailbox_id,
                self.config.worker_id.clone(),
                self.lease_until(),
            )
            .await?
        {
            return Ok(OutcomeStatus::LeaseHeld);
        }
        let result = async {
            let secret = self
                .store
                .mailbox_secret(mailbox_id)
                .await?
                .ok_or(SyncError::NoCredentials)?;
            let mut server = self.factory.server_for(&mailbox, secret);
            let refreshed =
                crate::folder_refresh::refresh_folders(&self.store, &mut server, mailbox_id).await;
            let _ = server.logout().await;
            self.keep_rotated_secret(mailbox_id).await;
            refreshed
        }
        .await;
        self.store
            .release_lease(mailbox_id, self.config.worker_id.clone())
            .await?;
        result.map(|()| OutcomeStatus::Success)
    }

    /// Stores the mailbox's new secret when its last session rotated an OAuth2 refresh token.
    pub async fn keep_rotated_secret(&self, mailbox_id: i64) {
        if let Some(secret) = self.factory.take_rotated_secret(mailbox_id)
            && let Err(error) = self.store.replace_mailbox_secret(mailbox_id, secret).await
        {
            tracing::error!(%error, mailbox = mailbox_id, "could not store the rotated refresh token");
        }
    }

    fn due_age(&self) -> ChronoDuration {
        let age = self
            .config
            .interval
            .saturating_sub(self.config.due_tolerance);
        ChronoDuration::from_std(age).unwrap_or(ChronoDuration::zero())
    }

    fn lease_until(&self) -> chrono::DateTime<Utc> {
        Utc::now()
            + ChronoDuration::from_std(self.config.lease).unwrap_or(ChronoDuration::minutes(5))
    }

    /// When a mailbox that is not due becomes due: the later of its back-off's end and one
    /// interval after its last success.
    fn due_at(&self, mailbox: &Mailbox) -> Option<DateTime<Utc>> {
        if !(mailbox.active && mailbox.sync_enabled && mailbox.has_secret) {
            return None;
        }
        let stale_at = mailbox.last_success_at.map(|at| at + self.due_age());
        match (mailbox.backoff_until, stale_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Switched on, with credentials, out of back-off: what [`Self::sync_now`] asks.
    fn is_syncable_now(&self, mailbox: &Mailbox) -> bool {
        let now = Utc::now();
        mailbox.active
            && mailbox.sync_enabled
            && mailbox.has_secret
            && mailbox.backoff_until.is_none_or(|until| until <= now)
    }

    fn is_due(&self, mailbox: &Mailbox) -> bool {
        let now = Utc::now();
        let out_of_backoff = mailbox.backoff_until.is_none_or(|until| until <= now);
        let stale = mailbox
            .last_success_at
            .is_none_or(|at| at <= now - self.due_age());
        mailbox.active && mailbox.sync_enabled && mailbox.has_secret && out_of_backoff && stale
    }

    /// Runs a claimed mailbox and records its outcome; never fails the run.
    async fn sync_claimed(
        &self,
        mailbox: Mailbox,
        force: bool,
        run_deadline: Instant,
    ) -> MailboxOutcome {
        let id = mailbox.id;
        let mut outcome = self.sync_claimed_once(mailbox, force, run_deadline).await;
        // A "sync now" made while this sync ran is answered before the lease goes (twice at
        // most: a stream of requests does not keep one mailbox for ever).
        for _ in 0..2 {
            if outcome.status != OutcomeStatus::Success
                || Instant::now() >= run_deadline
                || self.stopping()
            {
                break;
            }
            match self.store.mailbox(id).await {
                Ok(Some(mailbox)) if mailbox.sync_requested_at.is_some() => {
                    outcome = self.sync_claimed_once(mailbox, force, run_deadline).await;
                }
                _ => break,
            }
        }
        if let Err(error) = self
            .store
            .release_lease(id, self.config.worker_id.clone())
            .await
        {
            tracing::error!(%error, "could not release the lease (it will expire)");
        }
        outcome
    }

    /// One sync of a claimed mailbox, its outcome recorded; the lease stays.
    async fn sync_claimed_once(
        &self,
        mailbox: Mailbox,
        force: bool,
        run_deadline: Instant,
    ) -> MailboxOutcome {
        let span = tracing::info_span!("mailbox", id = mailbox.id, email = %mailbox.email);
        let _entered = span.enter();
        let started = Instant::now();
        (self.progress)(&ProgressEvent::MailboxStarted {
            mailbox_id: mailbox.id,
        });
        let run_started = Utc::now();
        // This sync answers every "sync now" made before it started.
        if let Err(error) = self.store.clear_sync_request(mailbox.id, run_started).await {
            tracing::warn!(%error, "could not clear the sync request");
        }
        // The lease lives while the sync does: renewed every third of its length, whatever
        // one batch or one reconnect pause takes; a killed process's lease expires soon.
        let heartbeat = async {
            let every = (self.config.lease / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                if let Err(error) = self
                    .store
                    .acquire_lease(
                        mailbox.id,
                        self.config.worker_id.clone(),
                        self.lease_until(),
                    )
                    .await
                {
                    tracing::warn!(%error, "could not renew the lease");
                }
            }
        };
        let result = tokio::select! {
            result = self.process(&mailbox, force, run_deadline) => result,
            () = heartbeat => unreachable!("the heartbeat never ends"),
        };
        let (status, report, outcome) = self.judge(&mailbox, result).await;
        if status == OutcomeStatus::Success {
            // Grace period of emails left in no folder: the end of the mailbox's next
            // successful sync after they were orphaned, and at least one hour.
            let cutoff = run_started.min(Utc::now() - ChronoDuration::hours(1));
            match self.store.purge_orphans(mailbox.id, cutoff).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(
                    purged,
                    "emails left in no folder deleted after their grace period"
                ),
                Err(error) => tracing::error!(%error, "could not purge orphaned emails"),
            }
        }
        if let Err(error) = self.record(&mailbox, outcome).await {
            tracing::error!(%error, "could not record the outcome");
        }
        (self.progress)(&ProgressEvent::MailboxFinished {
            mailbox_id: mailbox.id,
            success: status == OutcomeStatus::Success,
        });
        MailboxOutcome {
            mailbox_id: mailbox.id,
            status,
            report,
            duration: started.elapsed(),
        }
    }

    async fn process(&self, mailbox: &Mailbox, force: bool, run_deadline: Instant) -> Processed {
        let run = self
            .store
            .start_sync_run(mailbox.id)
            .await
            .map_err(|e| (0, e.into(), MailboxReport::default()))?;
        let secret = match self.store.mailbox_secret(mailbox.id).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Err((run, SyncError::NoCredentials, MailboxReport::default())),
            Err(error) => return Err((run, error.into(), MailboxReport::default())),
        };
        let mut report = MailboxReport::default();
        let mut batch_size = self.config.batch_size.max(1);
        // The processor stops between batches at its deadline; the hard limit only catches a
        // server that stalls inside one command beyond its own timeouts.
        let deadline = (Instant::now() + self.config.mailbox_budget).min(run_deadline);
        let hard_limit = self.config.mailbox_budget + Duration::from_secs(120);
        // Reconnects in a row without anything committed in between: a link that carries
        // something each time converges however often it is cut; one that carries nothing gives up.
        let mut reconnects = 0;
        let result = loop {
            let committed_before = report.committed();
            let mut server = self.factory.server_for(mailbox, secret.clone());
            let mut processor = Processor {
                store: &self.store,
                server: &mut server,
                config: &self.config,
                progress: &self.progress,
                mailbox,
                // The mailbox's budget, cut short by the run's.
                deadline,
                report: std::mem::take(&mut report),
                force,
                latest_modseq: None,
                stop: &self.stop,
                batch_size,
            };
            let mailbox_id = mailbox.id;
            let contained = crate::supervise::catch_panic(async {
                crate::supervise::failpoint_mailbox(mailbox_id);
                processor.run().await
            });
            let result = match tokio::time::timeout(hard_limit, contained).await {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => {
                    tracing::error!(panic = %panic, "the mailbox's sync panicked; recorded as its failure");
                    Err(SyncError::Panicked(panic))
                }
                Err(_) => Err(SyncError::BudgetReached(self.config.mailbox_budget)),
            };
            report = processor.report;
            let (sent, received) = server.wire_bytes();
            report.bytes_sent += sent;
            report.bytes_received += received;
            report.commands += server.commands_sent();
            let _ = server.logout().await;
            self.keep_rotated_secret(mailbox.id).await;
            if report.committed() > committed_before {
                reconnects = 0;
            }
            match result {
                // A lost link: reconnect and resume from the committed cursors, with smaller
                // batches (a batch bigger than what the link carries would never pass).
                // (Only a link that carried something: a server that refuses connections is
                // down, not flaky, and fails the run at once.)
                Err(error)
                    if error.is_lost_link()
                        && received > 0
                        && reconnects < self.config.max_reconnects
                        && Instant::now() < deadline
                        && !self.stopping() =>
                {
                    reconnects += 1;
                    report.reconnects += 1;
                    batch_size = (batch_size / 2).max(1);
                    let pause = self.config.reconnect_backoff(reconnects);
                    tracing::warn!(%error, reconnects, batch_size, ?pause, "connection lost; reconnecting");
                    tokio::time::sleep(pause).await;
                }
                other => break other,
            }
        };
        result
            .map(|()| (run, report.clone()))
            .map_err(|error| (run, error, report))
    }

    /// Turns a result into a status, a report and what to record.
    async fn judge(
        &self,
        mailbox: &Mailbox,
        result: Processed,
    ) -> (OutcomeStatus, MailboxReport, (i64, SyncRunOutcome)) {
        match result {
            Ok((run, report)) => {
                if let Err(error) = self.store.close_credential_episode(mailbox.id).await {
                    tracing::error!(%error, "could not close the credential episode");
                }
                let message = if report.stopped {
                    Some("stopped for shutdown; the rest continues on the next run".to_owned())
                } else {
                    report.budget_reached.then(|| {
                        "time budget reached; the rest continues on the next run".to_owned()
                    })
                };
                let outcome = SyncRunOutcome {
                    success: true,
                    message,
                    emails_new: report.emails_new as i64,
                    emails_changed: report.emails_known as i64,
                    partial: report.stopped || report.budget_reached,
                    ..SyncRunOutcome::default()
                };
                (OutcomeStatus::Success, report, (run, outcome))
            }
            Err((run, error, report)) => {
                let failures = mailbox.consecutive_failures + 1;
                let message = error.to_string();
                let (status, backoff) = if error.is_invalid_credentials() {
                    match self
                        .store
                        .open_credential_episode(mailbox.id, message.clone())
                        .await
                    {
                        Ok(opened) if opened.is_new => {
                            tracing::warn!(recipients = ?opened.recipients, "credentials refused: episode opened");
                        }
                        Ok(_) => tracing::info!("credentials still refused"),
                        Err(store_error) => {
                            tracing::error!(%store_error, "could not open the credential episode");
                        }
                    }
                    (
                        OutcomeStatus::InvalidCredentials(message.clone()),
                        self.config.backoff(failures),
                    )
                } else {
                    let suggested = match &error {
                        SyncError::Server(ConnectorError::Throttled { message }) => {
                            suggested_delay(message)
                        }
                        _ => None,
                    };
                    // Not the user's fault: retried sooner, at the latest after one interval.
                    let backoff = suggested
                        .unwrap_or_else(|| self.config.backoff(failures).min(self.config.interval));
                    tracing::warn!(%error, ?backoff, "mailbox sync failed");
                    (OutcomeStatus::Failure(message.clone()), backoff)
                };
                // What was committed before the failure counts: it is in the mirror.
                let outcome = SyncRunOutcome {
                    success: false,
                    message: Some(message),
                    emails_new: report.emails_new as i64,
                    emails_changed: report.emails_known as i64,
                    backoff_until: Some(
                        Utc::now()
                            + ChronoDuration::from_std(backoff).unwrap_or(ChronoDuration::hours(1)),
                    ),
                    ..SyncRunOutcome::default()
                };
                (status, report, (run, outcome))
            }
        }
    }

    async fn record(
        &self,
        _mailbox: &Mailbox,
        (run, outcome): (i64, SyncRunOutcome),
    ) -> Result<(), StoreError> {
        if run == 0 {
            return Ok(());
        }
        self.store.finish_sync_run(run, outcome).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_delays_are_read_from_the_message() {
        assert_eq!(
            suggested_delay("Request is throttled. Suggested Backoff Time: 299961 milliseconds"),
            Some(Duration::from_millis(299_961))
        );
        assert_eq!(suggested_delay("[THROTTLED] slow down"), None);
    }
}
