//! The schema's migrations on both backends: up, down and up again, concurrent starts.

use std::path::PathBuf;

use email_model::migrate;
use test_support::{TestDatabase, TestSqlite};

const TABLES: [&str; 15] = [
    "attachments",
    "credential_episodes",
    "dropped_flag_changes",
    "emails",
    "folders",
    "login_notices_shown",
    "mailboxes",
    "memberships",
    "notification_outbox",
    "pending_flag_changes",
    "retry_uids",
    "sync_runs",
    "thread_refs",
    "user_capabilities",
    "users",
];

fn empty_migrations() -> PathBuf {
    let dir = test_support::process_scratch_dir()
        .unwrap()
        .join("no-migrations");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn postgres_columns(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Migrations in each tree (the mirror, the header key, the TLS pin).
const MIGRATIONS: usize = 6;

#[tokio::test]
async fn postgres_migrations_go_up_down_and_up_again() {
    let database = TestDatabase::new(&empty_migrations()).await.unwrap();
    assert!(postgres_columns(database.url()).await.is_empty());

    // Two workers starting at once: the advisory lock lets one migrate, the other finds it done.
    let (first, second) = tokio::join!(
        migrate::migrate_postgres(database.url()),
        migrate::migrate_postgres(database.url())
    );
    assert_eq!(first.unwrap().len() + second.unwrap().len(), MIGRATIONS);
    let after_up = postgres_columns(database.url()).await;
    let tables: std::collections::BTreeSet<&str> = after_up
        .iter()
        .map(|c| c.split('.').next().unwrap())
        .collect();
    assert_eq!(tables.into_iter().collect::<Vec<_>>(), TABLES);
    assert!(
        migrate::migrate_postgres(database.url())
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        migrate::revert_all_postgres(database.url())
            .await
            .unwrap()
            .len(),
        MIGRATIONS
    );
    assert!(
        postgres_columns(database.url()).await.is_empty(),
        "down.sql drops everything"
    );
    migrate::migrate_postgres(database.url()).await.unwrap();
    assert_eq!(
        postgres_columns(database.url()).await,
        after_up,
        "up after down rebuilds the same schema"
    );
}

fn sqlite_columns(path: &std::path::Path) -> Vec<String> {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        description: String,
    }
    let mut connection = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    diesel::sql_query(
        "SELECT m.name || '.' || p.name || ':' || p.type || ':' || p.\"notnull\" AS description \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
         AND m.name <> '__diesel_schema_migrations' ORDER BY 1",
    )
    .load::<Column>(&mut connection)
    .unwrap()
    .into_iter()
    .map(|c| c.description)
    .collect()
}

#[test]
fn sqlite_migrations_go_up_down_and_up_again() {
    let database = TestSqlite::new(&empty_migrations()).unwrap();
    assert!(sqlite_columns(database.path()).is_empty());
    assert_eq!(
        migrate::migrate_sqlite(database.path()).unwrap().len(),
        MIGRATIONS
    );
    let after_up = sqlite_columns(database.path());
    let tables: std::collections::BTreeSet<&str> = after_up
        .iter()
        .map(|c| c.split('.').next().unwrap())
        .collect();
    assert_eq!(tables.into_iter().collect::<Vec<_>>(), TABLES);
    assert!(migrate::migrate_sqlite(database.path()).unwrap().is_empty());
    assert_eq!(
        migrate::revert_all_sqlite(database.path()).unwrap().len(),
        MIGRATIONS
    );
    assert!(
        sqlite_columns(database.path()).is_empty(),
        "down.sql drops everything"
    );
    migrate::migrate_sqlite(database.path()).unwrap();
    assert_eq!(sqlite_columns(database.path()), after_up);
}
