//! A flaky link (issue 16): a 2,000-message folder synced through a proxy that cuts every
//! connection after about 300 KB (±50 %) converges in **one** run, with an exact mirror, on both
//! backends; the run's counts equal the rows it stored. And a run syncs each mailbox once.

use std::time::Duration;

use sync_core::{OutcomeStatus, SyncConfig};
use test_support::{DovecotVariant, FlakyLink, LinkMode, MailGenerator, MailGeneratorConfig};

use crate::sync::{Backend, rig_through};
use crate::sync_changes::assert_mirror;

const MESSAGES: usize = 2_000;

/// The convergence figures, for the record (`--no-capture` shows them).
#[allow(clippy::print_stdout)]
fn report_figures(line: &str) {
    println!("{line}");
}

async fn a_folder_converges_in_one_run_through_a_cutting_link(backend: Backend) {
    let endpoint =
        test_support::shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let upstream = format!("{}:{}", endpoint.host, endpoint.plain_port)
        .parse()
        .unwrap();
    let link = FlakyLink::start(upstream, 16).await.unwrap();
    let rig = rig_through(backend, endpoint, "flaky-link", 365, link.port()).await;
    let mut raw = rig.raw().await;
    let messages: Vec<_> = MailGenerator::new(MailGeneratorConfig::over_days_before(
        1_600,
        chrono::Utc::now(),
        300,
    ))
    .take(MESSAGES)
    .collect();
    let items: Vec<test_support::AppendItem<'_>> = messages
        .iter()
        .map(|m| (m.flags.as_slice(), Some(m.internal_date), m.raw.as_slice()))
        .collect();
    raw.append_many("INBOX", &items).await.unwrap();
    let total_bytes: usize = messages.iter().map(|m| m.raw.len()).sum();

    link.set_mode(LinkMode::CutAfter {
        bytes: 300 * 1024,
        jitter_percent: 50,
    });
    let started = std::time::Instant::now();
    let outcome = rig
        .sync_outcome(SyncConfig {
            reconnect_pause: Duration::from_millis(20),
            ..SyncConfig::default()
        })
        .await;
    let took = started.elapsed();
    link.set_mode(LinkMode::Clean);
    assert_eq!(outcome.status, OutcomeStatus::Success, "{outcome:?}");
    assert!(
        outcome.report.reconnects > 0 && link.cuts() > 0,
        "the link was cut: {} cuts, {} reconnects",
        link.cuts(),
        outcome.report.reconnects
    );
    let ids = assert_mirror(&rig, &mut raw, &["INBOX"], "through the cutting link").await;
    assert_eq!(ids["INBOX"].len(), MESSAGES);
    assert_eq!(
        outcome.report.emails_new, MESSAGES,
        "the run's count is what it stored"
    );
    report_figures(&format!(
        "{backend:?}: {MESSAGES} messages ({} MB) through {} cuts: one run, {} reconnects, {:.1} s, {} MB received",
        total_bytes / 1_000_000,
        link.cuts(),
        outcome.report.reconnects,
        took.as_secs_f64(),
        outcome.report.bytes_received / 1_000_000
    ));
}

/// A run syncs each due mailbox at most once, whatever the interval: with 0 it used to claim
/// the same mailbox again and again and never return.
async fn one_run_syncs_each_mailbox_once_with_an_interval_of_zero(backend: Backend) {
    let endpoint =
        test_support::shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let rig = crate::sync::rig_on(backend, endpoint, "interval-zero", 365).await;
    let mut raw = rig.raw().await;
    crate::sync::seed(&mut raw, "INBOX", 161, 3, (1, 10)).await;
    let (second, login) = rig.add_mailbox("interval-zero-2").await;
    let mut other = test_support::RawImap::login_to(endpoint, &login)
        .await
        .unwrap();
    crate::sync::seed(&mut other, "INBOX", 162, 2, (1, 10)).await;
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        rig.run_due(SyncConfig {
            interval: Duration::ZERO,
            due_tolerance: Duration::ZERO,
            max_concurrent: 2,
            ..SyncConfig::default()
        }),
    )
    .await
    .expect("the run returns");
    let mut synced: Vec<(i64, usize)> = report
        .outcomes
        .iter()
        .map(|o| {
            assert_eq!(o.status, OutcomeStatus::Success, "{o:?}");
            (o.mailbox_id, o.report.emails_new)
        })
        .collect();
    synced.sort_unstable();
    assert_eq!(synced, [(rig.mailbox_id, 3), (second, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_run_syncs_each_mailbox_once_with_an_interval_of_zero() {
    one_run_syncs_each_mailbox_once_with_an_interval_of_zero(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_run_syncs_each_mailbox_once_with_an_interval_of_zero() {
    one_run_syncs_each_mailbox_once_with_an_interval_of_zero(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_folder_converges_in_one_run_through_a_cutting_link() {
    a_folder_converges_in_one_run_through_a_cutting_link(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_folder_converges_in_one_run_through_a_cutting_link() {
    a_folder_converges_in_one_run_through_a_cutting_link(Backend::Sqlite).await;
}
