//! What the sync-bin end-to-end tests share: a mirror on SQLite or PostgreSQL and the
//! `imap-sync` binary pointed at it.

#![allow(dead_code)] // Each test binary uses its own part.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use test_support::TestDatabase;

/// Where a test's `imap-sync` keeps its mirror.
pub(crate) enum Backend {
    Sqlite(PathBuf),
    Postgres(TestDatabase),
}

impl Backend {
    pub(crate) fn sqlite() -> Self {
        Self::Sqlite(
            test_support::process_scratch_dir()
                .unwrap()
                .join(format!("{}.db", test_support::unique_name("cli"))),
        )
    }

    pub(crate) async fn postgres() -> Self {
        let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
        Self::Postgres(
            TestDatabase::new(&migrations)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    pub(crate) fn imap_sync(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_imap-sync"));
        match self {
            Self::Sqlite(path) => {
                command.arg("--database-url").arg(path);
            }
            Self::Postgres(database) => {
                let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
                command
                    .arg("--database-url")
                    .arg(database.url())
                    .env("IMAP_SYNC__SECRET_KEYS", format!("k1:{key}"));
            }
        }
        // The rig's servers listen on loopback, which the default connect policy refuses.
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env("IMAP_SYNC__IMAP_ALLOWED_NETWORKS", "127.0.0.0/8,::1");
        command
    }

    /// Runs a command that must succeed.
    pub(crate) fn ok(&self, args: &[&str]) -> Output {
        run(&mut self.imap_sync(args))
    }

    /// Runs a command that must succeed and print JSON.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        json(&self.ok(args))
    }

    /// Runs a command that must fail; returns its stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let output = self.imap_sync(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

pub(crate) fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}
