//! Hostile input (issue 15): values that would break an IMAP command never reach the wire,
//! whoever passes them — the connector refuses them itself, the store refuses to record them.

use imap_connector::{ConnectorError, ImapConnector, SearchQuery, Security};
use integration_tests::connector_config;
use test_support::{DovecotVariant, RawImap, shared_dovecot};

/// The payload that deleted a folder through `PATCH /api/emails/ID/flags` before this fix.
const INJECTION: &str = "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen";

fn names(connector: &ImapConnector) -> Vec<String> {
    connector
        .command_log()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

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
