//! `imap-sync run` end to end: IDLE push, two daemons sharing one database, SIGTERM in the
//! middle of a sync, and the HTTP API.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{DovecotVariant, MailGenerator, MailGeneratorConfig, RawImap, shared_dovecot};

/// Where the daemons of a test keep their mirror.
type Database = common::Backend;

/// `imap-sync ARGS` on the database, its API on a free loopback port, ticks without jitter.
fn command(database: &Database, args: &[&str]) -> Command {
    let mut command = database.imap_sync(args);
    command
        .env("IMAP_SYNC__HTTP__LISTEN", "127.0.0.1:0")
        .env("IMAP_SYNC__DAEMON__JITTER_MILLIS", "0");
    command
}

/// A running `imap-sync run`, killed if the test ends first.
struct Daemon {
    child: Child,
    address: String,
}

impl Daemon {
    fn start(database: &Database, env: &[(&str, &str)]) -> Self {
        let mut command = command(database, &["run"]);
        command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        let address = first
            .strip_prefix("imap-sync: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        // Keep draining stdout so the daemon never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Self { child, address }
    }

    fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        http(&self.address, method, path, body, token)
    }

    fn metric(&self, line_start: &str) -> f64 {
        let (_, text) = self.http("GET", "/metrics", None, None);
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line_start)
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0.0)
    }

    /// SIGTERM, then the exit status within `limit`.
    fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the daemon did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (Connection: close), enough for the tests.
fn http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut headers = vec![
        ("Host", address.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ];
    if let Some(token) = token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    http_with_headers(address, method, path, body, &headers)
}

/// A request with exactly these headers (besides Connection and Content-Length).
fn http_with_headers(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
    out
}

fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn seeded(purpose: &str, count: usize) -> (String, RawImap) {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let user = endpoint.fresh_user(purpose);
    let mut raw = RawImap::login_to(endpoint, &user).await.unwrap();
    let messages: Vec<_> = MailGenerator::new(MailGeneratorConfig::over_days_before(
        5,
        chrono::Utc::now(),
        60,
    ))
    .take(count)
    .collect();
    let items: Vec<test_support::AppendItem<'_>> = messages
        .iter()
        .map(|m| (m.flags.as_slice(), Some(m.internal_date), m.raw.as_slice()))
        .collect();
    raw.append_many("INBOX", &items).await.unwrap();
    (user, raw)
}

async fn append_one(raw: &mut RawImap, seed: u64) {
    let message = MailGenerator::new(MailGeneratorConfig::over_days_before(
        seed,
        chrono::Utc::now(),
        1,
    ))
    .next()
    .unwrap();
    raw.append("INBOX", &[], None, &message.raw).await.unwrap();
}

fn add_mailbox(database: &Database, owner: &str, login: &str) -> String {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap();
    let output = database
        .imap_sync(&[
            "mailbox",
            "add",
            "--owner",
            owner,
            "--email",
            login,
            "--host",
            "127.0.0.1",
            "--port",
            &endpoint.plain_port.to_string(),
            "--security",
            "none",
            "--user",
            login,
            "--password-env",
            "PW",
        ])
        .env("PW", &endpoint.password)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn inbox_count(daemon: &Daemon, mailbox: &str) -> usize {
    let (status, body) = daemon.http(
        "GET",
        &format!("/api/mailboxes/{mailbox}/emails?folder=INBOX&limit=500"),
        None,
        None,
    );
    match status {
        // Before the first sync lists the folders.
        404 if body.contains("folder") => 0,
        200 => serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        _ => panic!("{status}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_brings_new_mail_without_waiting_for_the_schedule() {
    let database = Database::sqlite();
    let (login, mut raw) = seeded("idle", 3).await;
    database.ok(&[
        "user",
        "add",
        "--email",
        "owner@example.test",
        "--name",
        "Owner",
    ]);
    let mailbox = add_mailbox(&database, "1", &login);
    database.ok(&["sync", "--mailbox", &mailbox]);

    // The schedule would not look again for an hour: only IDLE can bring the new message.
    let daemon = Daemon::start(&database, &[("IMAP_SYNC__DAEMON__TICK_SECONDS", "3600")]);
    wait_until(Duration::from_secs(20), "the IDLE watcher", || {
        daemon.metric("imap_sync_imap_connections") >= 1.0
    });
    assert_eq!(inbox_count(&daemon, &mailbox), 3);
    append_one(&mut raw, 77).await;
    wait_until(Duration::from_secs(20), "the new message", || {
        inbox_count(&daemon, &mailbox) == 4
    });
    // The run is counted once it has finished (the mail shows as soon as its batch commits).
    wait_until(
        Duration::from_secs(10),
        "the IDLE-triggered run to finish",
        || daemon.metric("imap_sync_runs_total{trigger=\"idle\",status=\"success\"}") >= 1.0,
    );
    assert_eq!(
        daemon.metric("imap_sync_runs_total{trigger=\"schedule\",status=\"success\"}"),
        0.0,
        "the timer did not"
    );
    let status = daemon.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    // The watcher's lease is released: a manual sync is not refused as held.
    let report = database.json(&["sync", "--mailbox", &mailbox, "--force", "--json"]);
    assert_eq!(report["mailboxes"][0]["status"], "success", "{report}");
}

/// Issue 16: with the IDLE watcher holding the mailbox (the default), "sync now", a folder
/// switch, a flag change and a CLI sync are handed to the watcher, never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_folder_switches_and_flag_changes_are_handed_to_the_watcher() {
    let database = Database::sqlite();
    let (login, mut raw) = seeded("handover", 3).await;
    database.ok(&[
        "user",
        "add",
        "--email",
        "owner@example.test",
        "--name",
        "Owner",
    ]);
    let mailbox = add_mailbox(&database, "1", &login);
    database.ok(&["sync", "--mailbox", &mailbox]);
    let daemon = Daemon::start(
        &database,
        &[
            ("IMAP_SYNC__DAEMON__TICK_SECONDS", "3600"),
            ("IMAP_SYNC__DAEMON__REQUEST_CHECK_SECONDS", "1"),
        ],
    );
    wait_until(Duration::from_secs(20), "the IDLE watcher", || {
        daemon.metric("imap_sync_imap_connections") >= 1.0
    });
    let call = |method: &str, path: &str, body: Option<&str>| -> (u16, serde_json::Value) {
        let (status, text) = daemon.http(method, path, body, None);
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    };

    let (status, taken) = call("POST", &format!("/api/mailboxes/{mailbox}/sync"), None);
    assert_eq!(
        (status, taken["handed_to"].as_str()),
        (202, Some("watcher")),
        "{taken}"
    );
    let (status, run) = call(
        "POST",
        &format!("/api/mailboxes/{mailbox}/sync?wait=30"),
        None,
    );
    assert_eq!(
        (status, run["status"].as_str()),
        (200, Some("success")),
        "{run}"
    );
    let (status, runs) = call("GET", &format!("/api/mailboxes/{mailbox}/runs"), None);
    assert_eq!(status, 200);
    assert!(runs.as_array().unwrap().len() >= 3, "{runs}");

    let (status, folders) = call(
        "PATCH",
        &format!("/api/mailboxes/{mailbox}/folders"),
        Some(r#"{"enable":["Archive"]}"#),
    );
    assert!(status == 202 || status == 200, "{status}: {folders}");
    assert!(
        folders
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Archive" && f["sync"] == true),
        "{folders}"
    );

    // A flag change reaches the server without waiting for new mail or the schedule.
    let (_, emails) = call(
        "GET",
        &format!("/api/mailboxes/{mailbox}/emails?folder=INBOX"),
        None,
    );
    let unflagged = emails
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            !e["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "\\Flagged")
        })
        .expect("a message without the flag")
        .clone();
    let (status, _) = call(
        "PATCH",
        &format!("/api/emails/{}/flags", unflagged["id"]),
        Some(r#"{"set":["\\Flagged"]}"#),
    );
    assert_eq!(status, 202);
    let uid = unflagged["uid"].as_u64().unwrap();
    let started = Instant::now();
    loop {
        raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
        let reply = raw
            .command(&format!("UID FETCH {uid} (FLAGS)"))
            .await
            .unwrap()
            .ok()
            .unwrap();
        if reply.untagged.iter().any(|l| l.contains("\\Flagged")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the flag never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The CLI asks the holder too, and reports that sync's outcome.
    let report = database.json(&["sync", "--mailbox", &mailbox, "--force", "--json"]);
    assert_eq!(report["mailboxes"][0]["status"], "success", "{report}");
    assert!(
        daemon.metric("imap_sync_runs_total{trigger=\"manual\",status=\"success\"}") >= 3.0,
        "the watcher's manual runs are counted"
    );
    let status = daemon.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_sync_leaves_a_consistent_database_that_the_next_run_completes() {
    let database = Database::sqlite();
    let (login, _raw) = seeded("sigterm", 400).await;
    database.ok(&[
        "user",
        "add",
        "--email",
        "owner@example.test",
        "--name",
        "Owner",
    ]);
    let mailbox = add_mailbox(&database, "1", &login);
    let daemon = Daemon::start(
        &database,
        &[
            ("IMAP_SYNC__SYNC_BATCH_SIZE", "10"),
            ("IMAP_SYNC__DAEMON__IDLE", "false"),
        ],
    );
    wait_until(Duration::from_secs(30), "the first batches", || {
        inbox_count(&daemon, &mailbox) >= 20
    });
    let status = daemon.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    let shown: serde_json::Value = database.json(&["mailbox", "show", &mailbox, "--json"]);
    let inbox = shown["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .unwrap()
        .clone();
    let stored = inbox["messages"].as_u64().unwrap();
    assert!(
        (20..400).contains(&stored),
        "stopped part way: {stored} of 400 stored"
    );
    // The stopped run left the mailbox due: the next run takes it at once and completes it,
    // every message once.
    let output = database
        .imap_sync(&["sync", "--mailbox", &mailbox, "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["mailboxes"][0]["new"].as_u64().unwrap(),
        400 - stored,
        "{report}"
    );
    let shown: serde_json::Value = database.json(&["mailbox", "show", &mailbox, "--json"]);
    let messages: u64 = shown["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(messages, 400, "no duplicate, no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_never_sync_one_mailbox_at_once_and_a_killed_one_hands_over() {
    let database = Database::postgres().await;
    database.ok(&[
        "user",
        "add",
        "--email",
        "owner@example.test",
        "--name",
        "Owner",
    ]);
    let mut accounts = Vec::new();
    for index in 0..3 {
        let (login, raw) = seeded(&format!("pair{index}"), 20).await;
        let mailbox = add_mailbox(&database, "1", &login);
        accounts.push((mailbox, raw));
    }
    let env = [
        ("IMAP_SYNC__DAEMON__TICK_SECONDS", "1"),
        ("IMAP_SYNC__DAEMON__LEASE_SECONDS", "3"),
        ("IMAP_SYNC__DAEMON__POLL_SECONDS", "1"),
    ];
    let first = Daemon::start(&database, &env);
    let second = Daemon::start(&database, &env);
    wait_until(Duration::from_secs(30), "every mailbox synced", || {
        accounts
            .iter()
            .all(|(mailbox, _)| inbox_count(&second, mailbox) == 20)
    });
    // Keep both daemons busy for a while: new mail wakes the watchers, which race the
    // schedulers of both daemons for the leases.
    for round in 0..4u64 {
        for (index, (_, raw)) in accounts.iter_mut().enumerate() {
            append_one(raw, 500 + 10 * round + index as u64).await;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_until(Duration::from_secs(30), "the new mail synced", || {
        accounts
            .iter()
            .all(|(mailbox, _)| inbox_count(&second, mailbox) == 24)
    });
    let Database::Postgres(pg) = &database else {
        unreachable!()
    };
    let (client, connection) = tokio_postgres::connect(pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let runs: i64 = client
        .query_one("SELECT count(*) FROM sync_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(runs >= 6, "{runs} runs");
    let overlapping: i64 = client
        .query_one(
            "SELECT count(*) FROM sync_runs a JOIN sync_runs b \
             ON a.mailbox_id = b.mailbox_id AND a.id < b.id \
             AND b.started_at < coalesce(a.finished_at, 'infinity') \
             AND a.started_at < coalesce(b.finished_at, 'infinity')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overlapping, 0, "two syncs of one mailbox overlapped");

    // Kill the first daemon without a chance to release anything; new mail reaches the mirror
    // through the second once the leases expire.
    drop(first);
    for (index, (_, raw)) in accounts.iter_mut().enumerate() {
        append_one(raw, 900 + index as u64).await;
    }
    wait_until(
        Duration::from_secs(30),
        "the second daemon to take over",
        || {
            accounts
                .iter()
                .all(|(mailbox, _)| inbox_count(&second, mailbox) == 25)
        },
    );
    assert!(second.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_every_documented_route_and_refuses_a_missing_token() {
    let database = Database::sqlite();
    let (login, _raw) = seeded("api", 5).await;
    let token = "test-token-0123456789";
    let daemon = Daemon::start(
        &database,
        &[
            ("IMAP_SYNC__HTTP__TOKEN", token),
            ("IMAP_SYNC__DAEMON__TICK_SECONDS", "3600"),
        ],
    );
    let call =
        |method: &str, path: &str, body: Option<&str>| daemon.http(method, path, body, Some(token));
    let ok_json = |method: &str, path: &str, body: Option<&str>, expected: u16| {
        let (status, text) = call(method, path, body);
        assert_eq!(status, expected, "{method} {path}: {text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or(serde_json::Value::Null)
    };

    // Health needs no token; everything else does.
    assert_eq!(daemon.http("GET", "/healthz", None, None).0, 200);
    assert_eq!(daemon.http("GET", "/readyz", None, None).0, 200);
    assert_eq!(daemon.http("GET", "/api/users", None, None).0, 401);
    assert_eq!(daemon.http("GET", "/metrics", None, Some("wrong")).0, 401);

    let user = ok_json(
        "POST",
        "/api/users",
        Some(r#"{"email":"api@example.test","name":"Api"}"#),
        201,
    );
    assert_eq!(user["id"], 1);
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap();
    let body = serde_json::json!({
        "owner": 1, "email": login, "host": "127.0.0.1", "port": endpoint.plain_port,
        "security": "none", "password": endpoint.password,
    })
    .to_string();
    let mailbox = ok_json("POST", "/api/mailboxes", Some(&body), 201);
    assert_eq!(mailbox["has_password"], true);
    assert!(!mailbox.to_string().contains(&endpoint.password));
    assert_eq!(
        ok_json("POST", "/api/mailboxes/1/check", None, 200)["ok"],
        true
    );
    let synced = ok_json("POST", "/api/mailboxes/1/sync?wait=60", None, 200);
    assert_eq!(synced["new"], 5, "{synced}");
    let folders = ok_json(
        "PATCH",
        "/api/mailboxes/1/folders",
        Some(r#"{"enable":["Archive"]}"#),
        200,
    );
    assert!(
        folders
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Archive" && f["sync"] == true)
    );
    let emails = ok_json("GET", "/api/mailboxes/1/emails?folder=INBOX", None, 200);
    assert_eq!(emails.as_array().unwrap().len(), 5);
    let email_id = emails[0]["id"].as_i64().unwrap();
    let email = ok_json("GET", &format!("/api/emails/{email_id}"), None, 200);
    assert_eq!(email["folders"][0]["folder"], "INBOX");
    let flagged = ok_json(
        "PATCH",
        &format!("/api/emails/{email_id}/flags"),
        Some(r#"{"set":["\\Flagged"]}"#),
        202,
    );
    assert_eq!(flagged["pending_changes"], 1);
    // The next sync pushes it; the server then holds the flag.
    ok_json("POST", "/api/mailboxes/1/sync?wait=60", None, 200);
    let email = ok_json("GET", &format!("/api/emails/{email_id}"), None, 200);
    assert!(
        email["folders"][0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "\\Flagged"),
        "{email}"
    );
    ok_json("PATCH", "/api/users/1", Some(r#"{"name":"Renamed"}"#), 200);
    assert_eq!(ok_json("GET", "/api/users/1", None, 200)["name"], "Renamed");
    assert_eq!(
        ok_json("GET", "/api/users", None, 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok_json("GET", "/api/mailboxes", None, 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok_json("GET", "/api/mailboxes/1", None, 200)["state"],
        "success"
    );
    assert!(ok_json("GET", "/api/mailboxes/1/folders", None, 200).is_array());
    // Another login while mail is held: refused, then allowed with reset.
    let (status, _) = call(
        "PATCH",
        "/api/mailboxes/1",
        Some(r#"{"user":"someone-else"}"#),
    );
    assert_eq!(status, 409);
    assert!(ok_json("GET", "/api/users/1/login-notices", None, 200).is_array());
    assert!(ok_json("POST", "/api/users/1/login-notices/shown", None, 200).is_array());
    let (status, metrics) = call("GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        // Two "sync now" and the sync a flag change asks for.
        metrics.contains("imap_sync_runs_total{trigger=\"manual\",status=\"success\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imap_sync_lag_seconds{mailbox=\"1\"}"),
        "{metrics}"
    );

    // Every documented route exists: none answers 405 or the router's bare 404.
    let document = ok_json("GET", "/openapi.json", None, 200);
    let paths = document["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert!(operations >= 24, "{operations} operations documented");
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "999");
            let (status, body) = call(&method.to_ascii_uppercase(), &concrete, Some("{}"));
            assert_ne!(status, 405, "{method} {path}");
            if status == 404 {
                assert!(
                    body.contains("not found"),
                    "{method} {path} is not routed: {body}"
                );
            }
        }
    }
    assert_eq!(
        ok_json("DELETE", "/api/mailboxes/1", None, 204),
        serde_json::Value::Null
    );
    assert_eq!(
        ok_json("DELETE", "/api/users/1", None, 204),
        serde_json::Value::Null
    );
    assert!(daemon.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_4xx_naming_the_field_and_nothing_reaches_the_server() {
    let database = Database::sqlite();
    let (login, mut raw) = seeded("hostile-api", 2).await;
    raw.create_folder("Victim").await.unwrap();
    append_one(&mut raw, 77).await;
    let daemon = Daemon::start(&database, &[("IMAP_SYNC__DAEMON__TICK_SECONDS", "3600")]);
    let call = |method: &str, path: &str, body: Option<&str>| daemon.http(method, path, body, None);
    let refused = |method: &str, path: &str, body: &str, status: u16, field: &str| {
        let (got, text) = call(method, path, Some(body));
        assert_eq!(got, status, "{method} {path} {body}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["field"], field, "{text}");
        assert!(answer["error"].as_str().unwrap().len() > 10, "{text}");
    };
    let user = r#"{"email":"dup@example.test","name":"Dup"}"#;
    assert_eq!(call("POST", "/api/users", Some(user)).0, 201);
    refused("POST", "/api/users", user, 409, "email");
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap();
    let mailbox = |owner: i64, days: i64| {
        serde_json::json!({
            "owner": owner, "email": login, "host": "127.0.0.1", "port": endpoint.plain_port,
            "security": "none", "password": endpoint.password, "first_sync_days": days,
        })
        .to_string()
    };
    refused(
        "POST",
        "/api/mailboxes",
        &mailbox(999, 30),
        422,
        "owner_user_id",
    );
    let metadata = serde_json::json!({
        "owner": 1, "email": "meta@example.test", "host": "169.254.169.254", "port": 143,
        "security": "none", "password": "pw",
    })
    .to_string();
    refused("POST", "/api/mailboxes", &metadata, 422, "host");
    refused(
        "POST",
        "/api/mailboxes",
        &mailbox(1, 2_147_483_647),
        422,
        "first_sync_days",
    );
    assert_eq!(call("POST", "/api/mailboxes", Some(&mailbox(1, 30))).0, 201);
    refused(
        "PATCH",
        "/api/mailboxes/1",
        r#"{"first_sync_days":0}"#,
        422,
        "first_sync_days",
    );
    refused(
        "PATCH",
        "/api/mailboxes/1",
        r#"{"host":"evil host\r\nX"}"#,
        422,
        "host",
    );
    let (status, text) = call(
        "PATCH",
        "/api/mailboxes/1/folders",
        Some(r#"{"enable":["Victim"]}"#),
    );
    assert_eq!(status, 200, "{text}");
    let (status, text) = call("POST", "/api/mailboxes/1/sync?wait=60", None);
    assert_eq!(status, 200, "{text}");
    let (_, emails) = call("GET", "/api/mailboxes/1/emails?folder=INBOX", None);
    let emails: serde_json::Value = serde_json::from_str(&emails).unwrap();
    let email_id = emails[0]["id"].as_i64().unwrap();

    // The injection payload of issue 15: refused whole, nothing recorded, nothing sent.
    let payload = serde_json::json!({
        "set": ["\\Seen", "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen"]
    })
    .to_string();
    refused(
        "PATCH",
        &format!("/api/emails/{email_id}/flags"),
        &payload,
        422,
        "flag",
    );
    for bad in ["two words", "\\Recent", "caf\u{e9}", ""] {
        let body = serde_json::json!({ "set": [bad] }).to_string();
        refused(
            "PATCH",
            &format!("/api/emails/{email_id}/flags"),
            &body,
            422,
            "flag",
        );
    }
    let (status, text) = call("POST", "/api/mailboxes/1/sync?wait=60", None);
    assert_eq!(status, 200, "{text}");
    let folders = raw.list_all().await.unwrap();
    assert!(folders.iter().any(|f| f.contains("Victim")), "{folders:?}");
    let (_, email) = call("GET", &format!("/api/emails/{email_id}"), None);
    assert!(
        !email.contains("\\Flagged") && !email.contains("\\Seen"),
        "{email}"
    );

    // The mirror holds the user's mail: owner-only, like its key, WAL and shared memory.
    let Database::Sqlite(path) = &database else {
        unreachable!()
    };
    for suffix in ["", ".key", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }

    // Without a token: a foreign Host (DNS rebinding), a foreign Origin, a form's content type.
    let address = daemon.address.clone();
    let send = |method: &str, path: &str, headers: &[(&str, String)]| {
        http_with_headers(&address, method, path, Some("{}"), headers).0
    };
    let host = ("Host", address.clone());
    let json = ("Content-Type", "application/json".to_owned());
    assert_eq!(
        send(
            "GET",
            "/api/users",
            &[("Host", "evil.example".into()), json.clone()]
        ),
        403
    );
    assert_eq!(
        send(
            "GET",
            "/api/users",
            &[(
                "Host",
                format!("evil.example:{}", address.rsplit(':').next().unwrap())
            )]
        ),
        403
    );
    let evil_origin = ("Origin", "http://evil.example".to_owned());
    assert_eq!(
        send(
            "POST",
            "/api/mailboxes/1/sync",
            &[host.clone(), json.clone(), evil_origin.clone()]
        ),
        403
    );
    let form = ("Content-Type", "text/plain".to_owned());
    assert_eq!(
        send(
            "POST",
            "/api/users/1/login-notices/shown",
            &[host.clone(), form.clone()]
        ),
        415
    );
    assert_eq!(
        send(
            "POST",
            "/api/users/1/login-notices/shown",
            std::slice::from_ref(&host)
        ),
        415
    );
    let same_origin = ("Origin", format!("http://{address}"));
    assert_eq!(
        send(
            "POST",
            "/api/users/1/login-notices/shown",
            &[host.clone(), json.clone(), same_origin]
        ),
        200
    );
    assert!(daemon.terminate(Duration::from_secs(15)).success());

    // With a token the token is the proof: the same requests are served.
    let token = "hostile-token-0123456789";
    let daemon = Daemon::start(
        &database,
        &[
            ("IMAP_SYNC__HTTP__TOKEN", token),
            ("IMAP_SYNC__DAEMON__TICK_SECONDS", "3600"),
        ],
    );
    let address = daemon.address.clone();
    let bearer = ("Authorization", format!("Bearer {token}"));
    let sent = |method: &str, path: &str, headers: &[(&str, String)]| {
        http_with_headers(&address, method, path, Some("{}"), headers).0
    };
    assert_eq!(
        sent(
            "GET",
            "/api/users",
            &[("Host", "imap-sync.internal".into()), bearer.clone()]
        ),
        200
    );
    assert_eq!(
        sent(
            "POST",
            "/api/users/1/login-notices/shown",
            &[("Host", address.clone()), bearer.clone(), form, evil_origin]
        ),
        200
    );
    assert!(daemon.terminate(Duration::from_secs(15)).success());
}

/// Issue 15: the scheduler panics on its first two ticks (a failpoint): `/readyz` is unready
/// while it waits to restart, `/metrics` counts both restarts, and it then syncs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_scheduler_is_restarted_counted_and_unready_meanwhile() {
    let database = Database::sqlite();
    let (login, _raw) = seeded("scheduler-panic", 4).await;
    database.ok(&["user", "add", "--email", "sp@example.test", "--name", "Sp"]);
    let mailbox = add_mailbox(&database, "1", &login);
    let daemon = Daemon::start(
        &database,
        &[
            ("IMAP_SYNC__DAEMON__TICK_SECONDS", "1"),
            ("IMAP_SYNC_FAILPOINTS", "scheduler-panic:2"),
        ],
    );
    let mut saw_unready = false;
    wait_until(Duration::from_secs(30), "two restarts, then ready", || {
        let (status, body) = daemon.http("GET", "/readyz", None, None);
        if status == 503 {
            assert!(body.contains("scheduler"), "{body}");
            saw_unready = true;
        }
        status == 200 && daemon.metric("imap_sync_task_restarts_total{task=\"scheduler\"}") == 2.0
    });
    assert!(saw_unready, "/readyz never reported the scheduler down");
    wait_until(
        Duration::from_secs(30),
        "the first sync after the restarts",
        || inbox_count(&daemon, &mailbox) == 4,
    );
    assert!(daemon.metric("imap_sync_runs_total{trigger=\"schedule\",status=\"success\"}") >= 1.0);
    assert!(daemon.terminate(Duration::from_secs(15)).success());
}

#[test]
fn a_public_listen_address_needs_a_token() {
    let database = Database::sqlite();
    let output = database
        .imap_sync(&["run"])
        .env("IMAP_SYNC__HTTP__LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http.token"), "{stderr}");
}
