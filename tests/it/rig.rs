//! Smoke tests of the rig itself, through a raw client: the connector's own tests exercise the
//! real client.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use integration_tests::{ProbeReport, rig_fixture_migrations};
use test_support::{
    DovecotEndpoint, DovecotVariant, Expect, MailGenerator, MailGeneratorConfig, RawImap, Script,
    ScriptError, ScriptedImapServer, Status, TestDatabase, TestSqlite, process_running,
    shared_dovecot,
};

fn dovecot(variant: DovecotVariant) -> &'static DovecotEndpoint {
    shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"))
}

/// A client logged in to a fresh mailbox of the given variant.
async fn fresh_mailbox(variant: DovecotVariant, purpose: &str) -> RawImap {
    let server = dovecot(variant);
    RawImap::login_to(server, &server.fresh_user(purpose))
        .await
        .unwrap()
}

#[tokio::test]
async fn dovecot_logs_in_over_plain_starttls_and_implicit_tls() {
    let server = dovecot(DovecotVariant::Full);
    let user = server.fresh_user("login");

    let mut plain = RawImap::connect_plain(&server.host, server.plain_port)
        .await
        .unwrap();
    assert!(
        plain.greeting().contains("STARTTLS"),
        "{}",
        plain.greeting()
    );
    plain
        .login(&user, &server.password)
        .await
        .unwrap()
        .ok()
        .unwrap();

    let upgraded = RawImap::connect_plain(&server.host, server.plain_port)
        .await
        .unwrap()
        .starttls(&server.host, &server.ca_file)
        .await
        .unwrap();
    let mut upgraded = upgraded;
    upgraded
        .login(&user, &server.password)
        .await
        .unwrap()
        .ok()
        .unwrap();

    let mut tls = RawImap::connect_tls("localhost", server.tls_port, &server.ca_file)
        .await
        .unwrap();
    tls.login(&user, &server.password)
        .await
        .unwrap()
        .ok()
        .unwrap();
    tls.logout().await.unwrap();
}

#[tokio::test]
async fn dovecot_refuses_a_wrong_password_as_an_authentication_failure() {
    let server = dovecot(DovecotVariant::Full);
    let mut client = RawImap::connect(server).await.unwrap();
    let reply = client
        .login(&server.fresh_user("refused"), "not-the-password")
        .await
        .unwrap();
    assert_eq!(reply.status, Status::No);
    assert!(
        reply.text.contains("[AUTHENTICATIONFAILED]"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn full_dovecot_lists_the_special_use_folders() {
    let mut client = fresh_mailbox(DovecotVariant::Full, "folders").await;
    let listed: HashSet<String> = client.list_all().await.unwrap().into_iter().collect();
    for expected in [
        r#"* LIST (\HasNoChildren) "/" INBOX"#,
        r#"* LIST (\HasNoChildren \Sent) "/" Sent"#,
        r#"* LIST (\HasNoChildren \Drafts) "/" Drafts"#,
        r#"* LIST (\HasNoChildren \Trash) "/" Trash"#,
        r#"* LIST (\HasNoChildren \Junk) "/" Junk"#,
        r#"* LIST (\HasNoChildren \Archive) "/" Archive"#,
    ] {
        assert!(
            listed.contains(expected),
            "{expected} missing from {listed:?}"
        );
    }
}

#[tokio::test]
async fn full_dovecot_offers_the_extensions_sync_relies_on() {
    let server = dovecot(DovecotVariant::Full);
    let mut client = RawImap::connect(server).await.unwrap();
    let before_login = client.capabilities().await.unwrap();
    assert!(
        before_login.contains(&"STARTTLS".to_owned()),
        "{before_login:?}"
    );
    client
        .login(&server.fresh_user("caps"), &server.password)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let capabilities: HashSet<String> = client.capabilities().await.unwrap().into_iter().collect();
    for expected in [
        "IMAP4rev1",
        "LITERAL+",
        "CONDSTORE",
        "QRESYNC",
        "IDLE",
        "SPECIAL-USE",
        "COMPRESS=DEFLATE",
        "MOVE",
        "UIDPLUS",
        "ESEARCH",
        "LIST-STATUS",
        "ENABLE",
        "ID",
    ] {
        assert!(
            capabilities.contains(expected),
            "{expected} missing from {capabilities:?}"
        );
    }
}

#[tokio::test]
async fn minimal_dovecot_advertises_only_imap4rev1_and_literal_plus() {
    assert_ne!(
        dovecot(DovecotVariant::Minimal).plain_port,
        dovecot(DovecotVariant::Full).plain_port
    );
    let mut client = fresh_mailbox(DovecotVariant::Minimal, "minimal").await;
    assert_eq!(
        client.capabilities().await.unwrap(),
        ["IMAP4rev1", "LITERAL+"]
    );
    // Its folders exist but carry no special-use attributes: clients must find Sent by name.
    let folders = client.list_all().await.unwrap();
    assert!(
        folders.iter().any(|l| l.ends_with(r#""/" Sent"#)),
        "{folders:?}"
    );
    assert!(!folders.iter().any(|l| l.contains(r"\Sent")), "{folders:?}");
}

#[tokio::test]
async fn append_helper_stores_flags_internal_date_and_bytes() {
    let mut client = fresh_mailbox(DovecotVariant::Full, "append").await;
    client.create_folder("Projects/2026").await.unwrap();
    let end = Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap();
    let message =
        MailGenerator::new(MailGeneratorConfig::over_days_before(42, end, 30)).next_message();
    let uid = client
        .append(
            "Projects/2026",
            &["\\Seen", "\\Flagged"],
            Some(message.internal_date),
            &message.raw,
        )
        .await
        .unwrap();
    assert_eq!(uid, Some(1));

    client
        .command(r#"SELECT "Projects/2026""#)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let reply = client
        .command("UID FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .await
        .unwrap()
        .ok()
        .unwrap();
    let fetched = reply.untagged.join("\n");
    let flags = fetched
        .split("FLAGS (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    let flags: HashSet<&str> = flags.split_whitespace().collect();
    assert_eq!(
        flags,
        HashSet::from([r"\Seen", r"\Flagged", r"\Recent"]),
        "{fetched}"
    );
    let expected_date = message
        .internal_date
        .format("%d-%b-%Y %H:%M:%S +0000")
        .to_string();
    assert!(
        fetched.contains(&format!("INTERNALDATE \"{expected_date}\"")),
        "{fetched}"
    );
    assert!(
        fetched.contains(&format!("RFC822.SIZE {}", message.raw.len())),
        "{fetched}"
    );
    assert!(fetched.contains(&String::from_utf8_lossy(&message.raw).into_owned()));
}

#[tokio::test]
async fn each_test_gets_a_fresh_postgres_database() {
    let migrations = rig_fixture_migrations("postgres");
    let first = TestDatabase::new(&migrations).await.unwrap();
    let second = TestDatabase::new(&migrations).await.unwrap();
    assert_ne!(first.name(), second.name());

    let (client, connection) = tokio_postgres::connect(first.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO rig_smoke (note) VALUES ('only in the first')",
            &[],
        )
        .await
        .unwrap();
    let (other, connection) = tokio_postgres::connect(second.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let count: i64 = other
        .query_one("SELECT count(*) FROM rig_smoke", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "the migrated table exists and starts empty");
    let migrations_run: i64 = other
        .query_one("SELECT count(*) FROM __diesel_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(migrations_run, 1);
    drop(other);

    let name = second.name().to_owned();
    drop(second);
    let remaining: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(remaining, 0, "a dropped TestDatabase drops its database");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count_rows(connection: &mut SqliteConnection) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM rig_smoke")
        .get_result::<Count>(connection)
        .unwrap()
        .n
}

#[test]
fn each_test_gets_a_fresh_sqlite_file() {
    let migrations = rig_fixture_migrations("sqlite");
    let first = TestSqlite::new(&migrations).unwrap();
    let second = TestSqlite::new(&migrations).unwrap();
    assert_ne!(first.path(), second.path());

    let mut one = SqliteConnection::establish(&first.url()).unwrap();
    diesel::sql_query("INSERT INTO rig_smoke (note) VALUES ('only in the first')")
        .execute(&mut one)
        .unwrap();
    assert_eq!(count_rows(&mut one), 1);
    let mut two = SqliteConnection::establish(&second.url()).unwrap();
    assert_eq!(count_rows(&mut two), 0);
    drop((one, two));

    let path = second.path().to_owned();
    drop(second);
    assert!(!path.exists(), "a dropped TestSqlite deletes its file");
}

#[tokio::test]
async fn scripted_server_plays_its_script_and_records_the_commands() {
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted ready")
        .expect(
            r#"LOGIN "user" "secret""#,
            &["{tag} NO [UNAVAILABLE] Temporary authentication failure, try again later"],
        )
        .expect("LOGOUT", &["* BYE see you", "{tag} OK done"]);
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut client = RawImap::connect_plain("127.0.0.1", server.port())
        .await
        .unwrap();
    assert!(!client.greeting().contains("STARTTLS"));
    let reply = client.login("user", "secret").await.unwrap();
    assert_eq!(reply.status, Status::No);
    assert!(reply.text.starts_with("[UNAVAILABLE]"), "{}", reply.text);
    client.logout().await.unwrap();
    assert_eq!(
        server.finish().await.unwrap(),
        [r#"LOGIN "user" "secret""#, "LOGOUT"]
    );
}

#[tokio::test]
async fn scripted_server_reports_the_first_unexpected_command() {
    let script = Script::greeting("* OK ready")
        .step(
            Expect::StartsWith("UID FETCH".into()),
            &["{tag} OK nothing"],
        )
        .hangup();
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut client = RawImap::connect_plain("127.0.0.1", server.port())
        .await
        .unwrap();
    let _ = client.command("NOOP").await;
    match server.finish().await {
        Err(ScriptError::Unexpected { step: 1, got, .. }) => assert_eq!(got, "r1 NOOP"),
        other => panic!("expected a departure at step 1, got {other:?}"),
    }
}

/// Runs the crash probe (which starts every rig server and then fails) and proves that none of
/// its processes and none of its directories outlive it.
fn assert_probe_leaves_nothing(mode: &str) {
    let root = std::env::temp_dir().join(test_support::unique_name("lo"));
    std::fs::create_dir_all(&root).unwrap();
    let mut probe = Command::new(env!("CARGO_BIN_EXE_rig-crash-probe"));
    probe
        .arg(mode)
        .env(test_support::RIG_TMPDIR_VAR, &root)
        .env_remove(DovecotVariant::Full.env_var())
        .env_remove(DovecotVariant::Minimal.env_var())
        .env_remove(test_support::DATABASE_URL_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = probe.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let report: ProbeReport = match serde_json::from_str(&line) {
        Ok(report) => report,
        Err(e) => {
            let output = child.wait_with_output().unwrap();
            panic!(
                "no report ({e}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        }
    };
    assert!(
        report.descendant_pids.len() >= 6,
        "dovecot ×2, postgres and their watchdogs: {:?}",
        report.descendant_pids
    );
    assert!(report.rig_dirs.len() >= 4, "{:?}", report.rig_dirs);
    if mode == "wait-for-kill" {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the probe must fail");

    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let alive: Vec<u32> = report
            .descendant_pids
            .iter()
            .copied()
            .filter(|pid| process_running(*pid))
            .collect();
        let dirs: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        if alive.is_empty() && dirs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the probe failed ({mode}), still running: {alive:?}; still present: {dirs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_dir(&root).unwrap();
}

#[test]
fn no_server_or_temp_dir_outlives_a_panicking_test() {
    assert_probe_leaves_nothing("panic");
}

#[test]
fn no_server_or_temp_dir_outlives_a_killed_test() {
    assert_probe_leaves_nothing("wait-for-kill");
}
