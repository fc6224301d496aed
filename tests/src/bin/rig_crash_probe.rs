//! Starts every server of the rig the way a test does, reports what it started on stdout, then
//! fails: with a panic (`panic`), or by waiting to be killed with SIGKILL (`wait-for-kill`).
//! The leftover test checks that nothing it started survives it.

#![allow(clippy::print_stdout)] // The report goes to the parent test through stdout.

use integration_tests::{ProbeReport, descendants, rig_fixture_migrations};
use test_support::{DovecotVariant, TestDatabase, TestSqlite, shared_dovecot};

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    for variant in [DovecotVariant::Full, DovecotVariant::Minimal] {
        assert!(
            std::env::var_os(variant.env_var()).is_none(),
            "the probe must start its own servers"
        );
        shared_dovecot(variant).expect("dovecot starts");
    }
    assert!(
        std::env::var_os(test_support::DATABASE_URL_VAR).is_none(),
        "the probe must start its own servers"
    );
    let database = TestDatabase::new(&rig_fixture_migrations("postgres"))
        .await
        .expect("postgres starts");
    let sqlite = TestSqlite::new(&rig_fixture_migrations("sqlite")).expect("sqlite file");
    let report = ProbeReport {
        descendant_pids: descendants(std::process::id()),
        rig_dirs: std::fs::read_dir(test_support::rig_tmp_root())
            .expect("rig root")
            .flatten()
            .map(|e| e.path())
            .collect(),
    };
    println!("{}", serde_json::to_string(&report).expect("report"));
    // Keep the per-test values alive across the failure, as a failing test would.
    let _keep = (&database, &sqlite);
    match mode.as_str() {
        "wait-for-kill" => loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        },
        _ => panic!("deliberate failure of the rig crash probe"),
    }
}
