//! imap-connector (2/2) against the rig's Dovecot: search, changes, flags, move, IDLE.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use imap_connector::{FlagState, ImapConnector, MailboxEvent, SearchQuery, Security, WaitedVia};
use integration_tests::connector_config;
use test_support::{DovecotEndpoint, DovecotVariant, RawImap, shared_dovecot};

fn dovecot(variant: DovecotVariant) -> &'static DovecotEndpoint {
    shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"))
}

async fn mailbox(variant: DovecotVariant, purpose: &str) -> (ImapConnector, RawImap) {
    let endpoint = dovecot(variant);
    let user = endpoint.fresh_user(purpose);
    let raw = RawImap::login_to(endpoint, &user).await.unwrap();
    (
        ImapConnector::new(connector_config(endpoint, Security::None, &user)),
        raw,
    )
}

fn message(
    from: &str,
    to: &str,
    cc: &str,
    subject: &str,
    date: &str,
    body: &str,
    extra: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nBcc: hidden-{from}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{subject}-{from}>\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .replace("Subject: Grüße", "Subject: =?UTF-8?B?R3LDvMOfZQ==?=")
    .into_bytes()
}

#[tokio::test]
async fn every_search_operator_finds_the_right_uids() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Full, "search-ops").await;
    let received = |day| Some(Utc.with_ymd_and_hms(2026, 10, day, 12, 0, 0).unwrap());
    let seeds: [(&[&str], Vec<u8>, u32); 5] = [
        (
            &["\\Seen"],
            message(
                "alice@x.test",
                "bob@x.test",
                "carol@x.test",
                "invoice",
                "Mon, 05 Oct 2026 10:00:00 +0000",
                "pay now",
                "X-Mailer: Outlook 16\r\n",
            ),
            5,
        ),
        (
            &["\\Flagged"],
            message(
                "bob@x.test",
                "alice@x.test",
                "dave@x.test",
                "receipt",
                "Sat, 10 Oct 2026 10:00:00 +0000",
                "thanks for paying",
                "",
            ),
            10,
        ),
        (
            &["\\Answered", "$Label1"],
            message(
                "carol@x.test",
                "erin@x.test",
                "frank@x.test",
                "meeting",
                "Thu, 15 Oct 2026 10:00:00 +0000",
                "agenda attached",
                "",
            ),
            15,
        ),
        (
            &["\\Deleted"],
            message(
                "dave@x.test",
                "bob@x.test",
                "alice@x.test",
                "Grüße",
                "Tue, 20 Oct 2026 10:00:00 +0000",
                &"long ".repeat(2000),
                "",
            ),
            20,
        ),
        (
            &[],
            message(
                "erin@x.test",
                "zoe@x.test",
                "yan@x.test",
                "invoice reminder",
                "Sun, 25 Oct 2026 10:00:00 +0000",
                "second notice",
                "",
            ),
            25,
        ),
    ];
    for (flags, bytes, day) in &seeds {
        raw.append("INBOX", flags, received(*day), bytes)
            .await
            .unwrap();
    }
    connector.select("INBOX").await.unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
    let cases: Vec<(&str, SearchQuery, Vec<u32>)> = vec![
        ("from", SearchQuery::new().from("alice@x.test"), vec![1]),
        ("to", SearchQuery::new().to("bob@x.test"), vec![1, 4]),
        ("cc", SearchQuery::new().cc("dave@x.test"), vec![2]),
        ("bcc", SearchQuery::new().bcc("hidden-carol"), vec![3]),
        (
            // Substring match: message 1's Bcc "hidden-alice@x.test" holds it too.
            "participants",
            SearchQuery::new().participants("alice@x.test"),
            vec![1, 2, 4],
        ),
        ("subject", SearchQuery::new().subject("invoice"), vec![1, 5]),
        (
            "subject non-ASCII",
            SearchQuery::new().subject("Grüße"),
            vec![4],
        ),
        ("body", SearchQuery::new().body("paying"), vec![2]),
        ("text", SearchQuery::new().text("agenda"), vec![3]),
        (
            "header",
            SearchQuery::new().header("X-Mailer", "Outlook"),
            vec![1],
        ),
        (
            "sent",
            SearchQuery::new().sent(Some(day(10)), Some(day(20))),
            vec![2, 3],
        ),
        (
            "received",
            SearchQuery::new().received(Some(day(15)), None),
            vec![3, 4, 5],
        ),
        ("seen", SearchQuery::new().seen(true), vec![1]),
        ("unseen", SearchQuery::new().seen(false), vec![2, 3, 4, 5]),
        ("flagged", SearchQuery::new().flagged(true), vec![2]),
        ("answered", SearchQuery::new().answered(true), vec![3]),
        ("deleted", SearchQuery::new().deleted(true), vec![4]),
        ("keyword", SearchQuery::new().keyword("$Label1"), vec![3]),
        ("uids", SearchQuery::new().uids(4, None), vec![4, 5]),
        ("larger", SearchQuery::new().larger(5000), vec![4]),
        (
            "smaller",
            SearchQuery::new().smaller(5000),
            vec![1, 2, 3, 5],
        ),
        (
            "or of three",
            SearchQuery::new().any([
                SearchQuery::new().subject("meeting"),
                SearchQuery::new().from("alice@x.test"),
                SearchQuery::new().flagged(true),
            ]),
            vec![1, 2, 3],
        ),
        (
            "not",
            SearchQuery::new().not(SearchQuery::new().subject("invoice")),
            vec![2, 3, 4],
        ),
        (
            "and",
            SearchQuery::new().subject("invoice").seen(false),
            vec![5],
        ),
        ("all", SearchQuery::new(), vec![1, 2, 3, 4, 5]),
    ];
    for (name, query, expected) in cases {
        assert_eq!(
            connector.find_uids(&query).await.unwrap(),
            expected,
            "{name}: {}",
            query.to_imap().criteria
        );
    }
    let mut found = connector
        .find_items(
            &SearchQuery::new().subject("receipt"),
            imap_connector::FetchParts::Headers,
        )
        .await
        .unwrap();
    assert_eq!(found.next().await.unwrap().unwrap().uid, 2);
}

async fn expunge_and_flag_from_a_second_connection(raw: &mut RawImap) {
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("UID STORE 2 +FLAGS (\\Flagged)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    raw.command("UID STORE 3 +FLAGS (\\Deleted)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    raw.command("EXPUNGE").await.unwrap().ok().unwrap();
}

#[tokio::test]
async fn changedsince_and_vanished_follow_another_connections_changes() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Full, "qresync").await;
    for n in 1..=4 {
        raw.append(
            "INBOX",
            &[],
            None,
            format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .unwrap();
    }
    assert!(connector.enable_qresync().await.unwrap());
    let selected = connector.select("INBOX").await.unwrap();
    let (uid_validity, modseq) = (selected.uid_validity, selected.highest_modseq.unwrap());

    expunge_and_flag_from_a_second_connection(&mut raw).await;
    let changes = connector.changes_since(modseq, 4).await.unwrap();
    assert_eq!(changes.vanished, [3]);
    let changed: Vec<(Option<u32>, Vec<String>)> = changes
        .changed
        .iter()
        .map(|c| (c.uid, c.flags.clone()))
        .collect();
    assert_eq!(changed, [(Some(2), vec!["\\Flagged".to_owned()])]);
    assert!(changes.highest_modseq.unwrap() > modseq);

    // The same, learnt at SELECT time by a new connection.
    let endpoint = dovecot(DovecotVariant::Full);
    let mut fresh = ImapConnector::new(connector.config().clone());
    let (_, at_select) = fresh
        .select_qresync("INBOX", uid_validity, modseq, Some("1:4"))
        .await
        .unwrap();
    assert_eq!(at_select.vanished, [3]);
    assert_eq!(
        at_select.changed.iter().map(|c| c.uid).collect::<Vec<_>>(),
        [Some(2)]
    );
    let _ = endpoint;
    let select = fresh
        .command_log()
        .into_iter()
        .find(|c| c.name == "SELECT")
        .unwrap();
    assert!(select.extensions.contains(&"QRESYNC"), "{select:?}");
}

#[tokio::test]
async fn the_minimal_server_is_followed_through_the_fallbacks() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Minimal, "fallback").await;
    for n in 1..=4 {
        raw.append(
            "INBOX",
            &["\\Seen"],
            None,
            format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .unwrap();
    }
    assert!(!connector.enable_qresync().await.unwrap());
    connector.select("INBOX").await.unwrap();
    let before: BTreeSet<u32> = connector.all_uids().await.unwrap().into_iter().collect();
    expunge_and_flag_from_a_second_connection(&mut raw).await;
    let after: BTreeSet<u32> = connector.all_uids().await.unwrap().into_iter().collect();
    assert_eq!(before.difference(&after).copied().collect::<Vec<_>>(), [3]);
    let flags: Vec<FlagState> = connector.flags_of(&[1, 2, 4]).await.unwrap();
    let flagged: Vec<Option<u32>> = flags
        .iter()
        .filter(|f| f.flags.contains(&"\\Flagged".to_owned()))
        .map(|f| f.uid)
        .collect();
    assert_eq!(flagged, [Some(2)]);

    connector
        .add_flags(&[1], &["\\Answered"], Some(1))
        .await
        .unwrap();
    let moved = connector.move_uids(&[4], "Archive").await.unwrap();
    assert!(
        !moved.expunged,
        "no MOVE, no UIDPLUS: copied and marked deleted, not expunged (Dovecot still reports COPYUID, which is kept)"
    );

    for command in connector.command_log() {
        assert!(
            !["ENABLE", "UID MOVE", "UID EXPUNGE", "COMPRESS", "IDLE"]
                .contains(&command.name.as_str()),
            "{command:?} relies on a hidden extension"
        );
        assert!(
            command.extensions.iter().all(|e| ![
                "CONDSTORE",
                "QRESYNC",
                "CHANGEDSINCE",
                "UNCHANGEDSINCE",
                "MODSEQ",
                "RETURN"
            ]
            .contains(e)),
            "{command:?} relies on a hidden extension"
        );
    }
}

#[tokio::test]
async fn flags_are_added_and_removed_one_by_one_and_unchangedsince_protects_server_changes() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Full, "flags").await;
    raw.append(
        "INBOX",
        &["\\Flagged", "\\Answered"],
        None,
        b"Subject: a\r\n\r\nx\r\n",
    )
    .await
    .unwrap();
    raw.append("INBOX", &[], None, b"Subject: b\r\n\r\nx\r\n")
        .await
        .unwrap();
    let selected = connector.select("INBOX").await.unwrap();

    assert!(
        connector
            .add_flags(&[1], &["\\Seen"], None)
            .await
            .unwrap()
            .is_empty()
    );
    let flags = connector.flags_of(&[1]).await.unwrap().remove(0).flags;
    let flags: BTreeSet<&str> = flags.iter().map(String::as_str).collect();
    assert_eq!(
        flags,
        BTreeSet::from(["\\Seen", "\\Flagged", "\\Answered"]),
        "nothing else wiped"
    );
    connector
        .remove_flags(&[1], &["\\Flagged"], None)
        .await
        .unwrap();
    let flags = connector.flags_of(&[1]).await.unwrap().remove(0).flags;
    assert_eq!(
        flags.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["\\Seen", "\\Answered"])
    );

    // Message 2 changes on the server after the MODSEQ our change was based on.
    let based_on = selected.highest_modseq.unwrap();
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("UID STORE 2 +FLAGS (\\Flagged)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    let refused = connector
        .add_flags(&[2], &["\\Seen"], Some(based_on))
        .await
        .unwrap();
    assert_eq!(refused, [2], "the server's change wins");
    let flags = connector.flags_of(&[2]).await.unwrap().remove(0).flags;
    assert_eq!(flags, ["\\Flagged"]);
}

#[tokio::test]
async fn move_returns_the_new_uids() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Full, "move").await;
    for n in 1..=3 {
        raw.append(
            "INBOX",
            &[],
            None,
            format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .unwrap();
    }
    raw.append("Archive", &[], None, b"Subject: already there\r\n\r\nx\r\n")
        .await
        .unwrap();
    connector.select("INBOX").await.unwrap();
    let moved = connector.move_uids(&[1, 3], "Archive").await.unwrap();
    assert!(moved.expunged);
    assert_eq!(moved.mapping, [(1, 2), (3, 3)]);
    assert!(moved.uid_validity.is_some());
    assert_eq!(connector.all_uids().await.unwrap(), [2]);
    let copied = connector.copy_uids(&[2], "Archive").await.unwrap();
    assert_eq!(copied.mapping, [(2, 4)]);
    assert!(connector.command_log().iter().any(|c| c.name == "UID MOVE"));
}

#[tokio::test]
async fn idle_reports_an_append_from_another_connection() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Full, "idle").await;
    connector.select("INBOX").await.unwrap();
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        raw.append("INBOX", &[], None, b"Subject: new\r\n\r\nx\r\n")
            .await
            .unwrap();
    });
    let outcome = connector
        .wait_for_changes(
            Duration::from_secs(30),
            Duration::from_secs(30),
            std::future::pending(),
        )
        .await
        .unwrap();
    appender.await.unwrap();
    assert_eq!(outcome.via, WaitedVia::Idle);
    assert!(
        outcome.events.contains(&MailboxEvent::Exists(1)),
        "{outcome:?}"
    );
    assert!(connector.command_log().iter().any(|c| c.name == "IDLE"));
    // The connection is usable after IDLE.
    assert_eq!(connector.all_uids().await.unwrap(), [1]);

    // An interrupt ends a wait at once.
    let started = std::time::Instant::now();
    let outcome = connector
        .wait_for_changes(
            Duration::from_secs(30),
            Duration::from_secs(30),
            tokio::time::sleep(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    assert!(outcome.interrupted && outcome.events.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn without_idle_changes_are_polled() {
    let (mut connector, mut raw) = mailbox(DovecotVariant::Minimal, "poll").await;
    connector.select("INBOX").await.unwrap();
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        raw.append("INBOX", &[], None, b"Subject: new\r\n\r\nx\r\n")
            .await
            .unwrap();
    });
    let outcome = connector
        .wait_for_changes(
            Duration::from_secs(20),
            Duration::from_millis(200),
            std::future::pending(),
        )
        .await
        .unwrap();
    appender.await.unwrap();
    assert_eq!(outcome.via, WaitedVia::Poll);
    assert!(
        outcome.events.contains(&MailboxEvent::Exists(1)),
        "{outcome:?}"
    );
    assert!(!connector.command_log().iter().any(|c| c.name == "IDLE"));
}
