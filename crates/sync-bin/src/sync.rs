//! `imap-sync sync`: one run, its progress and its summary.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use email_model::Store;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sync_core::{
    MailboxOutcome, OutcomeStatus, ProgressEvent, ProgressSink, RunReport, SyncConfig, Synchronizer,
};

use crate::cli::SyncArgs;
use crate::settings::Settings;

/// Progress bars on a terminal (one per folder being fetched), plain lines on stderr otherwise.
fn progress_sink() -> ProgressSink {
    if std::io::stderr().is_terminal() {
        let bars = MultiProgress::new();
        let style =
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let open: Mutex<HashMap<(i64, String), ProgressBar>> = Mutex::new(HashMap::new());
        Arc::new(move |event| {
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                ProgressEvent::FolderStarted {
                    mailbox_id,
                    folder,
                    to_fetch,
                } => {
                    let bar = bars.add(ProgressBar::new(*to_fetch as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{mailbox_id}:{folder}"));
                    if let Some(previous) = open.insert((*mailbox_id, folder.clone()), bar) {
                        previous.finish();
                    }
                }
                ProgressEvent::BatchCommitted {
                    mailbox_id,
                    folder,
                    done,
                    ..
                } => {
                    if let Some(bar) = open.get(&(*mailbox_id, folder.clone())) {
                        bar.set_position(*done as u64);
                    }
                }
                ProgressEvent::MailboxFinished { mailbox_id, .. } => {
                    open.retain(|(mailbox, _), bar| {
                        if mailbox == mailbox_id {
                            bar.finish();
                        }
                        mailbox != mailbox_id
                    });
                }
                ProgressEvent::MailboxStarted { .. } => {}
            }
        })
    } else {
        Arc::new(|event| match event {
            ProgressEvent::MailboxStarted { mailbox_id } => {
                eprintln!("mailbox {mailbox_id}: syncing");
            }
            ProgressEvent::FolderStarted {
                mailbox_id,
                folder,
                to_fetch,
            } => eprintln!("mailbox {mailbox_id}: {folder}: {to_fetch} messages to fetch"),
            ProgressEvent::BatchCommitted {
                mailbox_id,
                folder,
                done,
                total,
                uids,
            } => {
                // About every tenth of the folder, and its end: enough to see it move.
                let step = (*total / 10).max(1);
                if done == total || (done / step) != ((done - uids.len().min(*done)) / step) {
                    eprintln!("mailbox {mailbox_id}: {folder}: {done}/{total}");
                }
            }
            ProgressEvent::MailboxFinished {
                mailbox_id,
                success,
            } => eprintln!(
                "mailbox {mailbox_id}: {}",
                if *success { "done" } else { "failed" }
            ),
        })
    }
}

fn status_text(status: &OutcomeStatus) -> String {
    match status {
        OutcomeStatus::Success => "ok".to_owned(),
        OutcomeStatus::InvalidCredentials(message) => format!("credentials refused: {message}"),
        OutcomeStatus::Failure(message) => format!("failed: {message}"),
        OutcomeStatus::LeaseHeld => {
            "not synced: another process holds it and did not sync it in time; run again later"
                .to_owned()
        }
        OutcomeStatus::NotDue { due_at: Some(at) } => format!(
            "skipped: not due until {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        OutcomeStatus::NotDue { due_at: None } => {
            "skipped: switched off or without credentials".to_owned()
        }
        OutcomeStatus::BudgetReached => "skipped: --max-exec-time reached".to_owned(),
        OutcomeStatus::NotFound => "no such mailbox".to_owned(),
    }
}

fn status_code(status: &OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Success => "success",
        OutcomeStatus::InvalidCredentials(_) => "invalid_credentials",
        OutcomeStatus::Failure(_) => "failure",
        OutcomeStatus::LeaseHeld => "lease_held",
        OutcomeStatus::NotDue { .. } => "not_due",
        OutcomeStatus::BudgetReached => "budget_reached",
        OutcomeStatus::NotFound => "not_found",
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

pub(crate) fn outcome_json(outcome: &MailboxOutcome) -> serde_json::Value {
    let report = &outcome.report;
    let phases: serde_json::Map<String, serde_json::Value> = report
        .phases
        .named()
        .into_iter()
        .map(|(name, duration)| (name.to_owned(), serde_json::json!(millis(duration))))
        .collect();
    serde_json::json!({
        "mailbox": outcome.mailbox_id,
        "status": status_code(&outcome.status),
        "message": status_text(&outcome.status),
        "due_at": match &outcome.status {
            OutcomeStatus::NotDue { due_at } => due_at.map(|d| d.to_rfc3339()),
            _ => None,
        },
        "folders": report.folders_synced,
        "new": report.emails_new,
        "changed": report.flags_changed,
        "moved": report.emails_known,
        "removed": report.removed,
        "errors": report.folder_errors.iter().map(|(folder, error)| serde_json::json!({"folder": folder, "error": error})).collect::<Vec<_>>(),
        "local_changes_dropped": report.local_changes_dropped.iter().map(|(folder, uid, why)| serde_json::json!({"folder": folder, "uid": uid, "reason": why})).collect::<Vec<_>>(),
        "message_failures": report.message_failures.iter().map(|(folder, uid, error)| serde_json::json!({"folder": folder, "uid": uid, "error": error})).collect::<Vec<_>>(),
        "given_up_uids": report.reported_uids.iter().map(|(folder, uid)| serde_json::json!({"folder": folder, "uid": uid})).collect::<Vec<_>>(),
        "budget_reached": report.budget_reached,
        "imap_commands": report.commands,
        "bytes_sent": report.bytes_sent,
        "bytes_received": report.bytes_received,
        "duration_ms": millis(outcome.duration),
        "phases_ms": phases,
    })
}

fn print_summary(report: &RunReport) {
    if report.outcomes.is_empty() {
        println!("no mailbox is due");
        return;
    }
    println!(
        "{:>7}  {:>7} {:>6} {:>7} {:>6} {:>7} {:>6} {:>8}  status",
        "mailbox", "folders", "new", "changed", "moved", "removed", "errors", "duration"
    );
    for outcome in &report.outcomes {
        let r = &outcome.report;
        println!(
            "{:>7}  {:>7} {:>6} {:>7} {:>6} {:>7} {:>6} {:>7.1}s  {}",
            outcome.mailbox_id,
            r.folders_synced,
            r.emails_new,
            r.flags_changed,
            r.emails_known,
            r.removed,
            r.folder_errors.len(),
            outcome.duration.as_secs_f64(),
            status_text(&outcome.status)
        );
        for (folder, error) in &r.folder_errors {
            println!("         folder {folder}: {error}");
        }
    }
    if report.budget_reached {
        println!("time budget reached: the rest continues on the next run");
    }
}

pub(crate) async fn run<S: Store + Clone + std::fmt::Debug + 'static>(
    store: S,
    settings: &Settings,
    args: SyncArgs,
) -> anyhow::Result<ExitCode> {
    let mut config = SyncConfig {
        interval: Duration::from_secs(settings.sync_interval_minutes * 60),
        max_concurrent: settings.max_concurrent,
        batch_size: settings.sync_batch_size.max(1),
        ..SyncConfig::default()
    };
    if let Some(n) = args.max_concurrent {
        config.max_concurrent = usize::from(n);
    }
    if let Some(limit) = args.max_exec_time {
        config.run_budget = limit;
    }
    // A short lease, renewed while the run works: after a kill -9 another run takes the
    // mailbox within a minute (sooner when `daemon.lease_seconds` is shorter).
    config.lease = CLI_LEASE.min(Duration::from_secs(settings.daemon.lease_seconds.max(2)));
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicI32::new(0));
    listen_for_signals(stop.clone(), interrupted.clone())?;
    let synchronizer = Synchronizer::new(store.clone(), crate::factory(settings), config)
        .with_progress(progress_sink())
        .with_stop(stop);
    let mut report = if args.mailboxes.is_empty() {
        synchronizer.run_due().await?
    } else {
        synchronizer
            .sync_mailboxes(&args.mailboxes, args.force)
            .await?
    };
    // A named mailbox another process holds (a daemon's watcher): asked of the holder, and
    // its sync's outcome waited for.
    let wait_limit = args.max_exec_time.unwrap_or(Duration::from_secs(600));
    for outcome in &mut report.outcomes {
        if outcome.status == OutcomeStatus::LeaseHeld && !interrupted_now(&interrupted) {
            *outcome = handed_to_holder(
                &synchronizer,
                outcome.mailbox_id,
                args.force,
                wait_limit,
                &interrupted,
            )
            .await?;
        }
    }
    // A cron-style deployment delivers too: the outbox is drained at the end of each run.
    let notifiers = settings.notifiers()?;
    let dispatched = notify::Dispatcher::new(store, notifiers, notify::DispatcherConfig::default())
        .drain_once()
        .await?;
    // A folder that failed fails the run too: the mailbox is only partly synced. So does a
    // named mailbox whose holder did not sync it within the wait.
    let failed = report.outcomes.iter().any(|o| {
        matches!(
            o.status,
            OutcomeStatus::Failure(_)
                | OutcomeStatus::InvalidCredentials(_)
                | OutcomeStatus::NotFound
                | OutcomeStatus::LeaseHeld
        ) || !o.report.folder_errors.is_empty()
    });
    if args.json {
        let rows: Vec<serde_json::Value> = report.outcomes.iter().map(outcome_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "mailboxes": rows,
                "budget_reached": report.budget_reached,
                "notices_delivered": dispatched.delivered,
            }))?
        );
    } else {
        print_summary(&report);
        if dispatched.delivered > 0 {
            println!("{} notice(s) delivered", dispatched.delivered);
        }
    }
    let signal = interrupted.load(Ordering::SeqCst);
    Ok(if signal != 0 {
        eprintln!(
            "interrupted: committed batches are kept, leases released; the rest continues on the next run"
        );
        // The shell's convention: 128 + the signal's number.
        ExitCode::from(u8::try_from(128 + signal).unwrap_or(1))
    } else if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn interrupted_now(interrupted: &AtomicI32) -> bool {
    interrupted.load(Ordering::SeqCst) != 0
}

/// Records a "sync now" for the holder of the mailbox's lease and waits for the sync that
/// answers it — or, once the lease is free (a killed holder's expires), syncs it here; still
/// held after `limit`, it stays "being synced by another process".
async fn handed_to_holder<S, F>(
    synchronizer: &Synchronizer<S, F>,
    mailbox_id: i64,
    force: bool,
    limit: Duration,
    interrupted: &AtomicI32,
) -> anyhow::Result<MailboxOutcome>
where
    S: Store + Clone + 'static,
    F: sync_core::ServerFactory,
{
    let store = synchronizer.store();
    let started = std::time::Instant::now();
    let requested_at = store.request_sync(mailbox_id).await?;
    eprintln!("mailbox {mailbox_id}: being synced by another process; asked it to sync now");
    let mut polls = 0u32;
    while started.elapsed() < limit && !interrupted_now(interrupted) {
        polls += 1;
        if polls.is_multiple_of(8) {
            let mut retried = synchronizer.sync_mailboxes(&[mailbox_id], force).await?;
            if let Some(outcome) = retried.outcomes.pop()
                && matches!(
                    outcome.status,
                    OutcomeStatus::Success
                        | OutcomeStatus::Failure(_)
                        | OutcomeStatus::InvalidCredentials(_)
                )
            {
                return Ok(outcome);
            }
        }
        let answered = store
            .sync_runs(mailbox_id, 5)
            .await?
            .into_iter()
            .find(|run| run.started_at >= requested_at && run.finished_at.is_some());
        if let Some(run) = answered {
            let report = sync_core::MailboxReport {
                emails_new: usize::try_from(run.emails_new).unwrap_or_default(),
                emails_known: usize::try_from(run.emails_changed).unwrap_or_default(),
                removed: usize::try_from(run.emails_removed).unwrap_or_default(),
                ..sync_core::MailboxReport::default()
            };
            let status = if run.outcome == "success" {
                OutcomeStatus::Success
            } else {
                OutcomeStatus::Failure(run.message.unwrap_or_default())
            };
            return Ok(MailboxOutcome {
                mailbox_id,
                status,
                report,
                duration: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(MailboxOutcome {
        mailbox_id,
        status: OutcomeStatus::LeaseHeld,
        report: sync_core::MailboxReport::default(),
        duration: started.elapsed(),
    })
}

/// The longest lease of a CLI run: renewed every third of it while the run works.
const CLI_LEASE: Duration = Duration::from_secs(60);

/// SIGINT and SIGTERM stop the run between batches (the leases are released on the way out);
/// a second one ends the process at once.
fn listen_for_signals(stop: Arc<AtomicBool>, interrupted: Arc<AtomicI32>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let number = tokio::select! {
                _ = terminate.recv() => 15,
                _ = interrupt.recv() => 2,
            };
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: exiting now");
                std::process::exit(128 + number);
            }
            interrupted.store(number, Ordering::SeqCst);
            eprintln!("stopping after the current batch (signal {number}); again to exit at once");
        }
    });
    Ok(())
}
