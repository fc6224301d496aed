//! Credential-failure notices delivered from the outbox: email to a real SMTP listener on
//! loopback, once per recipient per episode; a hung SMTP server holds nothing up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use email_model::secrets::{Keyring, SecretKey};
use email_model::{
    AuthKind, CREDENTIAL_NOTIFICATIONS_CAPABILITY, ImapSettings, NewMailbox, NewUser, Security,
    SqliteStore, Store, StoreOptions,
};
use integration_tests::workspace_root;
use notify::{Dispatcher, DispatcherConfig, EmailNotifier, Notifier, SmtpSecurity, SmtpSettings};
use secrecy::SecretString;
use test_support::TestSqlite;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A mail received by the SMTP sink.
#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    data: String,
}

/// An SMTP listener on loopback that accepts every mail (or, when `hang`, never answers).
async fn smtp_sink(hang: bool) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let store = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(socket);
                    return;
                }
                let mut stream = BufReader::new(socket);
                stream
                    .get_mut()
                    .write_all(b"220 sink ready\r\n")
                    .await
                    .unwrap();
                let mut to = Vec::new();
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        stream.get_mut().write_all(b"354 go on\r\n").await.unwrap();
                        let mut data = String::new();
                        loop {
                            let mut part = String::new();
                            stream.read_line(&mut part).await.unwrap();
                            if part == ".\r\n" {
                                break;
                            }
                            data.push_str(&part);
                        }
                        store.lock().unwrap().push(Received {
                            to: std::mem::take(&mut to),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        stream.get_mut().write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    stream.get_mut().write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

fn email_channel(port: u16) -> Box<dyn Notifier> {
    Box::new(
        EmailNotifier::new(&SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            user: None,
            password: None,
            from: "imap-sync <noreply@example.test>".into(),
            timeout: Duration::from_secs(1),
        })
        .unwrap(),
    )
}

fn store() -> (SqliteStore, TestSqlite) {
    let file = TestSqlite::new(&workspace_root().join("migrations/sqlite")).unwrap();
    let store = SqliteStore::open(
        file.path(),
        Keyring::new(SecretKey::generate("k1").unwrap(), vec![]),
        StoreOptions::default(),
    )
    .unwrap();
    (store, file)
}

async fn user<S: Store>(store: &S, email: &str, capable: bool, enabled: bool) -> i64 {
    store
        .create_user(NewUser {
            email: email.into(),
            name: email.into(),
            enabled,
            capabilities: if capable {
                vec![CREDENTIAL_NOTIFICATIONS_CAPABILITY.into()]
            } else {
                vec![]
            },
        })
        .await
        .unwrap()
        .id
}

async fn mailbox<S: Store>(store: &S, owner: Option<i64>, email: &str) -> i64 {
    store
        .create_mailbox(NewMailbox {
            owner_user_id: owner,
            email: email.into(),
            imap: ImapSettings {
                host: "imap.example.test".into(),
                port: 993,
                security: Security::Tls,
                user: format!("login-{email}"),
            },
            auth_kind: AuthKind::Password,
            secret: Some(SecretString::from("pw".to_owned())),
            oauth_settings: None,
            first_sync_days: 365,
        })
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_gets_one_mail_per_episode_and_none_for_retries() {
    let (store, _file) = store();
    let owner = user(&store, "owner@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "owner@example.test").await;
    let (port, mails) = smtp_sink(false).await;
    let dispatcher = Dispatcher::new(
        store.clone(),
        vec![email_channel(port)],
        DispatcherConfig::default(),
    );

    store
        .open_credential_episode(mailbox, "[AUTHENTICATIONFAILED] Invalid credentials".into())
        .await
        .unwrap();
    store
        .open_credential_episode(mailbox, "[AUTHENTICATIONFAILED] Invalid credentials".into())
        .await
        .unwrap();
    let report = dispatcher.drain_once().await.unwrap();
    assert_eq!(
        (report.delivered, report.no_channel),
        (1, 1),
        "email sent; push has no channel here"
    );
    assert!(
        dispatcher.drain_once().await.unwrap().delivered == 0,
        "delivered once"
    );
    store
        .open_credential_episode(mailbox, "again".into())
        .await
        .unwrap();
    assert_eq!(
        dispatcher.drain_once().await.unwrap().delivered,
        0,
        "a retry inside the episode sends nothing"
    );

    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["owner@example.test"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: Mail sync stopped for owner@example.test"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0].data.contains("imap.example.test")
            && mails[0].data.contains("login-owner@example.test")
    );

    // The login notice, once.
    let notices = notify::login_notices(&store, owner).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].1.body.contains("AUTHENTICATIONFAILED"));
    assert!(
        notify::login_notices(&store, owner)
            .await
            .unwrap()
            .is_empty()
    );

    // Closed by a successful sync, then a new failure: a new mail.
    store.close_credential_episode(mailbox).await.unwrap();
    store
        .open_credential_episode(mailbox, "refused again".into())
        .await
        .unwrap();
    assert_eq!(dispatcher.drain_once().await.unwrap().delivered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_mailbox_reaches_enabled_capability_holders_only() {
    let (store, _file) = store();
    user(&store, "admin1@example.test", true, true).await;
    user(&store, "admin2@example.test", true, true).await;
    user(&store, "disabled@example.test", true, false).await;
    user(&store, "plain@example.test", false, true).await;
    let system = mailbox(&store, None, "support@example.test").await;
    let (port, mails) = smtp_sink(false).await;
    let dispatcher = Dispatcher::new(
        store.clone(),
        vec![email_channel(port)],
        DispatcherConfig::default(),
    );
    store
        .open_credential_episode(system, "refused".into())
        .await
        .unwrap();
    assert_eq!(dispatcher.drain_once().await.unwrap().delivered, 2);
    let mut recipients: Vec<String> = mails
        .lock()
        .unwrap()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["admin1@example.test", "admin2@example.test"]);

    // A capability granted while the episode is open shows the login notice at the next login.
    let plain = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == "plain@example.test")
        .unwrap()
        .id;
    assert!(
        notify::login_notices(&store, plain)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_user_capabilities(plain, vec![CREDENTIAL_NOTIFICATIONS_CAPABILITY.into()])
        .await
        .unwrap();
    assert_eq!(notify::login_notices(&store, plain).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_loop_delivers_what_arrives_while_it_runs() {
    let (store, _file) = store();
    let owner = user(&store, "loop@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "loop@example.test").await;
    let (port, mails) = smtp_sink(false).await;
    let dispatcher = Dispatcher::new(
        store.clone(),
        vec![email_channel(port)],
        DispatcherConfig::default(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        dispatcher
            .run(Duration::from_millis(100), async {
                let _ = stopped.await;
            })
            .await;
    });
    store
        .open_credential_episode(mailbox, "refused".into())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while mails.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
    assert_eq!(mails.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_smtp_server_holds_nothing_up_and_the_mail_goes_out_later() {
    let (store, _file) = store();
    let owner = user(&store, "patient@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "patient@example.test").await;
    store
        .open_credential_episode(mailbox, "refused".into())
        .await
        .unwrap();

    let (hung_port, _) = smtp_sink(true).await;
    let config = DispatcherConfig {
        backoff: Duration::ZERO,
        delivery_timeout: Duration::from_secs(2),
        ..DispatcherConfig::default()
    };
    let stuck = Dispatcher::new(
        store.clone(),
        vec![email_channel(hung_port)],
        config.clone(),
    );
    let started = Instant::now();
    let report = stuck.drain_once().await.unwrap();
    assert_eq!(report.failed, 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the delivery timeout: {:?}",
        started.elapsed()
    );

    let (port, mails) = smtp_sink(false).await;
    let working = Dispatcher::new(store.clone(), vec![email_channel(port)], config);
    assert_eq!(
        working.drain_once().await.unwrap().delivered,
        1,
        "retried once a working server is back"
    );
    assert_eq!(mails.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_reaches_the_owners_websocket_and_database_listeners_only() {
    use futures::StreamExt;
    let database = test_support::TestDatabase::new(&workspace_root().join("migrations/postgres"))
        .await
        .unwrap();
    let store = email_model::PgStore::connect(
        database.url(),
        Keyring::new(SecretKey::generate("k1").unwrap(), vec![]),
        StoreOptions::default(),
    )
    .unwrap();
    let owner = user(&store, "o@example.test", false, true).await;
    let stranger = user(&store, "s@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "o@example.test").await;

    // Database listeners.
    let (client, mut connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, mut listened) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = sender.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", notify::PUSH_NOTIFY_CHANNEL))
        .await
        .unwrap();

    // The WebSocket route on a test server.
    let hub = notify::PushHub::new();
    let tokens = Arc::new(notify::PushTokens::new(SecretString::from(
        "shared-secret".to_owned(),
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        axum::serve(
            listener,
            notify::websocket_routes(hub.clone(), tokens.clone()),
        )
        .into_future(),
    );
    let url = |token: &str| format!("ws://127.0.0.1:{port}/notifications/ws?token={token}");
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);

    let expired = tokens.mint(owner, chrono::Utc::now() - chrono::Duration::seconds(5));
    let forged =
        notify::PushTokens::new(SecretString::from("not-the-secret".to_owned())).mint(owner, soon);
    for (what, token) in [
        ("expired", expired),
        ("forged", forged),
        ("garbage", "x.y.z".to_owned()),
    ] {
        match tokio_tungstenite::connect_async(url(&token)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{what}");
            }
            other => panic!("{what} token accepted: {other:?}"),
        }
    }
    let (mut owner_socket, _) = tokio_tungstenite::connect_async(url(&tokens.mint(owner, soon)))
        .await
        .unwrap();
    let (mut stranger_socket, _) =
        tokio_tungstenite::connect_async(url(&tokens.mint(stranger, soon)))
            .await
            .unwrap();
    // The route subscribes on upgrade: give it a moment before publishing.
    tokio::time::sleep(Duration::from_millis(200)).await;

    store
        .open_credential_episode(mailbox, "refused".into())
        .await
        .unwrap();
    let push: Box<dyn Notifier> = Box::new(notify::PushNotifier::new(hub.clone(), store.clone()));
    let report = Dispatcher::new(store.clone(), vec![push], DispatcherConfig::default())
        .drain_once()
        .await
        .unwrap();
    assert_eq!(report.delivered, 1);

    let received = tokio::time::timeout(Duration::from_secs(5), owner_socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(received.to_text().unwrap()).unwrap();
    assert_eq!(
        (json["user"].as_i64(), json["mailbox"].as_i64()),
        (Some(owner), Some(mailbox))
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stranger_socket.next())
            .await
            .is_err(),
        "another user's socket gets nothing"
    );
    let listened = tokio::time::timeout(Duration::from_secs(5), listened.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listened).unwrap(),
        json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_reminder_goes_out_once_while_the_episode_stays_open() {
    let (store, _file) = store();
    let owner = user(&store, "remind@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "remind@example.test").await;
    let (port, mails) = smtp_sink(false).await;
    store
        .open_credential_episode(mailbox, "refused".into())
        .await
        .unwrap();

    let off = Dispatcher::new(
        store.clone(),
        vec![email_channel(port)],
        DispatcherConfig::default(),
    );
    assert_eq!(
        off.drain_once().await.unwrap().delivered,
        1,
        "the notice; no reminder by default"
    );
    let later = DispatcherConfig {
        reminder_after: Some(Duration::from_secs(3600)),
        ..DispatcherConfig::default()
    };
    let not_yet = Dispatcher::new(store.clone(), vec![email_channel(port)], later);
    assert_eq!(
        not_yet.drain_once().await.unwrap().delivered,
        0,
        "not before the delay"
    );
    let due = DispatcherConfig {
        reminder_after: Some(Duration::ZERO),
        ..DispatcherConfig::default()
    };
    let reminding = Dispatcher::new(store.clone(), vec![email_channel(port)], due);
    assert_eq!(reminding.drain_once().await.unwrap().delivered, 1);
    assert_eq!(
        reminding.drain_once().await.unwrap().delivered,
        0,
        "one reminder, not one per drain"
    );
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1]
            .data
            .contains("Subject: Reminder: Mail sync stopped"),
        "{}",
        mails[1].data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_queued_notice_wakes_the_dispatcher_at_once() {
    let database = test_support::TestDatabase::new(&workspace_root().join("migrations/postgres"))
        .await
        .unwrap();
    let store = email_model::PgStore::connect(
        database.url(),
        Keyring::new(SecretKey::generate("k1").unwrap(), vec![]),
        StoreOptions::default(),
    )
    .unwrap();
    let owner = user(&store, "wake@example.test", false, true).await;
    let mailbox = mailbox(&store, Some(owner), "wake@example.test").await;
    let (port, mails) = smtp_sink(false).await;
    let mut wakeups = store
        .listen(email_model::OUTBOX_NOTIFY_CHANNEL)
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        vec![email_channel(port)],
        DispatcherConfig::default(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        // An hour between polls: only the wakeup can deliver within the test.
        dispatcher
            .run_with_wakeups(Duration::from_secs(3600), Some(&mut wakeups), async {
                let _ = stopped.await;
            })
            .await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    store
        .open_credential_episode(mailbox, "refused".into())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while mails.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "not woken by NOTIFY");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
}
