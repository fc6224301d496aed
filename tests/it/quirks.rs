//! Servers that bend the RFC (issue 16), played byte-exact by the scripted server; each
//! fallback is chosen from what the server did, and Dovecot, which behaves, never triggers one.
//! The script fails the test if the connector sends anything but the commands listed.

use imap_connector::{Credentials, FetchParts, ImapConfig, ImapConnector, Security};
use test_support::{DovecotVariant, Script, ScriptedImapServer, shared_dovecot};

fn config(server: &ScriptedImapServer) -> ImapConfig {
    crate::connector::scripted_config(server, Credentials::Password("p".to_owned().into()))
}

fn logged_in() -> Script {
    Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] scripted ready")
        .expect_prefix("LOGIN", &["{tag} OK [CAPABILITY IMAP4rev1] Logged in"])
}

#[tokio::test]
async fn a_select_without_uidnext_has_it_derived_from_the_highest_uid() {
    let script = logged_in()
        .expect(
            r#"SELECT "INBOX""#,
            &[
                "* 3 EXISTS",
                "* OK [UIDVALIDITY 5] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        .expect(
            "UID FETCH * (UID)",
            &["* 3 FETCH (UID 17)", "{tag} OK done"],
        )
        // An empty folder without UIDNEXT needs no question: nothing is above 0.
        .expect(
            r#"SELECT "Empty""#,
            &[
                "* 0 EXISTS",
                "* OK [UIDVALIDITY 6] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(config(&server));
    let selected = connector.select("INBOX").await.unwrap();
    assert_eq!((selected.uid_validity, selected.uid_next), (5, 18));
    let empty = connector.select("Empty").await.unwrap();
    assert_eq!((empty.uid_validity, empty.uid_next), (6, 1));
    server.finish().await.unwrap();
}

#[tokio::test]
async fn a_select_without_uidvalidity_is_an_error_that_says_so() {
    let script = logged_in().expect(
        r#"SELECT "INBOX""#,
        &[
            "* 3 EXISTS",
            "* OK [UIDNEXT 4] ok",
            "{tag} OK [READ-WRITE] selected",
        ],
    );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(config(&server));
    let error = connector.select("INBOX").await.unwrap_err();
    assert!(
        error.to_string().contains("without a UIDVALIDITY"),
        "{error}"
    );
    server.finish().await.unwrap();
}

#[tokio::test]
async fn an_empty_answer_to_uid_n_star_from_a_folder_with_mail_falls_back_to_fetch() {
    let script = logged_in()
        .expect(
            r#"SELECT "INBOX""#,
            &[
                "* 3 EXISTS",
                "* OK [UIDVALIDITY 5] ok",
                "* OK [UIDNEXT 20] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        // RFC 9051: `15:*` always includes the highest UID; an empty answer is the quirk.
        .expect("UID SEARCH UID 15:*", &["* SEARCH", "{tag} OK done"])
        .expect(
            "UID FETCH 15:* (UID)",
            &["* 2 FETCH (UID 16)", "* 3 FETCH (UID 19)", "{tag} OK done"],
        )
        // A correct answer needs nothing more: the highest UID below the range is dropped.
        .expect("UID SEARCH UID 30:*", &["* SEARCH 19", "{tag} OK done"]);
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(config(&server));
    connector.select("INBOX").await.unwrap();
    assert_eq!(connector.uids_from(15).await.unwrap(), [16, 19]);
    assert!(connector.uids_from(30).await.unwrap().is_empty());
    server.finish().await.unwrap();
}

#[tokio::test]
async fn a_fetch_refused_for_uids_gone_meanwhile_fetches_the_ones_still_listed() {
    let message = "Subject: kept\r\nMessage-ID: <kept@x>\r\n\r\nstill here\r\n";
    let item = format!(
        "* 1 FETCH (UID 5 FLAGS () INTERNALDATE \"03-Nov-2026 10:00:00 +0000\" RFC822.SIZE {} BODY[] {{{}}}\r\n{message})",
        message.len(),
        message.len()
    );
    let script = logged_in()
        .expect(
            r#"SELECT "INBOX""#,
            &[
                "* 1 EXISTS",
                "* OK [UIDVALIDITY 5] ok",
                "* OK [UIDNEXT 6] ok",
                "{tag} OK [READ-WRITE] selected",
            ],
        )
        .expect(
            "UID FETCH 4:5 (UID RFC822.SIZE)",
            &["{tag} BAD Error in IMAP command UID FETCH: Invalid uidset"],
        )
        .expect("UID SEARCH UID 4:5", &["* SEARCH 5", "{tag} OK done"])
        .expect(
            "UID FETCH 5 (UID RFC822.SIZE)",
            &["* 1 FETCH (UID 5 RFC822.SIZE 60)", "{tag} OK done"],
        )
        .expect(
            "UID FETCH 5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            &[item.as_str(), "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(config(&server));
    connector.select("INBOX").await.unwrap();
    let (messages, missing) = connector
        .fetch_all(&[4, 5], FetchParts::Full)
        .await
        .unwrap();
    assert_eq!(messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [5]);
    assert_eq!(missing, [4], "the gone UID is reported as not returned");
    server.finish().await.unwrap();
}

/// Dovecot answers by the RFC: no fallback command is ever sent.
#[tokio::test]
async fn dovecot_never_triggers_a_fallback() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let user = endpoint.fresh_user("no-quirks");
    let mut raw = test_support::RawImap::login_to(endpoint, &user)
        .await
        .unwrap();
    for n in 0..3 {
        raw.append(
            "INBOX",
            &[],
            None,
            format!("Subject: {n}\r\n\r\nx\r\n").as_bytes(),
        )
        .await
        .unwrap();
    }
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    raw.command("UID EXPUNGE 3").await.unwrap().ok().unwrap();
    let mut connector = ImapConnector::new(integration_tests::connector_config(
        endpoint,
        Security::None,
        &user,
    ));
    let selected = connector.select("INBOX").await.unwrap();
    assert_eq!(selected.uid_next, 4, "UIDNEXT from the server");
    assert_eq!(connector.uids_from(2).await.unwrap(), [2]);
    assert!(connector.uids_from(10).await.unwrap().is_empty());
    let (messages, missing) = connector
        .fetch_all(&[1, 3], FetchParts::Headers)
        .await
        .unwrap();
    assert_eq!((messages.len(), missing), (1, vec![3]));
    let sent: Vec<String> = connector
        .command_log()
        .into_iter()
        .map(|c| c.name)
        .skip_while(|name| name != "SELECT")
        .collect();
    // Headers only: one FETCH, no size probe.
    assert_eq!(
        sent,
        ["SELECT", "UID SEARCH", "UID SEARCH", "UID FETCH"],
        "no derived UIDNEXT, no FETCH listing, no re-asked UIDs"
    );
}
