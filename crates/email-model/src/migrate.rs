//! The schema's migrations, embedded for both backends and run at start-up.

use std::path::Path;

use diesel::Connection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Result, StoreError};

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Key of the advisory lock taken while migrating PostgreSQL, so that several workers starting
/// at once migrate one after another ("imapsync" in ASCII).
const MIGRATION_LOCK: i64 = 0x696d_6170_7379_6e63;

type PgWrapper =
    diesel_async::async_connection_wrapper::AsyncConnectionWrapper<diesel_async::AsyncPgConnection>;

fn migration_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Migrations(error.to_string())
}

/// Which way to run the migrations.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    RevertAll,
}

/// Runs the pending migrations on PostgreSQL under an advisory lock; returns the versions run.
pub async fn migrate_postgres(url: &str) -> Result<Vec<String>> {
    run_postgres(url, Direction::Up).await
}

/// Reverts every migration on PostgreSQL (tests and `cargo xtask migrate --revert-all`).
pub async fn revert_all_postgres(url: &str) -> Result<Vec<String>> {
    run_postgres(url, Direction::RevertAll).await
}

/// Migrations need a synchronous connection: a blocking thread with the async one wrapped.
async fn run_postgres(url: &str, direction: Direction) -> Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut connection =
            PgWrapper::establish(&url).map_err(|e| StoreError::Connection(e.to_string()))?;
        with_advisory_lock(&mut connection, |connection| {
            let versions = match direction {
                Direction::Up => connection.run_pending_migrations(POSTGRES_MIGRATIONS),
                Direction::RevertAll => connection.revert_all_migrations(POSTGRES_MIGRATIONS),
            };
            versions
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(migration_error)
        })
    })
    .await
    .map_err(migration_error)?
}

fn with_advisory_lock<T>(
    connection: &mut PgWrapper,
    work: impl FnOnce(&mut PgWrapper) -> Result<T>,
) -> Result<T> {
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(connection)?;
    let result = work(connection);
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(connection)?;
    result
}

/// Runs the pending migrations on a SQLite file; returns the versions run.
pub fn migrate_sqlite(path: &Path) -> Result<Vec<String>> {
    private_sqlite_files(path)?;
    let mut connection = diesel::SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| StoreError::Connection(e.to_string()))?;
    connection
        .run_pending_migrations(SQLITE_MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(migration_error)
}

/// Reverts every migration on a SQLite file.
pub fn revert_all_sqlite(path: &Path) -> Result<Vec<String>> {
    let mut connection = diesel::SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| StoreError::Connection(e.to_string()))?;
    connection
        .revert_all_migrations(SQLITE_MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(migration_error)
}

/// The mirror holds the users' mail: its SQLite file is created owner-only (0600) before
/// SQLite opens it, and SQLite gives its `-wal` and `-shm` files the main file's mode. Files
/// a looser older version left are tightened.
pub fn private_sqlite_files(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let io = |what: &str, error: std::io::Error| {
            StoreError::Connection(format!("{what} {}: {error}", path.display()))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io("creating", error)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(metadata) = std::fs::metadata(&file)
                && metadata.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(|error| io("restricting", error))?;
            }
        }
    }
    Ok(())
}
