//! The IMAP processor: one mailbox's folders and mail, batch by batch.
//!
//! # Cursors
//! Each folder has two cursors, committed with every batch:
//! - `synced_up_to_uid`: every UID above it is new mail. The first batch of a first sync sets it
//!   to the top of the folder (UIDNEXT − 1), so mail arriving during a long first sync is new
//!   mail on the next run; later it moves up with each batch of new mail.
//! - `backfill_below_uid`: in-window mail below it is still to fetch. A first sync fetches
//!   newest first, and each batch moves this cursor down; it is cleared by the last batch.
//!
//! A crash between batches therefore resumes exactly: the backfill continues below the cursor,
//! new mail above the other, and a batch replayed changes nothing.
//!
//! # Window
//! The first sync of a folder takes mail received in the mailbox's window (`SINCE`, or
//! `SENTSINCE` for sent folders) and records the window's start. Afterwards every new UID is
//! imported whatever its date, and nothing is deleted for its age. Enlarging the window later
//! backfills the mail between the new start and the recorded one.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use email_model::{EmailBatch, FlagUpdate, Folder, FolderCursors, Mailbox, Store};
use imap_connector::{ConnectorError, Features, FetchParts, MailServer, SearchQuery};

use crate::config::SyncConfig;
use crate::convert::new_email;
use crate::error::{Result, SyncError};
use crate::progress::{ProgressEvent, ProgressSink};

/// What one mailbox's sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxReport {
    pub folders_synced: usize,
    pub emails_new: usize,
    pub emails_known: usize,
    /// Folders that failed without failing the mailbox (folder, error).
    pub folder_errors: Vec<(String, String)>,
    /// UIDs given up on after repeated empty FETCHes or refusals (folder, UID).
    pub reported_uids: Vec<(String, u32)>,
    /// Local flag changes dropped because the server changed the message (folder, UID, what
    /// and why): the server's flags won.
    pub local_changes_dropped: Vec<(String, u32, String)>,
    /// Messages the database refused this run (folder, UID, reason): set aside for a retry,
    /// the rest of the folder stored.
    pub message_failures: Vec<(String, u32, String)>,
    /// The mailbox's time budget ran out: the rest continues on the next run.
    pub budget_reached: bool,
    /// A shutdown stopped it between batches: the rest continues on the next run.
    pub stopped: bool,
    /// Bytes sent to and received from the server.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// IMAP commands sent.
    pub commands: u64,
    /// Synced messages whose flags changed on the server.
    pub flags_changed: usize,
    /// Messages that left a folder on the server (expunged or moved out).
    pub removed: usize,
    /// Where the time went.
    pub phases: PhaseTimes,
    /// Connections re-established after a lost link within the run.
    pub reconnects: usize,
}

impl MailboxReport {
    /// Messages the run has committed to the mirror so far, as one number that only grows.
    /// Work a new connection repeats (a folder synced again, the same flag changes read again)
    /// is no progress: a link that always breaks at the same point must not count as one that
    /// moves on.
    pub fn committed(&self) -> usize {
        self.emails_new + self.emails_known
    }
}

/// Time spent in each phase of a mailbox's sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Connecting, logging in, LIST and the folder merge.
    pub folders: Duration,
    /// SELECT (and ENABLE QRESYNC) of each folder.
    pub select: Duration,
    /// Pushing the host application's flag changes.
    pub local_changes: Duration,
    /// Flags and expunges since the last run.
    pub reconcile: Duration,
    /// UID SEARCH for the window, new mail and backfills.
    pub search: Duration,
    /// Waiting for FETCH results (the server and the parser).
    pub fetch: Duration,
    /// Committing batches and cursors.
    pub store: Duration,
}

impl PhaseTimes {
    /// The phases by name, for reports.
    pub fn named(&self) -> [(&'static str, Duration); 7] {
        [
            ("folders", self.folders),
            ("select", self.select),
            ("local_changes", self.local_changes),
            ("reconcile", self.reconcile),
            ("search", self.search),
            ("fetch", self.fetch),
            ("store", self.store),
        ]
    }
}

pub(crate) struct Processor<'a, S: Store, M: MailServer> {
    pub(crate) store: &'a S,
    pub(crate) server: &'a mut M,
    pub(crate) config: &'a SyncConfig,
    pub(crate) progress: &'a ProgressSink,
    pub(crate) mailbox: &'a Mailbox,
    pub(crate) deadline: Instant,
    pub(crate) report: MailboxReport,
    /// Re-check every synced message's flags and membership, whatever CONDSTORE says.
    pub(crate) force: bool,
    /// The highest MODSEQ seen in the folder being synced.
    pub(crate) latest_modseq: Option<u64>,
    /// Set on shutdown: the processor stops before its next batch.
    pub(crate) stop: &'a std::sync::atomic::AtomicBool,
    /// Messages per FETCH: the configured size, halved after each lost connection of the run.
    pub(crate) batch_size: usize,
}

/// The mail of `folder` in a window from `since` (and before `before`): by the date it was
/// sent for a sent folder (its messages were received when saved, not when sent), else by
/// arrival.
fn window_query(
    folder: &Folder,
    since: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
) -> SearchQuery {
    let (since, before) = (Some(since.date_naive()), before.map(|d| d.date_naive()));
    if folder.folder_type == "sent" {
        SearchQuery::new().sent(since, before)
    } else {
        SearchQuery::new().received(since, before)
    }
}

/// Errors that end the mailbox's sync rather than one folder's.
fn is_mailbox_level(error: &SyncError) -> bool {
    matches!(
        error,
        SyncError::Store(_)
            | SyncError::BudgetReached(_)
            | SyncError::Stopped
            | SyncError::NoCredentials
            | SyncError::Server(
                ConnectorError::InvalidCredentials { .. }
                    | ConnectorError::LoginRefused { .. }
                    | ConnectorError::Throttled { .. }
                    | ConnectorError::Connection { .. }
                    | ConnectorError::Timeout { .. }
                    | ConnectorError::Tls(_)
            )
    )
}

impl<S: Store, M: MailServer> Processor<'_, S, M> {
    /// Syncs the mailbox; what it committed is in `self.report` whatever the result.
    pub(crate) async fn run(&mut self) -> Result<()> {
        // Folders first: LIST is also where a refused login shows.
        let started = Instant::now();
        crate::folder_refresh::refresh_folders(self.store, &mut *self.server, self.mailbox.id)
            .await?;
        self.report.phases.folders += started.elapsed();
        let folders = self.store.folders(self.mailbox.id).await?;
        for folder in folders
            .iter()
            .filter(|f| f.sync_enabled && f.selectable && f.gone_since.is_none())
        {
            match self.sync_folder(folder).await {
                Ok(()) => self.report.folders_synced += 1,
                Err(SyncError::BudgetReached(_)) => {
                    self.report.budget_reached = true;
                    break;
                }
                Err(SyncError::Stopped) => {
                    self.report.stopped = true;
                    break;
                }
                Err(error) if is_mailbox_level(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(folder = %folder.full_name, %error, "folder sync failed");
                    self.report
                        .folder_errors
                        .push((folder.full_name.clone(), error.to_string()));
                }
            }
        }
        tracing::info!(
            new = self.report.emails_new,
            known = self.report.emails_known,
            folders = self.report.folders_synced,
            "mailbox synced"
        );
        Ok(())
    }

    /// The oldest date a first sync takes. The store bounds `first_sync_days`; the arithmetic is
    /// checked all the same (a row written by another program) and never goes before 1900, a
    /// date every server can parse in SINCE.
    fn window_start(&self) -> DateTime<Utc> {
        let earliest = DateTime::from_timestamp(-2_208_988_800, 0).unwrap_or(DateTime::UNIX_EPOCH);
        ChronoDuration::try_days(i64::from(self.mailbox.first_sync_days.max(1)))
            .and_then(|days| Utc::now().checked_sub_signed(days))
            .map_or(earliest, |start| start.max(earliest))
    }

    async fn sync_folder(&mut self, folder: &Folder) -> Result<()> {
        let span = tracing::info_span!("folder", name = %folder.full_name);
        let _entered = span.enter();
        // QRESYNC must be enabled before SELECT for VANISHED to come.
        let started = Instant::now();
        let features = Features::of(&self.server.capabilities().await?);
        let condstore = features.condstore;
        let qresync = features.qresync && self.server.enable_qresync().await?;
        let selected = self.server.select(&folder.full_name).await?;
        self.report.phases.select += started.elapsed();
        let uid_validity = selected.uid_validity;
        self.latest_modseq = selected.highest_modseq;
        let top = selected.uid_next.saturating_sub(1);
        let remapped;
        let folder = if let Some(known) = folder.uid_validity
            && known != uid_validity
        {
            self.remap(folder, uid_validity, top).await?;
            remapped = self
                .store
                .folders(self.mailbox.id)
                .await?
                .into_iter()
                .find(|f| f.id == folder.id)
                .ok_or_else(|| {
                    SyncError::Store(email_model::StoreError::NotFound(format!(
                        "folder {}",
                        folder.id
                    )))
                })?;
            &remapped
        } else {
            folder
        };
        let window_start = self.window_start();

        self.retry(folder, uid_validity).await?;

        let first_sync = folder.uid_validity.is_none() || folder.window_start.is_none();
        if first_sync {
            let mut uids = self
                .search(&window_query(folder, window_start, None))
                .await?;
            let top = top.max(uids.last().copied().unwrap_or(0));
            uids.reverse();
            let cursors = FolderCursors {
                synced_up_to_uid: Some(top),
                window_start: Some(window_start),
                ..FolderCursors::default()
            };
            self.backfill(folder, uid_validity, uids, cursors).await?;
        } else {
            // Local changes first: the reconciliation below then reads back the server's truth.
            let started = Instant::now();
            self.push_local_changes(folder, uid_validity, condstore)
                .await?;
            self.report.phases.local_changes += started.elapsed();
            let started = Instant::now();
            self.reconcile(folder, uid_validity, condstore, qresync)
                .await?;
            self.report.phases.reconcile += started.elapsed();
            // An interrupted backfill continues below its cursor.
            if let Some(below) = folder.backfill_below_uid.filter(|b| *b > 1) {
                let start = folder.window_start.unwrap_or(window_start);
                let mut uids = self
                    .search(&window_query(folder, start, None).uids(1, Some(below - 1)))
                    .await?;
                uids.retain(|uid| *uid < below);
                uids.reverse();
                self.backfill(folder, uid_validity, uids, FolderCursors::default())
                    .await?;
            }
            // An enlarged window backfills the difference; a shrunk one deletes nothing.
            if let Some(recorded) = folder.window_start
                && window_start
                    < recorded
                        .checked_sub_signed(ChronoDuration::days(1))
                        .unwrap_or(recorded)
            {
                let mut uids = self
                    .search(&window_query(folder, window_start, Some(recorded)))
                    .await?;
                let stored: HashSet<u32> = self
                    .store
                    .memberships(folder.id)
                    .await?
                    .into_iter()
                    .filter(|m| m.uid_validity == uid_validity)
                    .map(|m| m.uid)
                    .collect();
                uids.retain(|uid| !stored.contains(uid));
                uids.reverse();
                let cursors = FolderCursors {
                    window_start: Some(window_start),
                    ..FolderCursors::default()
                };
                self.fetch_in_batches(folder, uid_validity, uids, |_, last| {
                    if last {
                        cursors
                    } else {
                        FolderCursors::default()
                    }
                })
                .await?;
            }
            // New mail above the cursor, oldest first so the cursor can follow each batch.
            let above = folder.synced_up_to_uid;
            let started = Instant::now();
            let uids = self.server.uids_from(above + 1).await;
            self.report.phases.search += started.elapsed();
            let uids = uids?;
            self.fetch_in_batches(folder, uid_validity, uids, |batch, _| FolderCursors {
                synced_up_to_uid: batch.iter().max().copied(),
                ..FolderCursors::default()
            })
            .await?;
        }

        // The folder is in step: record what the server said about it.
        self.commit(
            folder,
            uid_validity,
            Vec::new(),
            FolderCursors {
                uid_next: Some(selected.uid_next),
                highest_modseq: self.latest_modseq,
                ..FolderCursors::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Newest first: each batch moves the backfill cursor down to its lowest UID; the last one
    /// clears it. `base` goes with every batch (the first sync's top and window).
    async fn backfill(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        uids: Vec<u32>,
        base: FolderCursors,
    ) -> Result<()> {
        if uids.is_empty() {
            return self
                .commit(
                    folder,
                    uid_validity,
                    Vec::new(),
                    FolderCursors {
                        backfill_below_uid: Some(None),
                        ..base
                    },
                )
                .await
                .map(|_| ());
        }
        self.fetch_in_batches(folder, uid_validity, uids, |batch, last| FolderCursors {
            backfill_below_uid: Some(if last {
                None
            } else {
                batch.iter().min().copied()
            }),
            ..base
        })
        .await
    }

    async fn fetch_in_batches(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        uids: Vec<u32>,
        cursors_for: impl Fn(&[u32], bool) -> FolderCursors,
    ) -> Result<()> {
        let total = uids.len();
        if total == 0 {
            return Ok(());
        }
        (self.progress)(&ProgressEvent::FolderStarted {
            mailbox_id: self.mailbox.id,
            folder: folder.full_name.clone(),
            to_fetch: total,
        });
        let batch_size = self.batch_size.max(1);
        let batches: Vec<&[u32]> = uids.chunks(batch_size).collect();
        let count = batches.len();
        let mut done = 0;
        // Fetched and parsed, waiting for its commit: batch k commits while batch k + 1 is
        // fetched, so the server and the database work at the same time. Commits stay in order,
        // one transaction each, so a crash still resumes exactly.
        let mut fetched: Option<(usize, Vec<email_model::NewEmail>, Vec<u32>)> = None;
        let mut next = 0;
        while next < count || fetched.is_some() {
            let stopping = self.stop.load(std::sync::atomic::Ordering::Relaxed);
            let fetch_next = next < count && Instant::now() < self.deadline && !stopping;
            let server = &mut *self.server;
            let store = self.store;
            let fetch = async {
                if !fetch_next {
                    return None;
                }
                let started = Instant::now();
                let result = server
                    .fetch_batch(batches[next], FetchParts::Full)
                    .await
                    .map(|(messages, missing)| {
                        let emails: Vec<email_model::NewEmail> =
                            messages.into_iter().map(new_email).collect();
                        (emails, missing)
                    });
                Some((result, started.elapsed()))
            };
            let commit = async {
                let (index, emails, missing) = fetched.take()?;
                let started = Instant::now();
                let batch = EmailBatch {
                    mailbox_id: self.mailbox.id,
                    folder_id: folder.id,
                    uid_validity,
                    emails,
                    cursors: cursors_for(batches[index], index + 1 == count),
                };
                let place = crate::isolate::BatchPlace::of(&batch);
                let result = store.store_batch(batch).await;
                Some((index, missing, place, result, started.elapsed()))
            };
            let (fetch_outcome, commit_outcome) = tokio::join!(fetch, commit);
            if let Some((index, missing, place, result, took)) = commit_outcome {
                let stored = match result {
                    Ok(report) => crate::isolate::Stored::from(report),
                    Err(refusal) if refusal.is_about_the_data() => {
                        crate::isolate::store_one_by_one(
                            self.store,
                            &mut *self.server,
                            place,
                            batches[index],
                            &refusal,
                        )
                        .await?
                    }
                    Err(error) => return Err(error.into()),
                };
                self.report.phases.store += took;
                self.report.emails_new += stored.report.new_emails;
                self.report.emails_known += stored.report.known_emails;
                self.set_aside(folder, uid_validity, stored.refused).await?;
                self.after_commit(folder, uid_validity, batches[index], missing)
                    .await?;
                done += batches[index].len();
                (self.progress)(&ProgressEvent::BatchCommitted {
                    mailbox_id: self.mailbox.id,
                    folder: folder.full_name.clone(),
                    uids: batches[index].to_vec(),
                    done,
                    total,
                });
            }
            match fetch_outcome {
                Some((result, took)) => {
                    let (emails, missing) = result?;
                    self.report.phases.fetch += took;
                    fetched = Some((next, emails, missing));
                    next += 1;
                }
                None if next < count && fetched.is_none() => {
                    return Err(if stopping {
                        SyncError::Stopped
                    } else {
                        SyncError::BudgetReached(self.config.mailbox_budget)
                    });
                }
                None => {}
            }
        }
        Ok(())
    }

    /// After a batch's commit: UIDs the server listed but did not return wait for a retry, and
    /// the lease is renewed (it lives as long as batches keep coming).
    async fn after_commit(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        batch: &[u32],
        missing: Vec<u32>,
    ) -> Result<()> {
        if !missing.is_empty() {
            tracing::info!(
                ?missing,
                requested = batch.len(),
                "UIDs listed by the server but not returned by FETCH: retried later"
            );
            self.store
                .record_retry_uids(
                    folder.id,
                    uid_validity,
                    missing,
                    "listed but not returned by FETCH".into(),
                )
                .await?;
        }
        let until = Utc::now()
            + ChronoDuration::from_std(self.config.lease).unwrap_or(ChronoDuration::minutes(5));
        self.store
            .acquire_lease(self.mailbox.id, self.config.worker_id.clone(), until)
            .await?;
        Ok(())
    }

    /// UID SEARCH, timed as the search phase.
    async fn search(&mut self, query: &SearchQuery) -> Result<Vec<u32>> {
        let started = Instant::now();
        let uids = self.server.search(query).await;
        self.report.phases.search += started.elapsed();
        Ok(uids?)
    }

    async fn commit(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        emails: Vec<email_model::NewEmail>,
        cursors: FolderCursors,
    ) -> Result<Vec<u32>> {
        let started = Instant::now();
        let uids: Vec<u32> = emails.iter().map(|e| e.uid).collect();
        let batch = EmailBatch {
            mailbox_id: self.mailbox.id,
            folder_id: folder.id,
            uid_validity,
            emails,
            cursors,
        };
        let place = crate::isolate::BatchPlace::of(&batch);
        let stored = match self.store.store_batch(batch).await {
            Ok(report) => crate::isolate::Stored::from(report),
            Err(refusal) if refusal.is_about_the_data() && !uids.is_empty() => {
                crate::isolate::store_one_by_one(
                    self.store,
                    &mut *self.server,
                    place,
                    &uids,
                    &refusal,
                )
                .await?
            }
            Err(error) => return Err(error.into()),
        };
        self.report.phases.store += started.elapsed();
        self.report.emails_new += stored.report.new_emails;
        self.report.emails_known += stored.report.known_emails;
        let refused: Vec<u32> = stored.refused.iter().map(|(uid, _)| *uid).collect();
        self.set_aside(folder, uid_validity, stored.refused).await?;
        Ok(refused)
    }

    /// Messages the database refused wait in `retry_uids` with the reason, and are reported.
    async fn set_aside(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        refused: Vec<(u32, String)>,
    ) -> Result<()> {
        for (uid, reason) in refused {
            self.store
                .record_retry_uids(
                    folder.id,
                    uid_validity,
                    vec![uid],
                    format!("refused by the database: {reason}"),
                )
                .await?;
            self.report
                .message_failures
                .push((folder.full_name.clone(), uid, reason));
        }
        Ok(())
    }

    /// Pushes the host application's flag changes with `+FLAGS`/`-FLAGS`, one flag at a time.
    /// Conflict rule: with CONDSTORE the change carries UNCHANGEDSINCE the MODSEQ it was based on,
    /// so when the server changed the message since, the server wins; without CONDSTORE the
    /// local change wins.
    async fn push_local_changes(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        condstore: bool,
    ) -> Result<()> {
        let pending = self.store.pending_flag_changes(folder.id).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let memberships: Vec<email_model::Membership> = self
            .store
            .memberships(folder.id)
            .await?
            .into_iter()
            .filter(|m| m.uid_validity == uid_validity)
            .collect();
        // Every copy of an email in this folder gets its changes.
        let mut copies: HashMap<i64, Vec<&email_model::Membership>> = HashMap::new();
        for membership in &memberships {
            copies
                .entry(membership.email_id)
                .or_default()
                .push(membership);
        }
        let done: Vec<i64> = pending.iter().map(|change| change.id).collect();
        let mut recorded = Vec::new();
        for (email_id, net) in crate::local_changes::net_changes(&pending) {
            let Some(copies) = copies.get(&email_id) else {
                continue;
            };
            let dropped =
                crate::local_changes::push(&mut *self.server, copies, &net, condstore).await?;
            for (uid, change, reason) in dropped {
                tracing::warn!(uid, %change, reason, "local flag change dropped: the server's flags win");
                self.report.local_changes_dropped.push((
                    folder.full_name.clone(),
                    uid,
                    format!("{change}: {reason}"),
                ));
                recorded.push(email_model::DroppedFlagChange {
                    folder_id: folder.id,
                    email_id,
                    uid,
                    change,
                    reason: reason.to_owned(),
                });
            }
        }
        self.store
            .settle_pending_flag_changes(done, recorded)
            .await?;
        Ok(())
    }

    /// Flags and expunges since the last run: CHANGEDSINCE (and VANISHED with QRESYNC) where the
    /// server has them; otherwise — and when forced — the UID list and the flags of every synced
    /// message, in chunks. Mail never synced (outside the window) is not looked at.
    async fn reconcile(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        condstore: bool,
        qresync: bool,
    ) -> Result<()> {
        let known_modseq = folder.highest_modseq.filter(|_| condstore && !self.force);
        let mut stored: Option<Vec<email_model::Membership>> = None;
        if let Some(modseq) = known_modseq {
            // The highest UID the mirror knows bounds the range: `*` could stop below a
            // vanished top message.
            let changes = self
                .server
                .changes_since(modseq, folder.synced_up_to_uid)
                .await?;
            let updates: Vec<FlagUpdate> = changes
                .changed
                .iter()
                .filter_map(|c| {
                    c.uid.map(|uid| FlagUpdate {
                        uid,
                        flags: c.flags.clone(),
                        modseq: c.modseq,
                    })
                })
                .collect();
            self.latest_modseq = self.latest_modseq.max(changes.highest_modseq);
            if !updates.is_empty() {
                // Counted by the store: a CHANGEDSINCE answer also lists mail not synced yet.
                self.report.flags_changed += self
                    .store
                    .update_flags(folder.id, uid_validity, updates, None)
                    .await?;
            }
            if qresync {
                if !changes.vanished.is_empty() {
                    self.report.removed += self
                        .store
                        .remove_uids(folder.id, uid_validity, changes.vanished)
                        .await?;
                }
                return Ok(());
            }
        } else {
            let memberships = self.memberships(folder.id, uid_validity).await?;
            let uids: Vec<u32> = memberships.iter().map(|m| m.uid).collect();
            let mut updates = Vec::new();
            for chunk in uids.chunks(1000) {
                for state in self.server.flags_of(chunk).await? {
                    let Some(uid) = state.uid else { continue };
                    let known = memberships
                        .binary_search_by_key(&uid, |m| m.uid)
                        .ok()
                        .map(|i| &memberships[i]);
                    let differs = known.is_some_and(|m| {
                        let mut a = m.flags.clone();
                        let mut b = state.flags.clone();
                        a.sort();
                        b.sort();
                        a != b
                    });
                    if differs {
                        updates.push(FlagUpdate {
                            uid,
                            flags: state.flags,
                            modseq: state.modseq,
                        });
                    }
                }
            }
            if !updates.is_empty() {
                // Counted by the store: a CHANGEDSINCE answer also lists mail not synced yet.
                self.report.flags_changed += self
                    .store
                    .update_flags(folder.id, uid_validity, updates, None)
                    .await?;
            }
            stored = Some(memberships);
        }
        // Expunges without QRESYNC: the synced UIDs the server no longer lists, compared range by
        // range so that neither list is held whole; a range whose UIDs all remain costs one
        // short SEARCH. Mail never synced (outside the window) is not looked at.
        let stored = match stored {
            Some(stored) => stored,
            None => self.memberships(folder.id, uid_validity).await?,
        };
        let mut gone = Vec::new();
        if !stored.is_empty() {
            self.server.noop().await?;
        }
        for chunk in stored.chunks(1000) {
            let (first, last) = (chunk[0].uid, chunk[chunk.len() - 1].uid);
            if first == 0 {
                continue;
            }
            let listed: HashSet<u32> = self
                .server
                .search(&SearchQuery::new().uids(first, Some(last)))
                .await?
                .into_iter()
                .filter(|uid| (first..=last).contains(uid))
                .collect();
            gone.extend(
                chunk
                    .iter()
                    .map(|m| m.uid)
                    .filter(|uid| !listed.contains(uid)),
            );
        }
        if !gone.is_empty() {
            self.report.removed += self
                .store
                .remove_uids(folder.id, uid_validity, gone)
                .await?;
        }
        Ok(())
    }

    async fn memberships(
        &mut self,
        folder_id: i64,
        uid_validity: u32,
    ) -> Result<Vec<email_model::Membership>> {
        let mut memberships: Vec<email_model::Membership> = self
            .store
            .memberships(folder_id)
            .await?
            .into_iter()
            .filter(|m| m.uid_validity == uid_validity)
            .collect();
        memberships.sort_by_key(|m| m.uid);
        Ok(memberships)
    }

    /// After a UIDVALIDITY change: reads UID and identity headers (no bodies) in batches,
    /// re-keys the known mail, and fetches only what the mailbox does not know — within the
    /// window, as a first sync would.
    async fn remap(&mut self, folder: &Folder, uid_validity: u32, top: u32) -> Result<()> {
        let window_start = folder.window_start.unwrap_or_else(|| self.window_start());
        let in_window: HashSet<u32> = self
            .search(&window_query(folder, window_start, None))
            .await?
            .into_iter()
            .collect();
        let uids = self.server.all_uids().await?;
        let mut pairs = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(self.config.batch_size.max(1) * 5) {
            let (messages, _) = self.server.fetch_batch(chunk, FetchParts::Headers).await?;
            pairs.extend(messages.into_iter().map(|m| {
                let (uid, flags, modseq) = (m.uid, m.flags.clone(), m.modseq);
                email_model::RemapItem {
                    uid,
                    keys: new_email(m).known_keys(),
                    flags,
                    modseq,
                    in_window: in_window.contains(&uid),
                }
            }));
        }
        // Mail to fetch (unknown in the window; ambiguous anywhere, so none is dropped from
        // the mirror) is recorded as due retries in the same transaction; the retry pass that
        // follows fetches it in batches.
        let report = self
            .store
            .remap_uid_validity(
                folder.id,
                uid_validity,
                pairs,
                FolderCursors {
                    synced_up_to_uid: Some(top),
                    backfill_below_uid: Some(None),
                    ..FolderCursors::default()
                },
            )
            .await?;
        tracing::warn!(
            folder = %folder.full_name,
            remapped = report.remapped,
            dropped = report.dropped,
            new = report.to_fetch.len(),
            ambiguous = report.ambiguous.len(),
            "UIDVALIDITY changed: memberships re-keyed by header key"
        );
        Ok(())
    }

    /// UIDs that came back empty before are asked for again; after too many attempts they
    /// are reported and dropped.
    async fn retry(&mut self, folder: &Folder, uid_validity: u32) -> Result<()> {
        let retries = self.store.retry_uids(folder.id, uid_validity).await?;
        if retries.is_empty() {
            return Ok(());
        }
        let uids: Vec<u32> = retries.iter().map(|r| r.uid).collect();
        let mut failed: Vec<u32> = Vec::new();
        // In batches, as any fetch: memory stays bounded after a large UIDVALIDITY change.
        for chunk in uids.chunks(self.batch_size.max(1)) {
            let (messages, missing) = self.server.fetch_batch(chunk, FetchParts::Full).await?;
            let refused = self
                .commit(
                    folder,
                    uid_validity,
                    messages.into_iter().map(new_email).collect(),
                    FolderCursors::default(),
                )
                .await?;
            let returned: Vec<u32> = chunk
                .iter()
                .copied()
                .filter(|uid| !missing.contains(uid) && !refused.contains(uid))
                .collect();
            self.store
                .clear_retry_uids(folder.id, uid_validity, returned)
                .await?;
            if !missing.is_empty() {
                self.store
                    .record_retry_uids(
                        folder.id,
                        uid_validity,
                        missing.clone(),
                        "listed but not returned by FETCH".into(),
                    )
                    .await?;
            }
            failed.extend(missing.into_iter().chain(refused));
        }
        let exhausted: Vec<u32> = retries
            .iter()
            .filter(|r| failed.contains(&r.uid) && r.attempts + 1 >= self.config.max_retry_attempts)
            .map(|r| r.uid)
            .collect();
        if !exhausted.is_empty() {
            tracing::warn!(
                ?exhausted,
                "these UIDs keep coming back empty or refused by the database: given up and reported"
            );
            self.store
                .clear_retry_uids(folder.id, uid_validity, exhausted.clone())
                .await?;
            self.report.reported_uids.extend(
                exhausted
                    .into_iter()
                    .map(|uid| (folder.full_name.clone(), uid)),
            );
        }
        Ok(())
    }
}
