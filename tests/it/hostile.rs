//! Hostile input (issue 15): values that would break an IMAP command never reach the wire,
//! whoever passes them — the connector refuses them itself, the store refuses to record them.

use std::collections::BTreeSet;

use imap_connector::{ConnectorError, Credentials, ImapConnector, SearchQuery, Security};
use integration_tests::connector_config;

use crate::connector::names;
use test_support::{DovecotVariant, RawImap, shared_dovecot};

/// The payload that deleted a folder through `PATCH /api/emails/ID/flags` before this fix.
const INJECTION: &str = "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen";

#[tokio::test]
async fn the_connector_refuses_arguments_that_would_splice_a_second_command() {
    for variant in [DovecotVariant::Full, DovecotVariant::Minimal] {
        let endpoint = shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"));
        let user = endpoint.fresh_user("hostile-connector");
        let mut raw = RawImap::login_to(endpoint, &user).await.unwrap();
        raw.create_folder("Victim").await.unwrap();
        raw.append(
            "INBOX",
            &[],
            None,
            b"From: a@x.test\r\nSubject: one\r\nMessage-ID: <one@x>\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();
        let mut connector = ImapConnector::new(connector_config(endpoint, Security::None, &user));
        connector.select("INBOX").await.unwrap();
        let before = names(&connector);

        for result in [
            connector.add_flags(&[1], &[INJECTION], None).await,
            connector
                .remove_flags(&[1], &["\\Seen", INJECTION], Some(1))
                .await,
            connector.add_flags(&[1], &["two words"], None).await,
            connector.add_flags(&[1], &["\\Recent"], None).await,
        ] {
            assert!(
                matches!(&result, Err(ConnectorError::InvalidArgument { argument, .. }) if argument == "flag"),
                "{result:?}"
            );
        }
        let spliced = connector.uid_search("ALL\r\nX1 DELETE Victim").await;
        assert!(
            matches!(&spliced, Err(ConnectorError::InvalidArgument { argument, .. }) if argument == "command"),
            "{spliced:?}"
        );
        let nul = connector.uid_search("TEXT \"a\0b\"").await;
        assert!(
            matches!(nul, Err(ConnectorError::InvalidArgument { .. })),
            "{nul:?}"
        );
        let copied = connector.copy_uids(&[1], "Victim\r\nX DELETE INBOX").await;
        assert!(
            matches!(&copied, Err(ConnectorError::InvalidArgument { argument, .. }) if argument == "folder"),
            "{copied:?}"
        );
        let selected = connector.select("INBOX\nX").await;
        assert!(
            matches!(selected, Err(ConnectorError::InvalidArgument { .. })),
            "{selected:?}"
        );
        // Nothing of the refused commands was written.
        assert_eq!(names(&connector), before, "{variant:?}");

        // A line break in search text is sent as a literal where the server takes LITERAL+ (both
        // rig variants do), and refused where it would have to be quoted; one command either way.
        let query = SearchQuery::new().subject("one\r\nX1 DELETE Victim");
        assert_eq!(
            connector.find_uids(&query).await.unwrap(),
            Vec::<u32>::new()
        );
        let quoted = connector.uid_search(&query.compile(false).criteria).await;
        assert!(
            matches!(&quoted, Err(ConnectorError::InvalidArgument { argument, .. }) if argument == "command"),
            "{quoted:?}"
        );
        connector.logout().await.unwrap();
        let folders = raw.list_all().await.unwrap();
        assert!(folders.iter().any(|f| f.contains("Victim")), "{folders:?}");
        assert!(folders.iter().any(|f| f.contains("INBOX")), "{folders:?}");
    }
}

/// Messages that share every header a digest of Date, From, To and Subject could see — no
/// headers at all, or the same Message-ID and headers — but differ in their bodies (some of the
/// same size). Each entry: its body's marker and its bytes.
fn look_alike_messages() -> Vec<(&'static str, Vec<u8>)> {
    let same_headers = "Message-ID: <same@x.test>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nFrom: a@x.test\r\nTo: b@x.test\r\nSubject: same\r\n\r\n";
    let mut messages: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for marker in ["bodyAA", "bodyBB", "bodyCC-longer"] {
        messages.push((marker, format!("\r\n{marker}\r\n").into_bytes()));
        messages.push((marker, format!("{same_headers}{marker}\r\n").into_bytes()));
    }
    // The same bytes again: one email with two memberships.
    let copy = messages[1].clone();
    messages.push(copy);
    messages.push((
        "sentinel",
        b"Message-ID: <sentinel@x.test>\r\nSubject: sentinel\r\n\r\nsentinel\r\n".to_vec(),
    ));
    messages
}

async fn corpus_state<S: email_model::Store>(
    store: S,
    mailbox: i64,
    folder: &str,
) -> Vec<(u32, i64, String)> {
    let folder = store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.full_name == folder)
        .unwrap();
    let mut state = Vec::new();
    for membership in store.memberships(folder.id).await.unwrap() {
        let email = store.email(membership.email_id).await.unwrap().unwrap();
        state.push((
            membership.uid,
            email.id,
            email.body_text.unwrap_or_default(),
        ));
    }
    state.sort();
    state
}

async fn corpus_of(rig: &crate::sync::Rig) -> Vec<(u32, i64, String)> {
    if rig.is_postgres() {
        corpus_state(rig.pg(), rig.mailbox_id, "Corpus").await
    } else {
        corpus_state(rig.sqlite(), rig.mailbox_id, "Corpus").await
    }
}

/// Issue 15: two messages whose bytes differ are two emails, even with no headers or the same
/// Message-ID and headers; one message twice is one email; a UIDVALIDITY re-key keeps every
/// UID on the right email.
async fn look_alikes_stay_apart(backend: crate::sync::Backend) {
    let rig = crate::sync::rig_on(backend, crate::sync::dovecot(), "look-alike", 30).await;
    let mut raw = rig.raw().await;
    raw.create_folder("Corpus").await.unwrap();
    let messages = look_alike_messages();
    for (_, bytes) in &messages {
        raw.append("Corpus", &[], None, bytes).await.unwrap();
    }
    rig.sync(3).await;
    rig.switch_folder("Corpus", true).await;
    let check = |state: &[(u32, i64, String)], step: &str| {
        assert_eq!(state.len(), messages.len(), "{step}: {state:?}");
        for ((uid, _, body), (marker, _)) in state.iter().zip(&messages) {
            assert!(
                body.contains(marker),
                "{step}: UID {uid} shows {body:?}, not {marker}"
            );
        }
        let emails: BTreeSet<i64> = state.iter().map(|(_, id, _)| *id).collect();
        assert_eq!(
            emails.len(),
            messages.len() - 1,
            "{step}: one email per distinct message"
        );
    };
    let (_, status) = rig.sync(3).await;
    assert_eq!(status, sync_core::OutcomeStatus::Success);
    let first = corpus_of(&rig).await;
    check(&first, "first sync");
    let (_, status) = rig.sync(3).await;
    assert_eq!(status, sync_core::OutcomeStatus::Success);
    assert_eq!(
        corpus_of(&rig).await,
        first,
        "a second sync changes nothing"
    );

    crate::sync_changes::recreate_with_same_mail(&mut raw, "Corpus").await;
    let (_, status) = rig.sync(3).await;
    assert_eq!(status, sync_core::OutcomeStatus::Success);
    let rekeyed = corpus_of(&rig).await;
    check(&rekeyed, "after the UIDVALIDITY change");
    let ids =
        |state: &[(u32, i64, String)]| state.iter().map(|(_, id, _)| *id).collect::<BTreeSet<_>>();
    assert_eq!(ids(&rekeyed), ids(&first), "the same emails, no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_stay_apart_on_postgres() {
    look_alikes_stay_apart(crate::sync::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_stay_apart_on_sqlite() {
    look_alikes_stay_apart(crate::sync::Backend::Sqlite).await;
}

/// Runs `command` to its end; returns its output and its peak resident set in bytes (VmHWM,
/// read every 10 ms: a high-water mark, so the last reading is the peak).
fn run_measured(mut command: std::process::Command) -> (std::process::Output, u64) {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&status_file).ok().and_then(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                }) {
                    peak.fetch_max(kb * 1024, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let output = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    (output, peak.load(std::sync::atomic::Ordering::Relaxed))
}

/// Issue 15: every message of the hostile corpus, each followed by a normal one, is its own
/// email on both backends; every sentinel arrives; nothing panics; a second sync changes
/// nothing; the sync's peak memory stays within 4× the largest message plus a working set.
async fn the_hostile_corpus_syncs_whole(backend: crate::sync::Backend) {
    let rig = crate::sync::rig_on(backend, crate::sync::dovecot(), "hostile-corpus", 36_500).await;
    let mut raw = rig.raw().await;
    let corpus = test_support::hostile_corpus(true);
    assert!(corpus.len() >= 40);
    for (index, hostile) in corpus.iter().enumerate() {
        raw.append("INBOX", &[], None, &hostile.bytes)
            .await
            .unwrap_or_else(|e| panic!("Dovecot refused {:?}: {e}", hostile.name));
        raw.append("INBOX", &[], None, &test_support::sentinel(index))
            .await
            .unwrap();
    }
    let largest = corpus
        .iter()
        .map(|m| m.bytes.len() as u64)
        .max()
        .unwrap_or(0);

    let (output, peak) = run_measured(rig.sync_once(None));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("outcome Success"), "{stdout}");
    eprintln!(
        "hostile corpus ({backend:?}): {} messages, largest {:.1} MB, sync peak RSS {:.1} MB",
        corpus.len() * 2,
        largest as f64 / 1e6,
        peak as f64 / 1e6
    );
    let working_set = 64 * 1024 * 1024;
    assert!(
        peak <= 4 * largest + working_set,
        "peak RSS {peak} for a largest message of {largest}"
    );

    async fn mirror<S: email_model::Store>(store: S, mailbox: i64) -> Vec<(i64, Option<String>)> {
        let mut emails: Vec<(i64, Option<String>)> = store
            .emails(mailbox)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.subject))
            .collect();
        emails.sort();
        emails
    }
    let read = || async {
        if rig.is_postgres() {
            mirror(rig.pg(), rig.mailbox_id).await
        } else {
            mirror(rig.sqlite(), rig.mailbox_id).await
        }
    };
    let first = read().await;
    assert_eq!(
        first.len(),
        corpus.len() * 2,
        "one email per distinct message"
    );
    for (index, hostile) in corpus.iter().enumerate() {
        let subject = format!("sentinel {index}");
        assert!(
            first
                .iter()
                .any(|(_, s)| s.as_deref() == Some(subject.as_str())),
            "{subject} (after {:?}) did not arrive",
            hostile.name
        );
    }
    let (_, status) = rig.sync(100).await;
    assert_eq!(status, sync_core::OutcomeStatus::Success);
    assert_eq!(read().await, first, "a second sync changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_syncs_whole_on_postgres() {
    the_hostile_corpus_syncs_whole(crate::sync::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_syncs_whole_on_sqlite() {
    the_hostile_corpus_syncs_whole(crate::sync::Backend::Sqlite).await;
}

/// Issue 15: a server that sends NUL bytes as they are (Dovecot turns them into 0x80; others
/// do not), played byte-exact by the scripted server: the message is read whole, its NULs
/// kept for the model to replace (see `model_store::…nul_bytes_are_replaced…`), and the
/// session goes on with the next message.
#[tokio::test]
async fn a_message_with_nul_bytes_is_read_whole_and_the_next_one_too() {
    use test_support::{Script, ScriptedImapServer};
    let hostile = "Subject: nul\0subject\r\nFrom: Ali\0ce <a@x.test>\r\nMessage-ID: <nul@x>\r\n\r\nbody \0 here\r\n";
    let normal = "Subject: after\r\nMessage-ID: <after@x>\r\n\r\nfine\r\n";
    let item = |uid: u32, message: &str| {
        format!(
            "* {uid} FETCH (UID {uid} FLAGS () INTERNALDATE \"03-Nov-2026 10:00:00 +0000\" RFC822.SIZE {} BODY[] {{{}}}\r\n{message})",
            message.len(),
            message.len()
        )
    };
    let (first, second) = (item(1, hostile), item(2, normal));
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted ready")
        .expect_prefix("LOGIN", &["{tag} OK [CAPABILITY IMAP4rev1] Logged in"])
        .expect(
            r#"SELECT "INBOX""#,
            &[
                "* 2 EXISTS",
                "* OK [UIDVALIDITY 9] ok",
                "* OK [UIDNEXT 3] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        .expect(
            "UID FETCH 1:2 (UID RFC822.SIZE)",
            &[
                "* 1 FETCH (UID 1 RFC822.SIZE 80)",
                "* 2 FETCH (UID 2 RFC822.SIZE 50)",
                "{tag} OK done",
            ],
        )
        .expect(
            "UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            &[first.as_str(), second.as_str(), "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(crate::connector::scripted_config(
        &server,
        Credentials::Password("p".to_owned().into()),
    ));
    connector.select("INBOX").await.unwrap();
    let mut stream = connector.fetch(&[1, 2], imap_connector::FetchParts::Full);
    let read = stream.next().await.unwrap().unwrap();
    assert_eq!(read.headers.subject.as_deref(), Some("nul\0subject"));
    assert!(
        matches!(&read.body, imap_connector::Body::Parsed { text: Some(text), .. } if text.contains('\0'))
    );
    let next = stream.next().await.unwrap().unwrap();
    assert_eq!(next.headers.subject.as_deref(), Some("after"));
    assert!(stream.next().await.is_none());
    drop(stream);
    server.finish().await.unwrap();
}
