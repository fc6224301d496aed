//! Applying a migrations folder (diesel's layout: one directory per migration holding
//! `up.sql` and `down.sql`). The rig takes the folder as input and depends on none of the
//! workspace's crates, so a crate's own tests never link two copies of it.

use std::path::{Path, PathBuf};

use diesel::Connection;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

use crate::error::RigError;

/// A fingerprint of every file under `dir` (paths and contents), so that a changed migration
/// gets a new template instead of a stale one.
pub fn fingerprint(dir: &Path) -> Result<u64, RigError> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut hash = Fnv1a::default();
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        hash.write(relative.to_string_lossy().as_bytes());
        hash.write(&[0]);
        let contents =
            std::fs::read(&file).map_err(RigError::io(format!("reading {}", file.display())))?;
        hash.write(&contents);
        hash.write(&[0]);
    }
    Ok(hash.0)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), RigError> {
    let entries =
        std::fs::read_dir(dir).map_err(RigError::io(format!("reading {}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(RigError::io(format!("reading {}", dir.display())))?
            .path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn source(dir: &Path) -> Result<FileBasedMigrations, RigError> {
    FileBasedMigrations::from_path(dir).map_err(|e| RigError::Migrations {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })
}

/// Runs the pending migrations of `dir` against a PostgreSQL database. Blocking: call it from
/// `spawn_blocking`.
pub(crate) fn run_postgres(url: &str, dir: &Path) -> Result<(), RigError> {
    type Wrapper = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
        diesel_async::AsyncPgConnection,
    >;
    let mut connection = Wrapper::establish(url).map_err(|e| RigError::Migrations {
        dir: dir.to_path_buf(),
        message: format!("connecting to {url}: {e}"),
    })?;
    connection
        .run_pending_migrations(source(dir)?)
        .map_err(|e| RigError::Migrations {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(())
}

/// Runs the pending migrations of `dir` against a SQLite file.
pub(crate) fn run_sqlite(path: &Path, dir: &Path) -> Result<(), RigError> {
    let mut connection =
        diesel::SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| {
            RigError::Migrations {
                dir: dir.to_path_buf(),
                message: format!("opening {}: {e}", path.display()),
            }
        })?;
    connection
        .run_pending_migrations(source(dir)?)
        .map_err(|e| RigError::Migrations {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(())
}
