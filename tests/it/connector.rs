//! imap-connector against the rig's real Dovecot and its scripted server.

use std::collections::HashMap;

use imap_connector::{
    Body, ConnectorError, Credentials, FetchParts, FetchedMessage, FolderType, ImapConfig,
    ImapConnector, Importance, ParseProblem, Security,
};
use integration_tests::{connector_config, corpus};
use test_support::{
    DovecotEndpoint, DovecotVariant, RawImap, Script, ScriptedImapServer, shared_dovecot,
};

fn dovecot(variant: DovecotVariant) -> &'static DovecotEndpoint {
    shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"))
}

fn connector(
    variant: DovecotVariant,
    security: Security,
    purpose: &str,
) -> (ImapConnector, String) {
    let endpoint = dovecot(variant);
    let user = endpoint.fresh_user(purpose);
    (
        ImapConnector::new(connector_config(endpoint, security, &user)),
        user,
    )
}

pub(crate) fn names(connector: &ImapConnector) -> Vec<String> {
    connector
        .command_log()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn connects_in_every_security_mode_with_and_without_compression() {
    for security in [Security::None, Security::Starttls, Security::Tls] {
        for compress in [true, false] {
            let endpoint = dovecot(DovecotVariant::Full);
            let user = endpoint.fresh_user("modes");
            let mut config = connector_config(endpoint, security, &user);
            config.compress = compress;
            let mut connector = ImapConnector::new(config);
            let selected = connector.select("INBOX").await.unwrap();
            assert!(selected.uid_validity > 0 && selected.highest_modseq.is_some());
            assert!(connector.has("QRESYNC").await.unwrap());
            assert_eq!(connector.is_compressed(), compress, "{security:?}");
            let sent = names(&connector);
            assert_eq!(
                sent.contains(&"COMPRESS".to_owned()),
                compress,
                "{security:?}: {sent:?}"
            );
            assert_eq!(
                sent.contains(&"STARTTLS".to_owned()),
                security == Security::Starttls,
                "{sent:?}"
            );
            assert!(
                sent.contains(&"LOGIN".to_owned()) && sent.contains(&"ID".to_owned()),
                "{sent:?}"
            );
            let select = connector
                .command_log()
                .into_iter()
                .find(|c| c.name == "SELECT")
                .unwrap();
            assert_eq!(select.extensions, ["CONDSTORE"]);
            assert!(
                connector.byte_counters().sent() > 0 && connector.byte_counters().received() > 0
            );
            connector.logout().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_wrong_password_is_invalid_credentials() {
    let endpoint = dovecot(DovecotVariant::Full);
    let mut config = connector_config(endpoint, Security::Tls, &endpoint.fresh_user("wrong"));
    config.credentials = Credentials::Password("not-the-password".to_owned().into());
    let user = config.user.clone();
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::InvalidCredentials { .. }),
        "{error:?}"
    );
    // A sentence a user can act on: who, where, what the server said, what to do.
    let text = error.to_string();
    assert!(
        text.starts_with("the server refused the login: [AUTHENTICATIONFAILED]")
            && text.contains(&format!("for {user} at 127.0.0.1:"))
            && text.contains("check the password")
            && !text.contains("Some(")
            && !text.contains("code:"),
        "{text}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_fails_until_its_ca_is_configured() {
    let endpoint = dovecot(DovecotVariant::Full);
    for security in [Security::Tls, Security::Starttls] {
        let mut config = connector_config(endpoint, security, &endpoint.fresh_user("cert"));
        config.tls.extra_ca_file = None;
        let error = ImapConnector::new(config.clone())
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Tls(text) if text.contains("certificate")),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("self-signed or from an unknown issuer")
                && error.to_string().contains("imap_extra_ca_file"),
            "{error}"
        );

        config.tls.accept_invalid_certs = true;
        ImapConnector::new(config.clone()).connect().await.unwrap();

        config.tls.accept_invalid_certs = false;
        config.tls.extra_ca_file = Some(endpoint.ca_file.clone());
        ImapConnector::new(config).connect().await.unwrap();
    }
}

/// Issue 15: a self-signed server (its certificate says CA:TRUE, which rustls refuses as an end
/// entity even when trusted) is refused with its fingerprint in words; pinned, exactly that
/// certificate is accepted; another certificate at the same address is refused again.
#[tokio::test]
async fn a_self_signed_server_is_accepted_only_with_its_pinned_fingerprint() {
    let endpoint = dovecot(DovecotVariant::Full);
    let backend = std::net::SocketAddr::from(([127, 0, 0, 1], endpoint.plain_port));
    let certificate = test_support::SelfSignedCertificate::generate("self-hosted").unwrap();
    let front = test_support::TlsFront::start(&certificate, backend)
        .await
        .unwrap();
    let port = front.port();
    let mut config = connector_config(endpoint, Security::Tls, &endpoint.fresh_user("pin"));
    config.port = port;
    config.tls.extra_ca_file = None;
    let error = ImapConnector::new(config.clone())
        .connect()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("self-signed")
            && text.contains(&certificate.fingerprint())
            && text.contains("--tls-pin"),
        "{text}"
    );

    // Pinned (in any spelling): that certificate, and the real Dovecot behind it, answer.
    config.tls.pinned_sha256 = Some(certificate.fingerprint().replace(':', "").to_lowercase());
    let mut connector = ImapConnector::new(config.clone());
    connector.select("INBOX").await.unwrap();
    connector.logout().await.unwrap();

    // Another certificate at the same address: refused, with its own fingerprint.
    front.stop().await;
    let other = test_support::SelfSignedCertificate::generate("impostor").unwrap();
    let _front = test_support::TlsFront::start_on(&other, backend, port)
        .await
        .unwrap();
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, ConnectorError::Tls(_)) && text.contains(&other.fingerprint()),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = ImapConfig::new(
        "127.0.0.1",
        "u",
        Credentials::Password("p".to_owned().into()),
    );
    config.port = port;
    config.security = Security::None;
    config.connect_policy = integration_tests::rig_connect_policy();
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Connection { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_minimal_server_is_used_without_any_hidden_extension() {
    for security in [Security::None, Security::Starttls] {
        let (mut connector, user) = connector(DovecotVariant::Minimal, security, "minimal");
        let mut seed = RawImap::login_to(dovecot(DovecotVariant::Minimal), &user)
            .await
            .unwrap();
        seed.append(
            "INBOX",
            &["\\Seen"],
            None,
            b"Subject: one\r\nMessage-ID: <m1@x>\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();

        let capabilities = connector.capabilities().await.unwrap();
        assert_eq!(
            capabilities.into_iter().collect::<Vec<_>>(),
            ["IMAP4REV1", "LITERAL+"]
        );
        let folders = connector.folders(None, true, true).await.unwrap();
        let sent = folders.iter().find(|f| f.full_name == "Sent").unwrap();
        assert_eq!(
            sent.folder_type,
            FolderType::Sent,
            "found by name, without SPECIAL-USE"
        );
        let inbox = folders.iter().find(|f| f.full_name == "INBOX").unwrap();
        assert_eq!(inbox.counts.unwrap().messages, Some(1));
        let selected = connector.select("INBOX").await.unwrap();
        assert_eq!(selected.highest_modseq, None);
        let uids = connector.uid_search("ALL").await.unwrap();
        let mut stream = connector.fetch(&uids, FetchParts::Full);
        let message = stream.next().await.unwrap().unwrap();
        assert_eq!(message.headers.subject.as_deref(), Some("one"));
        assert_eq!(message.modseq, None);

        for command in connector.command_log() {
            assert!(
                ![
                    "COMPRESS",
                    "ID",
                    "ENABLE",
                    "IDLE",
                    "UID MOVE",
                    "UID EXPUNGE",
                    "NAMESPACE"
                ]
                .contains(&command.name.as_str()),
                "{security:?}: used {command:?} though the server hides it"
            );
            assert!(
                command.extensions.iter().all(|e| ![
                    "CONDSTORE",
                    "QRESYNC",
                    "CHANGEDSINCE",
                    "MODSEQ",
                    "RETURN",
                    "STATUS"
                ]
                .contains(e))
                    || command.name == "STATUS",
                "{security:?}: {command:?} relies on a hidden extension"
            );
        }
    }
}

#[tokio::test]
async fn folder_tree_with_nested_quoted_and_non_ascii_names() {
    let (mut connector, user) = connector(DovecotVariant::Full, Security::None, "tree");
    let mut seed = RawImap::login_to(dovecot(DovecotVariant::Full), &user)
        .await
        .unwrap();
    let created = [
        "Projects/2026/Q1",
        r#"He said "hi""#,
        "Été/Réunions",
        "Отправленные",
        "My Folder",
        r"Back\slash",
    ];
    for name in created {
        seed.create_folder(&imap_connector::utf7::encode(name))
            .await
            .unwrap();
    }
    seed.append(
        &imap_connector::utf7::encode("Été/Réunions"),
        &[],
        None,
        b"Subject: x\r\n\r\ny\r\n",
    )
    .await
    .unwrap();

    let folders = connector.folders(None, true, true).await.unwrap();
    let by_name: HashMap<&str, &imap_connector::Folder> =
        folders.iter().map(|f| (f.full_name.as_str(), f)).collect();
    for name in created {
        let folder = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", by_name.keys()));
        assert!(folder.selectable);
        connector
            .select(name)
            .await
            .unwrap_or_else(|e| panic!("SELECT {name}: {e}"));
        assert_eq!(folder.delimiter.as_deref(), Some("/"));
    }
    // Parents created on the way exist in the tree; whether they can be selected is what the
    // server says, and SELECT agrees with it.
    for name in ["Projects", "Projects/2026", "Été"] {
        let folder = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            connector.select(name).await.is_ok(),
            folder.selectable,
            "{name}: {folder:?}"
        );
    }
    assert_eq!(by_name["Projects/2026/Q1"].name, "Q1");
    assert_eq!(by_name["Projects/2026/Q1"].parent(), Some("Projects/2026"));
    assert_eq!(by_name["Été/Réunions"].counts.unwrap().messages, Some(1));
    assert_eq!(by_name["Été/Réunions"].counts.unwrap().unseen, Some(1));
    assert!(
        by_name["Été/Réunions"]
            .counts
            .unwrap()
            .uid_validity
            .is_some()
    );
    assert!(
        by_name["Été/Réunions"]
            .counts
            .unwrap()
            .highest_modseq
            .is_some()
    );
    for (name, folder_type) in [
        ("INBOX", FolderType::Inbox),
        ("Sent", FolderType::Sent),
        ("Drafts", FolderType::Drafts),
        ("Trash", FolderType::Trash),
        ("Junk", FolderType::Junk),
        ("Archive", FolderType::Archive),
        ("Отправленные", FolderType::Sent),
        ("My Folder", FolderType::Other),
    ] {
        assert_eq!(by_name[name].folder_type, folder_type, "{name}");
    }
    let list = connector
        .command_log()
        .into_iter()
        .find(|c| c.name == "LIST")
        .unwrap();
    assert!(
        list.extensions.contains(&"RETURN"),
        "LIST-STATUS used: {list:?}"
    );

    let children = connector
        .folders(Some("Projects"), false, false)
        .await
        .unwrap();
    let children: Vec<&str> = children.iter().map(|f| f.full_name.as_str()).collect();
    assert_eq!(children, ["Projects/2026"]);
    let below = connector
        .folders(Some("Projects"), true, false)
        .await
        .unwrap();
    assert_eq!(below.len(), 2);

    let error = connector.select("No Such Folder").await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::FolderNotFound(_)),
        "{error:?}"
    );
}

fn by_subject(messages: &[FetchedMessage], subject: &str) -> FetchedMessage {
    messages
        .iter()
        .find(|m| m.headers.subject.as_deref() == Some(subject))
        .unwrap_or_else(|| panic!("no message {subject:?}"))
        .clone()
}

fn parsed(
    message: &FetchedMessage,
) -> (
    Option<String>,
    Option<String>,
    Vec<imap_connector::Attachment>,
) {
    match &message.body {
        Body::Parsed {
            text,
            html,
            attachments,
        } => (text.clone(), html.clone(), attachments.clone()),
        other => panic!("not parsed: {other:?}"),
    }
}

#[tokio::test]
async fn the_corpus_is_fetched_and_parsed() {
    let (mut connector, user) = connector(DovecotVariant::Full, Security::Tls, "corpus");
    let mut seed = RawImap::login_to(dovecot(DovecotVariant::Full), &user)
        .await
        .unwrap();
    let files = corpus();
    for (_, raw) in &files {
        seed.append("INBOX", &["\\Seen"], None, raw).await.unwrap();
    }
    connector.select("INBOX").await.unwrap();
    let uids = connector.uid_search("ALL").await.unwrap();
    assert_eq!(uids.len(), files.len());
    let mut stream = connector.fetch(&uids, FetchParts::Full);
    let mut messages = Vec::new();
    while let Some(message) = stream.next().await {
        messages.push(message.unwrap());
    }
    assert!(stream.missing().is_empty());
    assert_eq!(messages.len(), files.len());
    for message in &messages {
        assert_eq!(message.flags, ["\\Seen"]);
        assert!(message.modseq.is_some() && message.internal_date.is_some());
        let raw = &files[(message.uid - 1) as usize].1;
        assert_eq!(message.size, Some(raw.len() as u64));
    }

    let alternative = by_subject(&messages, "Quarterly report");
    assert_eq!(
        alternative.headers.message_id.as_deref(),
        Some("alt-1@example.test")
    );
    assert_eq!(
        alternative.headers.in_reply_to.as_deref(),
        Some("root-0@example.test")
    );
    assert_eq!(
        alternative.headers.references,
        ["root-0@example.test", "mid-0@example.test"]
    );
    assert_eq!(
        alternative.headers.from[0].name.as_deref(),
        Some("Alice Martin")
    );
    assert_eq!(
        alternative.headers.to[0].email.as_deref(),
        Some("bob@example.test")
    );
    assert_eq!(
        alternative.headers.date.unwrap().to_rfc3339(),
        "2026-11-03T09:15:00+00:00"
    );
    let (text, html, attachments) = parsed(&alternative);
    assert_eq!(text.unwrap().trim(), "Hello Bob, the report is ready.");
    assert!(html.unwrap().contains("<b>report</b>"));
    assert!(attachments.is_empty());
    assert!(
        alternative.problems.is_empty(),
        "{:?}",
        alternative.problems
    );

    let with_files = by_subject(&messages, "CV and photo");
    let (_, html, attachments) = parsed(&with_files);
    assert!(html.unwrap().contains("cid:photo-1@example.test"));
    let pdf = attachments
        .iter()
        .find(|a| a.content_type == "application/pdf")
        .unwrap();
    assert_eq!(pdf.name.as_deref(), Some("résumé.pdf"));
    assert_eq!(pdf.size, 41 * 20);
    assert!(!pdf.inline);
    let photo = attachments
        .iter()
        .find(|a| a.content_type == "image/png")
        .unwrap();
    assert_eq!(photo.content_id.as_deref(), Some("photo-1@example.test"));
    assert!(photo.inline);
    assert_eq!(
        photo.content,
        (0..=255u8).cycle().take(1024).collect::<Vec<_>>()
    );

    let encoded = by_subject(&messages, "Grüße aus Köln");
    assert_eq!(
        encoded.headers.from[0].name.as_deref(),
        Some("Jürgen Müller")
    );
    assert_eq!(parsed(&encoded).0.unwrap().trim(), "Viele Grüße!");
    assert_eq!(
        parsed(&encoded).1,
        None,
        "no HTML is made up for a plain-text message"
    );

    let cyrillic = by_subject(&messages, "Привет");
    assert_eq!(parsed(&cyrillic).0.unwrap().trim(), "Привет, мир!");

    let japanese = by_subject(&messages, "こんにちは");
    assert_eq!(parsed(&japanese).0.unwrap().trim(), "こんにちは");

    let html_only = by_subject(&messages, "News");
    let (text, html, _) = parsed(&html_only);
    assert!(html.unwrap().contains("Only HTML here."));
    assert!(
        text.unwrap().contains("Only HTML here."),
        "the text is derived from the HTML, for search"
    );

    let no_id = by_subject(&messages, "No id");
    assert_eq!(no_id.headers.message_id, None);
    assert_eq!(no_id.problems, [ParseProblem::MissingMessageId]);

    let bad_date = by_subject(&messages, "Broken date");
    assert_eq!(bad_date.headers.date, None);
    assert_eq!(
        bad_date.problems,
        [ParseProblem::BadDate("32 Foo 2026 99:99:99 nowhere".into())]
    );
    assert!(parsed(&bad_date).0.unwrap().contains("cannot be read"));

    let malformed = by_subject(&messages, "Malformed MIME");
    // The unterminated last part is also reported as undecodable by the parser.
    assert_eq!(
        malformed.problems[0],
        ParseProblem::UnterminatedMultipart {
            boundary: "never-closed".into()
        }
    );
    assert!(parsed(&malformed).0.unwrap().contains("First part"));

    let unknown = by_subject(&messages, "Unknown charset");
    assert!(parsed(&unknown).0.unwrap().contains("Plain ASCII text"));
    assert_eq!(
        unknown.problems,
        [ParseProblem::UnknownCharset {
            part: "part 0 (text/plain)".into(),
            charset: "x-no-such-charset".into()
        }]
    );
    for known in [
        "Quarterly report",
        "Привет",
        "こんにちは",
        "Grüße aus Köln",
        "Re: Quarterly report",
    ] {
        assert!(by_subject(&messages, known).problems.is_empty(), "{known}");
    }

    let headers = by_subject(&messages, "Re: Quarterly report").headers;
    assert_eq!(
        headers.sender.unwrap().email.as_deref(),
        Some("secretary@example.test")
    );
    assert_eq!(headers.to.len(), 2);
    assert_eq!(headers.to[1].name.as_deref(), Some("Dupont, Carl"));
    assert_eq!(headers.cc[0].email.as_deref(), Some("zoe@example.test"));
    assert_eq!(headers.bcc[0].email.as_deref(), Some("hidden@example.test"));
    assert_eq!(
        headers.reply_to[0].email.as_deref(),
        Some("replies@example.test")
    );
    assert_eq!(headers.importance, Importance::High);
    assert_eq!(headers.in_reply_to.as_deref(), Some("alt-1@example.test"));
}

/// A message with a 5 MB attachment: downloaded and decoded under the default limit, headers
/// only and marked too large under a smaller one.
#[tokio::test]
async fn sizes_are_known_before_download_and_large_messages_are_not_downloaded() {
    use base64::Engine;
    let attachment: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let mut raw = String::from(
        "From: a@example.test\r\nSubject: Big one\r\nMessage-ID: <big@example.test>\r\nDate: Tue, 03 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in encoded.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push_str("\r\n");
    }
    raw.push_str("--big--\r\n");

    let endpoint = dovecot(DovecotVariant::Full);
    let user = endpoint.fresh_user("big");
    let mut seed = RawImap::login_to(endpoint, &user).await.unwrap();
    seed.append("INBOX", &[], None, raw.as_bytes())
        .await
        .unwrap();
    seed.append("INBOX", &[], None, b"Subject: small\r\n\r\nsmall\r\n")
        .await
        .unwrap();

    let mut connector = ImapConnector::new(connector_config(endpoint, Security::None, &user));
    connector.select("INBOX").await.unwrap();
    let mut stream = connector.fetch(&[1, 2], FetchParts::Full);
    let big = stream.next().await.unwrap().unwrap();
    let (_, _, attachments) = parsed(&big);
    assert_eq!(attachments[0].name.as_deref(), Some("data.bin"));
    assert_eq!(attachments[0].content, attachment);
    drop(stream);

    let mut config = connector_config(endpoint, Security::None, &user);
    config.max_message_size = 1024 * 1024;
    let mut limited = ImapConnector::new(config);
    limited.select("INBOX").await.unwrap();
    let mut stream = limited.fetch(&[1, 2], FetchParts::Full);
    let mut got = Vec::new();
    while let Some(message) = stream.next().await {
        got.push(message.unwrap());
    }
    let big = got.iter().find(|m| m.uid == 1).unwrap();
    assert_eq!(big.headers.subject.as_deref(), Some("Big one"));
    assert_eq!(
        big.body,
        Body::TooLarge {
            size: raw.len() as u64,
            limit: 1024 * 1024
        }
    );
    assert!(matches!(
        got.iter().find(|m| m.uid == 2).unwrap().body,
        Body::Parsed { .. }
    ));
    assert!(
        limited.byte_counters().received() < 512 * 1024,
        "the large body was not downloaded: {} bytes received",
        limited.byte_counters().received()
    );
}

#[tokio::test]
async fn uid_search_finds_by_date_and_uid_and_surfaces_a_refusal() {
    let endpoint = dovecot(DovecotVariant::Full);
    let user = endpoint.fresh_user("search");
    let mut seed = RawImap::login_to(endpoint, &user).await.unwrap();
    use chrono::TimeZone;
    for (day, subject) in [(1, "old"), (20, "new"), (25, "newer")] {
        let date = chrono::Utc
            .with_ymd_and_hms(2026, 10, day, 12, 0, 0)
            .unwrap();
        seed.append(
            "INBOX",
            &[],
            Some(date),
            format!("Subject: {subject}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .unwrap();
    }
    let mut connector = ImapConnector::new(connector_config(endpoint, Security::None, &user));
    connector.select("INBOX").await.unwrap();
    assert_eq!(
        connector.uid_search("SINCE 10-Oct-2026").await.unwrap(),
        [2, 3]
    );
    assert_eq!(connector.uid_search("UID 2:*").await.unwrap(), [2, 3]);
    assert_eq!(
        connector.uid_search("UID 10:20").await.unwrap(),
        Vec::<u32>::new()
    );
    let error = connector.uid_search("NO-SUCH-KEY 1").await.unwrap_err();
    assert!(matches!(error, ConnectorError::Protocol(_)), "{error:?}");
    // The connection is still usable after the refusal.
    assert_eq!(connector.uid_search("ALL").await.unwrap(), [1, 2, 3]);
}

/// A connector's settings for the scripted server (plain, short timeouts).
pub(crate) fn scripted_config(server: &ScriptedImapServer, credentials: Credentials) -> ImapConfig {
    let mut config = ImapConfig::new("127.0.0.1", "user@example.test", credentials);
    config.connect_policy = integration_tests::rig_connect_policy();
    config.port = server.port();
    config.security = Security::None;
    config.connect_timeout = std::time::Duration::from_secs(5);
    config.command_timeout = std::time::Duration::from_secs(5);
    config
}

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2] scripted ready";

#[tokio::test]
async fn xoauth2_sends_the_exact_sasl_string_and_reads_a_refusal() {
    use base64::Engine;
    let sasl = base64::engine::general_purpose::STANDARD
        .encode("user=user@example.test\x01auth=Bearer token-123\x01\x01");
    let script = Script::greeting(GREETING)
        .expect("AUTHENTICATE XOAUTH2", &["+ "])
        .expect_line(
            &sasl,
            &["+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0="],
        )
        .expect_line(
            "",
            &["{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let config = scripted_config(
        &server,
        Credentials::OAuth2AccessToken("token-123".to_owned().into()),
    );
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::InvalidCredentials { .. }),
        "{error:?}"
    );
    server.finish().await.unwrap();
}

#[tokio::test]
async fn xoauth2_success_logs_in() {
    let script = Script::greeting(GREETING)
        .expect("AUTHENTICATE XOAUTH2", &["+ "])
        .step(test_support::Expect::Anything, &["{tag} OK Success"])
        .expect(
            "CAPABILITY",
            &["* CAPABILITY IMAP4rev1 UIDPLUS", "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let config = scripted_config(
        &server,
        Credentials::OAuth2AccessToken("token".to_owned().into()),
    );
    let mut connector = ImapConnector::new(config);
    assert!(connector.has("UIDPLUS").await.unwrap());
    server.finish().await.unwrap();
}

#[tokio::test]
async fn starttls_not_offered_is_refused_before_any_credential_is_sent() {
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no tls here");
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut config = scripted_config(&server, Credentials::Password("secret".to_owned().into()));
    config.security = Security::Starttls;
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Tls(text) if text.contains("STARTTLS")),
        "{error:?}"
    );
    assert_eq!(server.finish().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_starttls_says_so_in_words() {
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready").expect(
        "STARTTLS",
        &["{tag} NO [UNAVAILABLE] TLS is down for maintenance"],
    );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut config = scripted_config(&server, Credentials::Password("secret".to_owned().into()));
    config.security = Security::Starttls;
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("STARTTLS was refused by 127.0.0.1:")
            && text.contains("[UNAVAILABLE] TLS is down for maintenance")
            && !text.contains("Some("),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unavailable_login_is_not_invalid_credentials() {
    let script = Script::greeting(GREETING).expect_prefix(
        "LOGIN",
        &["{tag} NO [UNAVAILABLE] Temporary authentication failure, try again later"],
    );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let config = scripted_config(&server, Credentials::Password("secret".to_owned().into()));
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::LoginRefused { code, .. } if code == "UNAVAILABLE"),
        "{error:?}"
    );
}

fn logged_in(script: Script) -> Script {
    script.expect_prefix(
        "LOGIN",
        &["{tag} OK [CAPABILITY IMAP4rev1 X-GM-EXT-1 UIDPLUS] Logged in"],
    )
}

#[tokio::test]
async fn throttling_replies_are_told_apart() {
    let script = logged_in(Script::greeting(GREETING))
        .expect(r#"SELECT "INBOX""#, &["{tag} NO [THROTTLED] Account exceeded command or bandwidth limits"])
        .expect(
            r#"SELECT "INBOX""#,
            &["{tag} NO User is authenticated but not connected. Request is throttled. Suggested Backoff Time: 29996 milliseconds"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(scripted_config(
        &server,
        Credentials::Password("p".to_owned().into()),
    ));
    for _ in 0..2 {
        let error = connector.select("INBOX").await.unwrap_err();
        assert!(
            matches!(error, ConnectorError::Throttled { .. }),
            "{error:?}"
        );
    }
    server.finish().await.unwrap();
}

/// Issue 22, case 6: on a server that reads `*` as the highest UID present now, the expunge of
/// the top message is only reported for a range naming the highest UID the mirror knows.
#[tokio::test]
async fn changes_are_asked_up_to_the_highest_known_uid_never_star() {
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted ready")
        .expect_prefix(
            "LOGIN",
            &["{tag} OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC ENABLE] Logged in"],
        )
        .expect("ENABLE QRESYNC", &["* ENABLED QRESYNC", "{tag} OK enabled"])
        .expect(
            r#"SELECT "INBOX" (CONDSTORE)"#,
            &[
                "* 6 EXISTS",
                "* OK [UIDVALIDITY 42] ok",
                "* OK [UIDNEXT 8] ok",
                "* OK [HIGHESTMODSEQ 90] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        // `1:*` would have ended at 6 here, and said nothing of 7.
        .expect(
            "UID FETCH 1:7 (UID FLAGS MODSEQ) (CHANGEDSINCE 80 VANISHED)",
            &["* VANISHED (EARLIER) 7", "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(scripted_config(
        &server,
        Credentials::Password("p".to_owned().into()),
    ));
    assert!(connector.enable_qresync().await.unwrap());
    connector.select("INBOX").await.unwrap();
    let changes = connector.changes_since(80, 7).await.unwrap();
    assert_eq!(changes.vanished, [7]);
    server.finish().await.unwrap();
}

#[tokio::test]
async fn gmail_items_are_parsed() {
    let message = "Subject: labelled\r\nMessage-ID: <g@x>\r\n\r\nhello\r\n";
    let fetch = format!(
        "* 1 FETCH (UID 7 X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 X-GM-LABELS (\\Inbox \"Work\") FLAGS (\\Seen) INTERNALDATE \"03-Nov-2026 10:00:00 +0000\" RFC822.SIZE {} BODY[] {{{}}}\r\n{message})",
        message.len(),
        message.len()
    );
    let script = logged_in(Script::greeting(GREETING))
        .expect(r#"SELECT "INBOX""#, &["* 1 EXISTS", "* OK [UIDVALIDITY 42] ok", "* OK [UIDNEXT 8] ok", "{tag} OK [READ-WRITE] selected"])
        .expect("UID FETCH 7 (UID RFC822.SIZE)", &["* 1 FETCH (UID 7 RFC822.SIZE 40)", "{tag} OK done"])
        .expect(
            "UID FETCH 7 (UID FLAGS INTERNALDATE RFC822.SIZE X-GM-MSGID X-GM-THRID X-GM-LABELS BODY.PEEK[])",
            &[fetch.as_str(), "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(scripted_config(
        &server,
        Credentials::Password("p".to_owned().into()),
    ));
    assert_eq!(connector.select("INBOX").await.unwrap().uid_validity, 42);
    let mut stream = connector.fetch(&[7], FetchParts::Full);
    let fetched = stream.next().await.unwrap().unwrap();
    assert_eq!(fetched.gmail.message_id, Some(1278455344230334865));
    assert_eq!(fetched.gmail.thread_id, Some(1266894439832287888));
    assert_eq!(fetched.gmail.labels, ["\\Inbox", "Work"]);
    assert_eq!(fetched.headers.subject.as_deref(), Some("labelled"));
    assert!(stream.next().await.is_none());
    drop(stream);
    server.finish().await.unwrap();
}

#[tokio::test]
async fn a_tagged_no_to_fetch_is_an_error_and_an_empty_fetch_reports_missing_uids() {
    let script = logged_in(Script::greeting(GREETING))
        .expect(
            r#"SELECT "INBOX""#,
            &[
                "* OK [UIDVALIDITY 3] ok",
                "* OK [UIDNEXT 5] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        .expect(
            "UID FETCH 3 (UID RFC822.SIZE)",
            &["{tag} NO [SERVERBUG] Internal error occurred"],
        )
        .expect("UID FETCH 4 (UID RFC822.SIZE)", &["{tag} OK nothing"]);
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(scripted_config(
        &server,
        Credentials::Password("p".to_owned().into()),
    ));
    connector.select("INBOX").await.unwrap();
    let mut stream = connector.fetch(&[3], FetchParts::Full);
    let error = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Protocol(text) if text.contains("SERVERBUG")),
        "{error:?}"
    );
    assert!(stream.next().await.is_none());
    drop(stream);
    let mut stream = connector.fetch(&[4], FetchParts::Full);
    let next = stream.next().await;
    assert!(next.is_none(), "{next:?}");
    assert_eq!(stream.missing(), [4]);
    drop(stream);
    server.finish().await.unwrap();
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    // LOGIN is read and never answered.
    let script = Script::greeting(GREETING)
        .expect_prefix("LOGIN", &[])
        .expect("NEVER", &[]);
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut config = scripted_config(&server, Credentials::Password("p".to_owned().into()));
    config.command_timeout = std::time::Duration::from_millis(500);
    let error = ImapConnector::new(config).connect().await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { operation, .. } if operation == "LOGIN"),
        "{error:?}"
    );
}
