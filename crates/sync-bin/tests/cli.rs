//! The `imap-sync` command line end to end, against the rig's Dovecot, into a SQLite file.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use test_support::{DovecotVariant, MailGenerator, MailGeneratorConfig, RawImap, shared_dovecot};

fn imap_sync(database: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imap-sync"));
    command.arg("--database-url").arg(database).args(args);
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn database() -> PathBuf {
    test_support::process_scratch_dir()
        .unwrap()
        .join(format!("{}.db", test_support::unique_name("cli")))
}

fn add_mailbox(
    database: &Path,
    owner: &str,
    email: &str,
    port: u16,
    user: &str,
    password: &str,
) -> Output {
    run(imap_sync(
        database,
        &[
            "mailbox",
            "add",
            "--owner",
            owner,
            "--email",
            email,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--security",
            "none",
            "--user",
            user,
            "--password-env",
            "TEST_PASSWORD",
        ],
    )
    .env("TEST_PASSWORD", password))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_sync_and_status_a_mailbox() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let user = endpoint.fresh_user("cli");
    let mut raw = RawImap::login_to(endpoint, &user).await.unwrap();
    let end = chrono::Utc::now();
    for message in MailGenerator::new(MailGeneratorConfig::over_days_before(70, end, 100)).take(12)
    {
        raw.append(
            "INBOX",
            &message.flags,
            Some(message.internal_date),
            &message.raw,
        )
        .await
        .unwrap();
    }
    let db = database();
    run(&mut imap_sync(&db, &["migrate"]));
    assert!(
        Path::new(&format!("{}.key", db.display())).exists(),
        "the key file beside the database"
    );
    run(&mut imap_sync(
        &db,
        &[
            "user",
            "add",
            "--email",
            "owner@example.test",
            "--name",
            "Owner",
        ],
    ));
    add_mailbox(
        &db,
        "1",
        "owner@example.test",
        endpoint.plain_port,
        &user,
        &endpoint.password,
    );
    let listed = json(&run(&mut imap_sync(&db, &["mailbox", "list", "--json"])));
    assert_eq!(listed[0]["user"], user.as_str());

    let synced =
        run(imap_sync(&db, &["sync", "--mailbox", "1", "--json"]).env("RUST_LOG", "trace"));
    let report = json(&synced);
    assert_eq!(report["mailboxes"][0]["status"], "Success");
    assert_eq!(report["mailboxes"][0]["new"], 12);
    // On the wire, after COMPRESS=DEFLATE: small, but not nothing.
    assert!(
        report["mailboxes"][0]["bytes_received"].as_u64().unwrap() > 1_000,
        "{report}"
    );
    let log = String::from_utf8_lossy(&synced.stderr);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG") || log.contains("INFO"),
        "logs go to stderr"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in [
        endpoint.password.clone(),
        b64.encode(&endpoint.password),
        b64.encode(format!("\0{user}\0{}", endpoint.password)),
    ] {
        assert!(!log.contains(&secret), "the password reached the log");
    }

    let status = json(&run(&mut imap_sync(&db, &["status", "--json"])));
    let inbox = status[0]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(inbox["messages"], 12);
    assert_eq!(status[0]["state"], "success");

    // Not due again yet: nothing happens without --force.
    let again = json(&run(&mut imap_sync(&db, &["sync", "--json"])));
    assert!(again["mailboxes"].as_array().unwrap().is_empty());
    let forced = json(&run(&mut imap_sync(
        &db,
        &["sync", "--mailbox", "1", "--force", "--json"],
    )));
    assert_eq!(forced["mailboxes"][0]["new"], 0);

    // Check connection, then the folder tree with a switch turned on at once.
    let checked = run(&mut imap_sync(&db, &["mailbox", "check", "1"]));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("IMAP4REV1"));
    raw.create_folder("Clients").await.unwrap();
    let folders = json(&run(&mut imap_sync(
        &db,
        &["mailbox", "folders", "1", "--enable", "Clients", "--json"],
    )));
    let clients = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Clients")
        .expect("listed at once")
        .clone();
    assert_eq!(clients["sync"], true);
    assert_eq!(clients["messages"], 0, "mail follows at the next run");

    let refused = imap_sync(&db, &["mailbox", "remove", "1"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "removal needs --yes");
    run(&mut imap_sync(&db, &["mailbox", "remove", "1", "--yes"]));
    let listed = json(&run(&mut imap_sync(&db, &["mailbox", "list", "--json"])));
    assert!(listed.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_fails_and_shows_the_episode_and_a_dead_port_does_not() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let db = database();
    run(&mut imap_sync(
        &db,
        &[
            "user",
            "add",
            "--email",
            "owner@example.test",
            "--name",
            "Owner",
        ],
    ));
    add_mailbox(
        &db,
        "1",
        "wrong@example.test",
        endpoint.plain_port,
        &endpoint.fresh_user("wrong"),
        "not-the-password",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    add_mailbox(&db, "1", "dead@example.test", dead_port, "someone", "pw");

    let refused = imap_sync(&db, &["sync", "--mailbox", "1", "--mailbox", "2", "--json"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a failed mailbox fails the run");
    let report = json(&refused);
    assert!(
        report["mailboxes"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("InvalidCredentials")
    );
    assert!(
        report["mailboxes"][1]["status"]
            .as_str()
            .unwrap()
            .starts_with("Failure")
    );
    let status = json(&run(&mut imap_sync(&db, &["status", "--json"])));
    assert!(status[0]["credential_episode"].is_string(), "{status}");
    assert!(
        status[1]["credential_episode"].is_null(),
        "a network failure is not a credential episode"
    );
    assert!(status[0]["backoff_until"].is_string());
}
