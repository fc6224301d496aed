//! The `imap-sync` command line end to end, against the rig's Dovecot, into a SQLite file and
//! into a PostgreSQL database: every test runs on both.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{Backend, json, run};
use test_support::{DovecotVariant, MailGenerator, MailGeneratorConfig, RawImap, shared_dovecot};

/// Runs each test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    add_sync_and_status_a_mailbox,
    a_refused_password_fails_and_shows_the_episode_and_a_dead_port_does_not,
    users_are_updated_and_removed_with_their_mailboxes,
    another_account_needs_reset_and_limits_apply,
    oauth2_mailboxes_take_token_settings,
    a_panic_in_one_mailbox_fails_that_mailbox_and_the_others_are_synced,
    the_connect_policy_applies_at_check_save_and_every_sync,
    a_self_signed_server_is_synced_once_its_fingerprint_is_pinned,
    an_interrupted_or_killed_run_lets_the_next_one_take_the_mailbox,
);

fn add_user(backend: &Backend, email: &str) -> String {
    let output = backend.ok(&["user", "add", "--email", email, "--name", "Owner"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

fn add_mailbox(
    backend: &Backend,
    owner: &str,
    email: &str,
    port: u16,
    user: &str,
    password: &str,
) -> String {
    let output = run(backend
        .imap_sync(&[
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
        ])
        .env("TEST_PASSWORD", password));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

async fn seeded_user(count: usize) -> (String, RawImap) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let user = endpoint.fresh_user("cli");
    let mut raw = RawImap::login_to(endpoint, &user).await.unwrap();
    let end = chrono::Utc::now();
    for message in
        MailGenerator::new(MailGeneratorConfig::over_days_before(70, end, 100)).take(count)
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
    (user, raw)
}

fn folder<'a>(folders: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no folder {name} in {folders}"))
}

async fn add_sync_and_status_a_mailbox(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let (user, mut raw) = seeded_user(12).await;
    backend.ok(&["migrate"]);
    if let Backend::Sqlite(db) = backend {
        assert!(
            Path::new(&format!("{}.key", db.display())).exists(),
            "the key file beside the database"
        );
    }
    let owner = add_user(backend, "owner@example.test");
    let id = add_mailbox(
        backend,
        &owner,
        "owner@example.test",
        endpoint.plain_port,
        &user,
        &endpoint.password,
    );
    let listed = backend.json(&["mailbox", "list", "--json"]);
    assert_eq!(listed[0]["user"], user.as_str());
    let shown = backend.json(&["mailbox", "show", &id, "--json"]);
    assert_eq!(shown["has_password"], true);
    assert!(
        !shown.to_string().contains(&endpoint.password),
        "show never prints the password"
    );

    let synced = run(backend
        .imap_sync(&["sync", "--mailbox", &id, "--json"])
        .env("RUST_LOG", "trace"));
    let report = json(&synced);
    let mailbox = &report["mailboxes"][0];
    assert_eq!(mailbox["status"], "success", "{report}");
    assert_eq!(mailbox["new"], 12);
    // On the wire, after COMPRESS=DEFLATE: small, but not nothing.
    assert!(
        mailbox["bytes_received"].as_u64().unwrap() > 1_000,
        "{report}"
    );
    assert!(mailbox["imap_commands"].as_u64().unwrap() >= 5, "{report}");
    assert!(
        mailbox["phases_ms"]["fetch"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        mailbox["phases_ms"]["store"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let log = String::from_utf8_lossy(&synced.stderr);
    assert!(log.contains("TRACE"), "trace logs go to stderr");
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in [
        endpoint.password.clone(),
        b64.encode(&endpoint.password),
        b64.encode(format!("\0{user}\0{}", endpoint.password)),
    ] {
        assert!(!log.contains(&secret), "the password reached the log");
    }
    // Issue 15: no RUST_LOG value and no log format lets async-imap's raw lines through.
    for filter in [
        "async_imap=trace",
        "async_imap::imap_stream=trace",
        "off,async_imap::imap_stream=trace",
        "imap_connector=trace,async_imap::imap_stream=trace",
    ] {
        for format in ["text", "json"] {
            let checked = run(backend
                .imap_sync(&["--log-format", format, "mailbox", "check", &id])
                .env("RUST_LOG", filter));
            let log = String::from_utf8_lossy(&checked.stderr);
            for secret in [
                endpoint.password.clone(),
                b64.encode(&endpoint.password),
                b64.encode(format!("\0{user}\0{}", endpoint.password)),
            ] {
                assert!(
                    !log.contains(&secret),
                    "{filter} {format}: the password reached the log"
                );
            }
            assert!(!log.contains("encode: input"), "{filter} {format}: {log}");
        }
    }

    let status = backend.json(&["status", "--json"]);
    assert_eq!(folder(&status[0]["folders"], "INBOX")["messages"], 12);
    assert_eq!(status[0]["state"], "success");
    assert!(status[0]["lag_seconds"].as_i64().unwrap() < 60);
    let text = String::from_utf8_lossy(&backend.ok(&["status"]).stdout).into_owned();
    assert!(
        text.contains("INBOX") && text.contains("12 messages"),
        "{text}"
    );

    // Changes on the server: one flag, one expunge, one new message.
    for command in [
        "SELECT INBOX",
        "UID STORE 1 +FLAGS.SILENT (\\Flagged $CliChecked)",
        "UID STORE 2 +FLAGS.SILENT (\\Deleted)",
        "EXPUNGE",
        "CLOSE",
    ] {
        raw.command(command).await.unwrap();
    }
    let extra = MailGenerator::new(MailGeneratorConfig::over_days_before(
        1,
        chrono::Utc::now(),
        7,
    ))
    .next()
    .unwrap();
    raw.append("INBOX", &[], None, &extra.raw).await.unwrap();

    // Not due again yet: nothing happens without --force; the summary says when it is due.
    let again = backend.json(&["sync", "--mailbox", &id, "--json"]);
    assert_eq!(again["mailboxes"][0]["status"], "not_due", "{again}");
    assert!(again["mailboxes"][0]["due_at"].is_string(), "{again}");
    let forced = backend.json(&["sync", "--mailbox", &id, "--force", "--json"]);
    let changes = &forced["mailboxes"][0];
    assert_eq!(
        (&changes["new"], &changes["changed"], &changes["removed"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{forced}"
    );

    // Check connection, then the folder tree with a switch turned on at once.
    let checked = backend.ok(&["mailbox", "check", &id]);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("IMAP4REV1"));
    raw.create_folder("Clients").await.unwrap();
    let folders = backend.json(&["mailbox", "folders", &id, "--enable", "Clients", "--json"]);
    let clients = folder(&folders, "Clients");
    assert_eq!(clients["sync"], true);
    assert_eq!(clients["messages"], 0, "mail follows at the next run");
    let tree =
        String::from_utf8_lossy(&backend.ok(&["mailbox", "folders", &id]).stdout).into_owned();
    assert!(
        tree.contains("[sync]") && tree.contains("Clients"),
        "{tree}"
    );

    let refused = backend.fails(&["mailbox", "remove", &id]);
    assert!(refused.contains("--yes"), "{refused}");
    backend.ok(&["mailbox", "remove", &id, "--yes"]);
    let listed = backend.json(&["mailbox", "list", "--json"]);
    assert!(listed.as_array().unwrap().is_empty());
}

async fn a_refused_password_fails_and_shows_the_episode_and_a_dead_port_does_not(
    backend: &Backend,
) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let owner = add_user(backend, "owner@example.test");
    let login = endpoint.fresh_user("wrong");
    let wrong = add_mailbox(
        backend,
        &owner,
        "wrong@example.test",
        endpoint.plain_port,
        &login,
        "not-the-password",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = add_mailbox(
        backend,
        &owner,
        "dead@example.test",
        dead_port,
        "someone",
        "pw",
    );

    let refused = backend
        .imap_sync(&["sync", "--mailbox", &wrong, "--mailbox", &dead, "--json"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a failed mailbox fails the run");
    let report = json(&refused);
    assert_eq!(
        report["mailboxes"][0]["status"], "invalid_credentials",
        "{report}"
    );
    assert_eq!(report["mailboxes"][1]["status"], "failure", "{report}");
    let status = backend.json(&["status", "--json"]);
    assert!(
        status[0]["credential_episode"]["reason"].is_string(),
        "{status}"
    );
    assert!(
        status[1]["credential_episode"].is_null(),
        "a network failure is not a credential episode"
    );
    assert!(status[0]["backoff_until"].is_string());

    // In back-off: skipped with the time it is due, and that is not a failure.
    let skipped = backend.json(&["sync", "--mailbox", &wrong, "--json"]);
    assert_eq!(skipped["mailboxes"][0]["status"], "not_due", "{skipped}");
    assert!(skipped["mailboxes"][0]["due_at"].is_string());

    // The right password: back-off gone, due at once, the episode closes on success.
    run(backend
        .imap_sync(&["mailbox", "update", &wrong, "--password-env", "FIXED"])
        .env("FIXED", &endpoint.password));
    let shown = backend.json(&["mailbox", "show", &wrong, "--json"]);
    assert!(shown["backoff_until"].is_null(), "{shown}");
    let fixed = backend.json(&["sync", "--mailbox", &wrong, "--json"]);
    assert_eq!(fixed["mailboxes"][0]["status"], "success", "{fixed}");
    let shown = backend.json(&["mailbox", "show", &wrong, "--json"]);
    assert!(shown["credential_episode"].is_null(), "{shown}");
}

async fn users_are_updated_and_removed_with_their_mailboxes(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let owner = add_user(backend, "first@example.test");
    backend.ok(&[
        "user",
        "update",
        &owner,
        "--email",
        "second@example.test",
        "--disable",
        "--capability",
        "imap_sync_origin_credential_notifications",
    ]);
    let users = backend.json(&["user", "list", "--json"]);
    assert_eq!(users[0]["email"], "second@example.test");
    assert_eq!(users[0]["name"], "Owner");
    assert_eq!(users[0]["enabled"], false);
    assert_eq!(
        users[0]["capabilities"],
        serde_json::json!(["imap_sync_origin_credential_notifications"])
    );
    let unknown = backend.fails(&["user", "update", &owner, "--capability", "admin"]);
    assert!(unknown.contains("unknown capability"), "{unknown}");

    add_mailbox(
        backend,
        &owner,
        "owned@example.test",
        endpoint.plain_port,
        &endpoint.fresh_user("owned"),
        &endpoint.password,
    );
    let refused = backend.fails(&["user", "remove", &owner]);
    assert!(
        refused.contains("1 mailbox") && refused.contains("--yes"),
        "{refused}"
    );
    backend.ok(&["user", "remove", &owner, "--yes"]);
    assert!(
        backend
            .json(&["user", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        backend
            .json(&["mailbox", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let missing = backend.fails(&[
        "mailbox",
        "add",
        "--owner",
        &owner,
        "--email",
        "x@example.test",
        "--host",
        "h",
        "--password-env",
        "HOME",
    ]);
    assert!(missing.contains("no user"), "{missing}");
}

async fn another_account_needs_reset_and_limits_apply(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let (first_login, _raw) = seeded_user(3).await;
    let (second_login, _raw2) = seeded_user(5).await;
    let owner = add_user(backend, "owner@example.test");
    let id = add_mailbox(
        backend,
        &owner,
        "first@example.test",
        endpoint.plain_port,
        &first_login,
        &endpoint.password,
    );
    let other = add_mailbox(
        backend,
        &owner,
        "other@example.test",
        endpoint.plain_port,
        &second_login,
        &endpoint.password,
    );

    // No time at all: nothing starts, nothing fails.
    let starved = backend.json(&["sync", "--max-exec-time", "0s", "--json"]);
    assert_eq!(starved["budget_reached"], true, "{starved}");
    assert!(
        starved["mailboxes"].as_array().unwrap().is_empty(),
        "{starved}"
    );
    let bad = backend.fails(&["sync", "--max-exec-time", "soon"]);
    assert!(bad.contains("10m"), "{bad}");

    // Both mailboxes at once.
    let both = backend.json(&["sync", "--max-concurrent", "2", "--json"]);
    let mut news: Vec<u64> = both["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["new"].as_u64().unwrap())
        .collect();
    news.sort_unstable();
    assert_eq!(news, [3, 5], "{both}");

    // The port may change freely; another login may not, while the mailbox holds mail.
    backend.ok(&["mailbox", "update", &id, "--email", "renamed@example.test"]);
    let refused = backend.fails(&["mailbox", "update", &id, "--user", &second_login]);
    assert!(refused.contains("--reset"), "{refused}");
    let shown = backend.json(&["mailbox", "show", &id, "--json"]);
    assert_eq!(shown["user"], first_login.as_str());
    assert_eq!(folder(&shown["folders"], "INBOX")["messages"], 3);

    let reset = backend.ok(&["mailbox", "update", &id, "--user", &second_login, "--reset"]);
    assert!(
        String::from_utf8_lossy(&reset.stdout).contains("deleted"),
        "{reset:?}"
    );
    let shown = backend.json(&["mailbox", "show", &id, "--json"]);
    assert_eq!(shown["user"], second_login.as_str());
    assert_eq!(shown["email"], "renamed@example.test");
    assert_eq!(
        folder(&shown["folders"], "INBOX")["messages"],
        0,
        "folders listed at once, mail at the next run"
    );
    let resynced = backend.json(&["sync", "--mailbox", &id, "--json"]);
    assert_eq!(
        resynced["mailboxes"][0]["new"], 5,
        "the new account's mail, its own rows beside mailbox {other}: {resynced}"
    );
}

async fn oauth2_mailboxes_take_token_settings(backend: &Backend) {
    let owner = add_user(backend, "owner@example.test");
    let base = [
        "mailbox",
        "add",
        "--owner",
        &owner,
        "--email",
        "o@example.test",
        "--host",
        "imap.gmail.com",
        "--auth",
        "oauth2",
        "--password-env",
        "REFRESH",
    ];
    let missing = backend
        .imap_sync(&base)
        .env("REFRESH", "refresh-token-1")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("--oauth-provider or --oauth-token-endpoint"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let mut with_client = base.to_vec();
    with_client.extend([
        "--oauth-provider",
        "google",
        "--oauth-client-id",
        "client-1",
        "--oauth-client-secret-env",
        "CLIENT_SECRET",
    ]);
    let added = run(backend
        .imap_sync(&with_client)
        .env("REFRESH", "refresh-token-1")
        .env("CLIENT_SECRET", "client-secret-1"));
    let id = String::from_utf8_lossy(&added.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let shown = backend.json(&["mailbox", "show", &id, "--json"]);
    assert_eq!(shown["auth"], "oauth2");
    assert_eq!(shown["has_password"], true);
    let text = shown.to_string();
    assert!(
        !text.contains("refresh-token-1") && !text.contains("client-secret-1"),
        "no secret is shown: {text}"
    );
}

/// Issue 15: a panic inside one mailbox's sync (a failpoint) is that mailbox's failure, recorded
/// with its message; the run goes on with the others and exits 1.
async fn a_panic_in_one_mailbox_fails_that_mailbox_and_the_others_are_synced(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let owner = add_user(backend, "owner@example.test");
    let mut ids = Vec::new();
    for index in 0..3 {
        let (login, _raw) = seeded_user(3).await;
        let email = format!("panic{index}@example.test");
        ids.push(add_mailbox(
            backend,
            &owner,
            &email,
            endpoint.plain_port,
            &login,
            &endpoint.password,
        ));
    }
    let output = backend
        .imap_sync(&["sync", "--json"])
        .env("IMAP_SYNC_FAILPOINTS", format!("mailbox-panic:{}", ids[1]))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let outcome = |id: &str| {
        report["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mailbox"].as_i64() == id.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("mailbox {id} not in {report}"))
            .clone()
    };
    assert_eq!(outcome(&ids[0])["status"], "success", "{report}");
    assert_eq!(outcome(&ids[0])["new"], 3, "{report}");
    assert_eq!(outcome(&ids[2])["status"], "success", "{report}");
    assert_eq!(outcome(&ids[2])["new"], 3, "{report}");
    let failed = outcome(&ids[1]);
    assert_eq!(failed["status"], "failure", "{report}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("internal error"),
        "{failed}"
    );
    let shown = backend.json(&["mailbox", "show", &ids[1], "--json"]);
    assert!(
        shown["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("failpoint mailbox-panic"),
        "{shown}"
    );
    // Without the failpoint the mailbox syncs (after its back-off: forced here).
    let fixed = backend.json(&["sync", "--mailbox", &ids[1], "--force", "--json"]);
    assert_eq!(fixed["mailboxes"][0]["status"], "success", "{fixed}");
    assert_eq!(fixed["mailboxes"][0]["new"], 3, "{fixed}");
}

/// Issue 15: the connect policy is applied at every connect, after resolution: a host allowed
/// when the mailbox was saved and refused later is refused at the later check and sync; a
/// refused host is not saved; link-local and metadata addresses are refused by default.
async fn the_connect_policy_applies_at_check_save_and_every_sync(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let owner = add_user(backend, "owner@example.test");
    let (login, _raw) = seeded_user(2).await;
    let id = add_mailbox(
        backend,
        &owner,
        "policy@example.test",
        endpoint.plain_port,
        &login,
        &endpoint.password,
    );
    let deny_loopback = |args: &[&str]| {
        backend
            .imap_sync(args)
            .env("IMAP_SYNC__IMAP_DENIED_NETWORKS", "127.0.0.0/8")
            .env("TEST_PASSWORD", "pw")
            .output()
            .unwrap()
    };
    let synced = deny_loopback(&["sync", "--json"]);
    assert_eq!(synced.status.code(), Some(1));
    let report = json(&synced);
    assert_eq!(report["mailboxes"][0]["status"], "failure", "{report}");
    let message = report["mailboxes"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("the connect policy refuses 127.0.0.1:")
            && message.contains("imap_denied_networks"),
        "{message}"
    );
    // Another setting of a mailbox whose address the policy now refuses still saves: only a
    // new address is looked up on save.
    let updated = deny_loopback(&["mailbox", "update", &id, "--first-sync-days", "20"]);
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    let checked = deny_loopback(&["mailbox", "check", &id]);
    assert!(!checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stderr).contains("connect policy"));
    let add_args = |host: &'static str| -> Vec<String> {
        [
            "mailbox",
            "add",
            "--owner",
            &owner,
            "--email",
            "second@example.test",
            "--host",
            host,
            "--security",
            "none",
            "--user",
            "x",
            "--password-env",
            "TEST_PASSWORD",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let refused_at_add = |output: std::process::Output, host: &str| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("connect policy"),
            "{host}: {stderr}"
        );
    };
    let args = add_args("127.0.0.1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_at_add(deny_loopback(&args), "127.0.0.1 with loopback denied");
    for metadata in ["169.254.169.254", "fd00:ec2::254"] {
        let args = add_args(metadata);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = backend
            .imap_sync(&args)
            .env("TEST_PASSWORD", "pw")
            .output()
            .unwrap();
        refused_at_add(output, metadata);
    }
    let listed = backend.json(&["mailbox", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // With loopback allowed again (the rig's setting) the same mailbox syncs.
    let fixed = backend.json(&["sync", "--mailbox", &id, "--force", "--json"]);
    assert_eq!(fixed["mailboxes"][0]["status"], "success", "{fixed}");
}

/// Issue 15: `mailbox check` names a self-signed server's fingerprint; `--tls-pin` with it
/// makes check and sync work, for that certificate only.
async fn a_self_signed_server_is_synced_once_its_fingerprint_is_pinned(backend: &Backend) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let certificate = test_support::SelfSignedCertificate::generate("self-hosted").unwrap();
    let dovecot = std::net::SocketAddr::from(([127, 0, 0, 1], endpoint.plain_port));
    let front = test_support::TlsFront::start(&certificate, dovecot)
        .await
        .unwrap();
    let owner = add_user(backend, "owner@example.test");
    let (login, _raw) = seeded_user(3).await;
    let id = json_id(&run(backend
        .imap_sync(&[
            "mailbox",
            "add",
            "--owner",
            &owner,
            "--email",
            "pinned@example.test",
            "--host",
            "127.0.0.1",
            "--port",
            &front.port().to_string(),
            "--security",
            "tls",
            "--user",
            &login,
            "--password-env",
            "TEST_PASSWORD",
        ])
        .env("TEST_PASSWORD", &endpoint.password)));
    let refused = backend
        .imap_sync(&["mailbox", "check", &id])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("self-signed") && stderr.contains(&certificate.fingerprint()),
        "{stderr}"
    );
    let bogus = backend
        .imap_sync(&["mailbox", "update", &id, "--tls-pin", "12:34"])
        .output()
        .unwrap();
    assert!(!bogus.status.success());
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("tls_pin"));
    backend.ok(&[
        "mailbox",
        "update",
        &id,
        "--tls-pin",
        &certificate.fingerprint(),
    ]);
    let shown = backend.json(&["mailbox", "show", &id, "--json"]);
    assert_eq!(shown["tls_pin"], certificate.fingerprint(), "{shown}");
    backend.ok(&["mailbox", "check", &id]);
    let synced = backend.json(&["sync", "--mailbox", &id, "--json"]);
    assert_eq!(synced["mailboxes"][0]["status"], "success", "{synced}");
    assert_eq!(synced["mailboxes"][0]["new"], 3, "{synced}");
    // `none` removes the pin: saved, and the folder refresh that follows is refused again.
    let unpinned = backend
        .imap_sync(&["mailbox", "update", &id, "--tls-pin", "none"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unpinned.stdout).contains("updated"));
    assert!(String::from_utf8_lossy(&unpinned.stderr).contains(&certificate.fingerprint()));
    assert!(backend.json(&["mailbox", "show", &id, "--json"])["tls_pin"].is_null());
    assert!(
        !backend
            .imap_sync(&["mailbox", "check", &id])
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// The id `mailbox add` printed (`mailbox N added`).
/// Starts `imap-sync sync` of a large mailbox and waits until it has committed a batch.
fn started_sync(backend: &Backend, id: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = backend
        .imap_sync(&["sync", "--mailbox", id, "--force"])
        .env("IMAP_SYNC__SYNC_BATCH_SIZE", "5")
        .env("IMAP_SYNC__DAEMON__LEASE_SECONDS", "3")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // "mailbox 1: INBOX: 40/400": batches are committed.
        if line.contains("INBOX: ") && line.contains('/') && !line.contains(" 0/") {
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn stored_in_inbox(backend: &Backend, id: &str) -> (u64, serde_json::Value) {
    let shown = backend.json(&["mailbox", "show", id, "--json"]);
    let messages = folder(&shown["folders"], "INBOX")["messages"]
        .as_u64()
        .unwrap();
    (messages, shown["lease"].clone())
}

/// Issue 16: SIGTERM stops a CLI run between batches, releases its lease and exits 143; after a
/// kill -9 the lease (short, renewed while the run worked) runs out within its length and the
/// next run takes the mailbox and completes the mirror.
async fn an_interrupted_or_killed_run_lets_the_next_one_take_the_mailbox(backend: &Backend) {
    const TOTAL: u64 = 400;
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let (login, _raw) = seeded_user(TOTAL as usize).await;
    let owner = add_user(backend, "owner@example.test");
    let id = add_mailbox(
        backend,
        &owner,
        "big@example.test",
        endpoint.plain_port,
        &login,
        &endpoint.password,
    );

    let child = started_sync(backend, &id);
    run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "SIGTERM: 128 + 15");
    let (stored, lease) = stored_in_inbox(backend, &id);
    assert!(
        lease.is_null(),
        "the lease is released on the way out: {lease}"
    );
    assert!(stored > 0 && stored < TOTAL, "stopped part way: {stored}");

    let mut child = started_sync(backend, &id);
    run(std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]));
    child.wait().unwrap();
    let killed_at = chrono::Utc::now();
    let (_, lease) = stored_in_inbox(backend, &id);
    let until: chrono::DateTime<chrono::Utc> = lease["until"].as_str().unwrap().parse().unwrap();
    assert!(
        until <= killed_at + chrono::Duration::seconds(3),
        "a killed run's lease ends within its length (3 s here): {lease}"
    );
    // Until then the mailbox is another process's; afterwards the next run takes it.
    tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let done = backend.json(&["sync", "--mailbox", &id, "--force", "--json"]);
    assert_eq!(done["mailboxes"][0]["status"], "success", "{done}");
    let (stored, lease) = stored_in_inbox(backend, &id);
    assert_eq!(stored, TOTAL);
    assert!(lease.is_null(), "{lease}");
}

fn json_id(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}
