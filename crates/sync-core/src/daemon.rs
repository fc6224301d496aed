//! The long-running service: scheduled runs of every due mailbox, plus an IDLE watcher per
//! mailbox that syncs within seconds of new mail.
//!
//! # Who syncs a mailbox
//! Leases decide, across processes. The scheduler claims due mailboxes whose lease is free. A
//! watcher takes a mailbox's lease under a holder name of its own, keeps it while it waits on
//! INBOX (renewing it before it expires), and syncs the mailbox itself when the server reports
//! a change or its interval passes; so a mailbox is synced by one task of one daemon at a time.
//! A daemon that dies leaves its leases to expire; another daemon's scheduler then claims the
//! mailboxes and its watchers take them over.
//!
//! # "Sync now"
//! Never refused: [`Daemon::request_sync`] records the request (`sync_requested_at`) and hands it
//! to whoever can act — this daemon's watcher of the mailbox breaks its IDLE and syncs; with no
//! watcher here a sync starts in the background; a holder in another process sees the request
//! at its next wake-up (a watcher checks every `request_check`; the scheduler claims a
//! requested mailbox whatever its interval).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use email_model::{Mailbox, Store};
use imap_connector::MailServer;
use tokio::sync::{Notify, Semaphore, watch};

use crate::config::SyncConfig;
use crate::factory::ServerFactory;
use crate::progress::ProgressSink;
use crate::synchronizer::{MailboxOutcome, OutcomeStatus, Synchronizer};

/// How the daemon works.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// How often the scheduler looks for due mailboxes (the sync interval is the mailboxes').
    pub tick: Duration,
    /// Up to this much is added to each tick, so that daemons started together spread out.
    pub jitter: Duration,
    /// Watch INBOX for new mail between runs.
    pub idle: bool,
    /// Most watcher connections to one IMAP server (providers limit connections per account
    /// and per address); mailboxes beyond it are synced on schedule only.
    pub max_idle_per_server: usize,
    /// Where a server has no IDLE: how often the watcher polls with NOOP.
    pub poll_interval: Duration,
    /// How often a watcher looks for a "sync now" made in another process.
    pub request_check: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(60),
            jitter: Duration::from_secs(10),
            idle: true,
            max_idle_per_server: 20,
            poll_interval: Duration::from_secs(120),
            request_check: Duration::from_secs(30),
        }
    }
}

/// What triggered a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    Schedule,
    Idle,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Idle => "idle",
            Self::Manual => "manual",
        }
    }
}

/// Counters for the metrics endpoint; updated as syncs finish.
#[derive(Debug, Default)]
pub struct DaemonCounters {
    runs: Mutex<HashMap<(Trigger, &'static str), u64>>,
    pub messages_new: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub folder_errors: AtomicU64,
    /// Messages the database refused (set aside for a retry).
    pub message_failures: AtomicU64,
    /// Local flag changes dropped because the server changed the message first.
    pub local_changes_dropped: AtomicU64,
    /// Watcher connections open now.
    pub idle_connections: AtomicI64,
    /// Long-running tasks restarted after a panic or an unexpected end, by task.
    restarts: Mutex<HashMap<&'static str, u64>>,
    /// When the scheduler last showed progress: started, finished a mailbox or a tick (Unix
    /// seconds; 0 before it started).
    scheduler_tick_at: AtomicI64,
    /// The scheduler panicked and waits for its restart.
    scheduler_down: AtomicBool,
}

impl DaemonCounters {
    /// Records a finished (or skipped) sync.
    pub fn record(&self, trigger: Trigger, outcome: &MailboxOutcome) {
        let status = match outcome.status {
            OutcomeStatus::Success => "success",
            OutcomeStatus::InvalidCredentials(_) => "invalid_credentials",
            OutcomeStatus::Failure(_) => "failure",
            OutcomeStatus::LeaseHeld
            | OutcomeStatus::NotDue { .. }
            | OutcomeStatus::BudgetReached
            | OutcomeStatus::NotFound => return,
        };
        *self
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((trigger, status))
            .or_insert(0) += 1;
        let report = &outcome.report;
        self.messages_new
            .fetch_add(report.emails_new as u64, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(report.bytes_received, Ordering::Relaxed);
        self.bytes_sent
            .fetch_add(report.bytes_sent, Ordering::Relaxed);
        self.folder_errors
            .fetch_add(report.folder_errors.len() as u64, Ordering::Relaxed);
        self.message_failures
            .fetch_add(report.message_failures.len() as u64, Ordering::Relaxed);
        self.local_changes_dropped
            .fetch_add(report.local_changes_dropped.len() as u64, Ordering::Relaxed);
    }

    /// Runs so far by trigger and status.
    pub fn runs(&self) -> Vec<(Trigger, &'static str, u64)> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = runs.iter().map(|(&(t, s), &n)| (t, s, n)).collect();
        list.sort_by_key(|(t, s, _)| (t.as_str(), *s));
        list
    }

    /// Counts a restart of `task` (`scheduler`, `watcher`, `dispatcher`, …).
    pub fn record_restart(&self, task: &'static str) {
        *self
            .restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(task)
            .or_insert(0) += 1;
    }

    /// Restarts so far by task, sorted by name.
    pub fn restarts(&self) -> Vec<(&'static str, u64)> {
        let restarts = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = restarts.iter().map(|(&t, &n)| (t, n)).collect();
        list.sort_unstable();
        list
    }

    /// Whether the scheduler is working: not waiting out a restart, and a tick finished within
    /// `stale_after` (a scheduler stuck for longer is as good as dead).
    pub fn scheduler_ready(&self, stale_after: Duration) -> Result<(), String> {
        if self.scheduler_down.load(Ordering::Relaxed) {
            return Err("the scheduler failed and is being restarted".to_owned());
        }
        let at = self.scheduler_tick_at.load(Ordering::Relaxed);
        let age = Utc::now().timestamp().saturating_sub(at);
        let limit = i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX);
        if at == 0 {
            return Err("the scheduler has not started yet".to_owned());
        }
        if age > limit {
            return Err(format!("the scheduler's last tick finished {age} s ago"));
        }
        Ok(())
    }

    /// Runs of one trigger, whatever their status.
    pub fn runs_by(&self, trigger: Trigger) -> u64 {
        self.runs()
            .into_iter()
            .filter(|(t, _, _)| *t == trigger)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// The daemon: build it, then [`Daemon::run`] until `stop` turns true.
pub struct Daemon<S: Store + Clone + 'static, F: ServerFactory + Clone + 'static> {
    store: S,
    factory: F,
    sync_config: SyncConfig,
    config: DaemonConfig,
    progress: ProgressSink,
    pub counters: Arc<DaemonCounters>,
    /// Shared by every synchronizer: set on shutdown.
    halt: Arc<AtomicBool>,
    watched: Arc<Mutex<HashSet<i64>>>,
    servers: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// This daemon's watchers, by mailbox: woken by a "sync now".
    wakers: Mutex<HashMap<i64, Arc<Notify>>>,
}

/// Who took a "sync now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncHandover {
    /// This daemon's watcher of the mailbox: it breaks its IDLE and syncs.
    Watcher,
    /// A sync started in the background in this daemon (or, when another process holds the
    /// mailbox, the request waits for that holder).
    Background,
}

impl SyncHandover {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watcher => "watcher",
            Self::Background => "background",
        }
    }
}

impl<S: Store + Clone + 'static, F: ServerFactory + Clone + 'static> std::fmt::Debug
    for Daemon<S, F>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, F> Daemon<S, F>
where
    S: Store + Clone + 'static,
    F: ServerFactory + Clone + 'static,
    F::Server: Send + 'static,
{
    pub fn new(
        store: S,
        factory: F,
        sync_config: SyncConfig,
        config: DaemonConfig,
        progress: ProgressSink,
    ) -> Self {
        Self {
            store,
            factory,
            sync_config,
            config,
            progress,
            counters: Arc::new(DaemonCounters::default()),
            halt: Arc::new(AtomicBool::new(false)),
            watched: Arc::new(Mutex::new(HashSet::new())),
            servers: Mutex::new(HashMap::new()),
            wakers: Mutex::new(HashMap::new()),
        }
    }

    /// A synchronizer holding leases as `holder`, stopping with the daemon.
    pub fn synchronizer(&self, holder: String) -> Synchronizer<S, F> {
        let config = SyncConfig {
            worker_id: holder,
            ..self.sync_config.clone()
        };
        Synchronizer::new(self.store.clone(), self.factory.clone(), config)
            .with_progress(self.progress.clone())
            .with_stop(self.halt.clone())
    }

    /// Ready when the scheduler is up and showed progress within three ticks plus one mailbox's
    /// longest sync; else why not.
    pub fn readiness(&self) -> Result<(), String> {
        let stale_after = (self.config.tick + self.config.jitter) * 3
            + self.sync_config.mailbox_budget
            + Duration::from_secs(120);
        self.counters.scheduler_ready(stale_after)
    }

    /// "Sync now": recorded, then handed to this daemon's watcher of the mailbox, or run in the
    /// background; returns at once with who took it and when it was asked. A lease held in
    /// another process leaves the request to its holder.
    pub async fn request_sync(
        self: &Arc<Self>,
        mailbox_id: i64,
    ) -> Result<(SyncHandover, chrono::DateTime<Utc>), email_model::StoreError> {
        let requested_at = self.store.request_sync(mailbox_id).await?;
        let waker = self
            .wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mailbox_id)
            .cloned();
        if let Some(waker) = waker {
            waker.notify_one();
            return Ok((SyncHandover::Watcher, requested_at));
        }
        let daemon = Arc::clone(self);
        tokio::spawn(async move {
            let holder = format!("{}/manual-{mailbox_id}", daemon.sync_config.worker_id);
            match daemon.synchronizer(holder).sync_now(mailbox_id).await {
                Ok(outcome) if outcome.status == OutcomeStatus::LeaseHeld => {
                    tracing::info!(mailbox = mailbox_id, "sync now: left to the lease's holder");
                }
                Ok(outcome) => daemon.counters.record(Trigger::Manual, &outcome),
                Err(error) => tracing::warn!(%error, mailbox = mailbox_id, "sync now"),
            }
        });
        Ok((SyncHandover::Background, requested_at))
    }

    /// Mailboxes with a watcher in this daemon now.
    pub fn watched(&self) -> Vec<i64> {
        let mut list: Vec<i64> = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        list.sort_unstable();
        list
    }

    /// Runs until `stop` turns true; then lets running syncs finish their current batch,
    /// releases every lease and returns.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        self.scheduler_up();
        // The scheduler's progress is its heartbeat: a long run of many mailboxes is alive.
        let heartbeat = {
            let counters = Arc::clone(&self.counters);
            let forward = self.progress.clone();
            Arc::new(move |event: &crate::progress::ProgressEvent| {
                if matches!(
                    event,
                    crate::progress::ProgressEvent::MailboxFinished { .. }
                ) {
                    counters
                        .scheduler_tick_at
                        .store(Utc::now().timestamp(), Ordering::Relaxed);
                }
                forward(event);
            })
        };
        let scheduler = self
            .synchronizer(self.sync_config.worker_id.clone())
            .with_progress(heartbeat);
        let mut watchers = tokio::task::JoinSet::new();
        let mut scheduler_restarts = 0u32;
        loop {
            if self.config.idle {
                self.start_watchers(&mut watchers, &stop).await;
            }
            // A scheduled run; cut short by shutdown between mailboxes and between batches. A
            // panic outside any one mailbox's sync (those are contained in the synchronizer)
            // ends the tick, not the daemon: the scheduler restarts after a back-off.
            let run = crate::supervise::catch_panic(async {
                crate::supervise::failpoint_scheduler();
                scheduler.run_due().await
            });
            tokio::pin!(run);
            let report = tokio::select! {
                report = &mut run => report,
                () = wait_stop(&mut stop) => {
                    self.halt.store(true, Ordering::Relaxed);
                    run.await
                }
            };
            let mut pause = self.config.tick + jitter(self.config.jitter);
            match report {
                Ok(Ok(report)) => {
                    for outcome in &report.outcomes {
                        self.counters.record(Trigger::Schedule, outcome);
                    }
                    self.scheduler_up();
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "scheduled run failed");
                    self.scheduler_up();
                }
                Err(panic) => {
                    scheduler_restarts = scheduler_restarts.saturating_add(1);
                    pause = crate::supervise::restart_backoff(scheduler_restarts);
                    tracing::error!(%panic, restart_in = ?pause, "the scheduler panicked; restarting it");
                    self.counters.scheduler_down.store(true, Ordering::Relaxed);
                    self.counters.record_restart("scheduler");
                }
            }
            self.reap_watchers(&mut watchers);
            if is_stopped(&stop) {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = wait_stop(&mut stop) => break,
            }
        }
        self.halt.store(true, Ordering::Relaxed);
        while let Some(joined) = watchers.join_next().await {
            self.count_watcher_end(joined);
        }
        tracing::info!("daemon stopped; leases released");
    }

    fn scheduler_up(&self) {
        self.counters.scheduler_down.store(false, Ordering::Relaxed);
        self.counters
            .scheduler_tick_at
            .store(Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// Collects the watchers that ended; one that panicked is counted (its mailbox gets a new
    /// watcher at the next tick, since the guard gave its slot back).
    fn reap_watchers(&self, watchers: &mut tokio::task::JoinSet<()>) {
        while let Some(joined) = watchers.try_join_next() {
            self.count_watcher_end(joined);
        }
    }

    fn count_watcher_end(&self, joined: Result<(), tokio::task::JoinError>) {
        if let Err(error) = joined
            && error.is_panic()
        {
            let panic = crate::supervise::panic_message(error.into_panic().as_ref());
            tracing::error!(%panic, "a watcher panicked; its mailbox is watched again from the next tick");
            self.counters.record_restart("watcher");
        }
    }

    /// Whether the synced INBOX on the server is ahead of the mirror's: another UIDVALIDITY or
    /// another UIDNEXT than the last sync recorded.
    async fn inbox_moved_on(
        &self,
        mailbox_id: i64,
        selected: &imap_connector::SelectedFolder,
    ) -> bool {
        let Ok(folders) = self.store.folders(mailbox_id).await else {
            return false;
        };
        let Some(inbox) = folders
            .iter()
            .find(|f| f.full_name.eq_ignore_ascii_case("INBOX") && f.sync_enabled)
        else {
            return false;
        };
        inbox.uid_validity != Some(selected.uid_validity)
            || inbox.uid_next != Some(selected.uid_next)
    }

    /// A "sync now" is waiting for this mailbox.
    async fn sync_requested(&self, mailbox_id: i64) -> bool {
        matches!(
            self.store.mailbox(mailbox_id).await,
            Ok(Some(mailbox)) if mailbox.sync_requested_at.is_some()
        )
    }

    async fn start_watchers(
        self: &Arc<Self>,
        watchers: &mut tokio::task::JoinSet<()>,
        stop: &watch::Receiver<bool>,
    ) {
        let mailboxes = match self.store.mailboxes().await {
            Ok(mailboxes) => mailboxes,
            Err(error) => {
                tracing::error!(%error, "listing mailboxes for watchers");
                return;
            }
        };
        let now = Utc::now();
        for mailbox in mailboxes {
            let eligible = mailbox.active
                && mailbox.sync_enabled
                && mailbox.has_secret
                && mailbox.backoff_until.is_none_or(|until| until <= now);
            // A mailbox never synced gets its first sync from the scheduler, in its own time.
            if !eligible || mailbox.last_success_at.is_none() {
                continue;
            }
            if !self
                .watched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(mailbox.id)
            {
                continue;
            }
            let daemon = Arc::clone(self);
            let stop = stop.clone();
            watchers.spawn(async move {
                // Gives the mailbox's slot back however the watcher ends, a panic included.
                let _slot = WatchedSlot {
                    watched: Arc::clone(&daemon.watched),
                    mailbox_id: mailbox.id,
                };
                daemon.watch(mailbox, stop).await;
            });
        }
    }

    fn server_permits(&self, host: &str) -> Arc<Semaphore> {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_idle_per_server)))
            .clone()
    }

    /// One mailbox's watcher: holds its lease, waits on INBOX, syncs on change or when due.
    async fn watch(&self, mailbox: Mailbox, mut stop: watch::Receiver<bool>) {
        let Ok(_permit) = self.server_permits(&mailbox.imap.host).try_acquire_owned() else {
            tracing::debug!(
                mailbox = mailbox.id,
                "watcher cap reached: synced on schedule"
            );
            return;
        };
        let holder = format!("{}/watch-{}", self.sync_config.worker_id, mailbox.id);
        let synchronizer = self.synchronizer(holder.clone());
        let waker = Arc::new(Notify::new());
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mailbox.id, Arc::clone(&waker));
        let lease = self.sync_config.lease;
        let renew_every = (lease / 3).max(Duration::from_secs(1));
        let interval = self
            .sync_config
            .interval
            .saturating_sub(self.sync_config.due_tolerance);
        // The scheduler skips a watched mailbox, so the watcher keeps its interval: counted from
        // its last success, an overdue mailbox is synced at once.
        let since_success = mailbox
            .last_success_at
            .and_then(|at| (Utc::now() - at).to_std().ok())
            .unwrap_or(interval);
        let mut next_due = tokio::time::Instant::now() + interval.saturating_sub(since_success);
        loop {
            if is_stopped(&stop) {
                break;
            }
            let until =
                Utc::now() + ChronoDuration::from_std(lease).unwrap_or(ChronoDuration::minutes(5));
            match self
                .store
                .acquire_lease(mailbox.id, holder.clone(), until)
                .await
            {
                Ok(true) => {}
                Ok(false) => break, // Someone else syncs it now; the next tick may try again.
                Err(error) => {
                    tracing::warn!(%error, mailbox = mailbox.id, "watcher lease");
                    break;
                }
            }
            let secret = match self.store.mailbox_secret(mailbox.id).await {
                Ok(Some(secret)) => secret,
                _ => break,
            };
            let mut server = self.factory.server_for(&mailbox, secret);
            let selected = match server.select("INBOX").await {
                Ok(selected) => selected,
                Err(error) => {
                    tracing::info!(%error, mailbox = mailbox.id, "watcher could not open INBOX");
                    let _ = server.logout().await;
                    synchronizer.keep_rotated_secret(mailbox.id).await;
                    break;
                }
            };
            self.counters
                .idle_connections
                .fetch_add(1, Ordering::Relaxed);
            // IDLE reports what changes from now on: mail that arrived since the last sync (before
            // this watcher started, or while it was syncing) is found by comparing the mirror's
            // INBOX with what SELECT says.
            let mut trigger = self
                .inbox_moved_on(mailbox.id, &selected)
                .await
                .then_some(Trigger::Idle);
            if trigger.is_none() && self.sync_requested(mailbox.id).await {
                trigger = Some(Trigger::Manual);
            }
            // Woken for a "sync now" while in IDLE: the session is dropped, not logged out (it
            // is mid-command); the sync opens its own.
            let mut abandoned = false;
            while trigger.is_none() && !is_stopped(&stop) {
                let due_in = next_due.saturating_duration_since(tokio::time::Instant::now());
                if due_in.is_zero() {
                    trigger = Some(Trigger::Schedule);
                    break;
                }
                let wait = due_in.min(renew_every).min(self.config.request_check);
                let waited = tokio::select! {
                    waited = server.wait_for_changes(wait, self.config.poll_interval, stop.clone()) => waited,
                    () = waker.notified() => {
                        tracing::info!(mailbox = mailbox.id, "sync now: the watcher syncs");
                        trigger = Some(Trigger::Manual);
                        abandoned = true;
                        break;
                    }
                };
                match waited {
                    Ok(outcome) if !outcome.events.is_empty() => {
                        tracing::info!(mailbox = mailbox.id, via = ?outcome.via, "change on the server: syncing");
                        trigger = Some(Trigger::Idle);
                    }
                    Ok(_) => {
                        let until = Utc::now()
                            + ChronoDuration::from_std(lease).unwrap_or(ChronoDuration::minutes(5));
                        match self
                            .store
                            .acquire_lease(mailbox.id, holder.clone(), until)
                            .await
                        {
                            Ok(true) => {}
                            _ => break,
                        }
                        // A "sync now" from another process.
                        if self.sync_requested(mailbox.id).await {
                            trigger = Some(Trigger::Manual);
                        }
                    }
                    Err(error) => {
                        tracing::info!(%error, mailbox = mailbox.id, "watcher connection lost");
                        break;
                    }
                }
            }
            if abandoned {
                drop(server);
            } else {
                let _ = server.logout().await;
            }
            synchronizer.keep_rotated_secret(mailbox.id).await;
            self.counters
                .idle_connections
                .fetch_sub(1, Ordering::Relaxed);
            let Some(trigger) = trigger else {
                break;
            };
            match synchronizer.sync_now(mailbox.id).await {
                Ok(outcome) => {
                    self.counters.record(trigger, &outcome);
                    next_due = tokio::time::Instant::now() + interval;
                    if !matches!(outcome.status, OutcomeStatus::Success) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, mailbox = mailbox.id, "watcher sync");
                    break;
                }
            }
        }
        let _ = stop.borrow_and_update();
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&mailbox.id);
        if let Err(error) = self.store.release_lease(mailbox.id, holder).await {
            tracing::warn!(%error, mailbox = mailbox.id, "releasing the watcher's lease");
        }
    }
}

/// A watcher's claim on its mailbox in [`Daemon::watched`], released on drop.
struct WatchedSlot {
    watched: Arc<Mutex<HashSet<i64>>>,
    mailbox_id: i64,
}

impl Drop for WatchedSlot {
    fn drop(&mut self) {
        self.watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.mailbox_id);
    }
}

/// A pseudo-random delay up to `max` (no need for a random-number crate here).
fn jitter(max: Duration) -> Duration {
    let nanos = u64::from(Utc::now().timestamp_subsec_nanos());
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(nanos % max_ms)
}

/// Reads the stop flag without holding its lock across an await.
fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Completes when the stop flag turns true (or its sender is gone).
async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
