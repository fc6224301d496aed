//! OAuth2 token refresh against a local HTTP token endpoint, and XOAUTH2 logins with it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imap_connector::{
    ConnectorError, Credentials, ImapConfig, ImapConnector, OAuth2Settings, OAuth2TokenProvider,
    Security, TokenError, TokenSource,
};
use secrecy::{ExposeSecret, SecretString};
use test_support::{Expect, Script, ScriptedImapServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A token endpoint that answers each request with the next scripted (status, body) and
/// records the request bodies.
struct TokenEndpoint {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn token_endpoint(answers: Vec<(u16, &'static str)>) -> TokenEndpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/token",
        listener.local_addr().unwrap().port()
    );
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        for (status, body) in answers {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read the headers, then Content-Length bytes of body.
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        seen.lock().unwrap().push(rest.to_owned());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    TokenEndpoint { url, requests }
}

fn provider(url: &str, refresh_token: &str) -> Arc<OAuth2TokenProvider> {
    let settings = OAuth2Settings {
        token_endpoint: url.to_owned(),
        client_id: "client-1".into(),
        client_secret: Some(SecretString::from("client-secret".to_owned())),
        scope: None,
    };
    OAuth2TokenProvider::new(settings, SecretString::from(refresh_token.to_owned())).unwrap()
}

#[tokio::test]
async fn a_refreshed_token_is_cached_and_a_rotated_refresh_token_is_handed_back() {
    let endpoint = token_endpoint(vec![(
        200,
        r#"{"access_token":"at-1","expires_in":3600,"refresh_token":"rt-2","token_type":"Bearer"}"#,
    )])
    .await;
    let provider = provider(&endpoint.url, "rt-1");
    let grant = provider.access_token().await.unwrap();
    assert_eq!(grant.access_token.expose_secret(), "at-1");
    assert_eq!(grant.rotated_refresh_token.unwrap().expose_secret(), "rt-2");
    assert_eq!(
        provider
            .take_rotated_refresh_token()
            .unwrap()
            .expose_secret(),
        "rt-2"
    );
    assert!(provider.take_rotated_refresh_token().is_none());
    let again = provider.access_token().await.unwrap();
    assert_eq!(
        again.access_token.expose_secret(),
        "at-1",
        "cached until shortly before expiry"
    );
    let requests = endpoint.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].contains("grant_type=refresh_token")
            && requests[0].contains("refresh_token=rt-1")
    );
    assert!(
        requests[0].contains("client_id=client-1")
            && requests[0].contains("client_secret=client-secret")
    );
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_with_the_rotated_refresh_token() {
    let endpoint = token_endpoint(vec![
        (
            200,
            r#"{"access_token":"at-1","expires_in":30,"refresh_token":"rt-2"}"#,
        ),
        (200, r#"{"access_token":"at-2","expires_in":3600}"#),
    ])
    .await;
    let provider = provider(&endpoint.url, "rt-1");
    assert_eq!(
        provider
            .access_token()
            .await
            .unwrap()
            .access_token
            .expose_secret(),
        "at-1"
    );
    let second = provider.access_token().await.unwrap();
    assert_eq!(
        second.access_token.expose_secret(),
        "at-2",
        "30 s left is within the refresh margin"
    );
    let requests = endpoint.requests.lock().unwrap().clone();
    assert!(requests[1].contains("refresh_token=rt-2"), "{requests:?}");
}

#[tokio::test]
async fn a_refused_refresh_is_told_apart_from_an_outage() {
    let endpoint = token_endpoint(vec![
        (
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ),
        (503, r#"{"error":"temporarily_unavailable"}"#),
    ])
    .await;
    let provider = provider(&endpoint.url, "rt-1");
    assert!(
        matches!(provider.access_token().await, Err(TokenError::RefreshRefused(m)) if m.contains("invalid_grant"))
    );
    assert!(matches!(
        provider.access_token().await,
        Err(TokenError::Transient(_))
    ));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/token",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    assert!(matches!(
        provider_for(&url).access_token().await,
        Err(TokenError::Transient(_))
    ));
}

fn provider_for(url: &str) -> Arc<OAuth2TokenProvider> {
    provider(url, "rt-x")
}

fn scripted_config(port: u16, source: Arc<OAuth2TokenProvider>) -> ImapConfig {
    let mut config = ImapConfig::new(
        "127.0.0.1",
        "user@example.test",
        Credentials::OAuth2(source),
    );
    config.connect_policy = integration_tests::rig_connect_policy();
    config.port = port;
    config.security = Security::None;
    config.command_timeout = Duration::from_secs(5);
    config
}

#[tokio::test]
async fn the_connector_logs_in_with_a_fresh_token_and_a_refused_refresh_is_invalid_credentials() {
    use base64::Engine;
    let endpoint = token_endpoint(vec![
        (200, r#"{"access_token":"fresh-token","expires_in":3600}"#),
        (400, r#"{"error":"invalid_grant"}"#),
    ])
    .await;
    let sasl = base64::engine::general_purpose::STANDARD
        .encode("user=user@example.test\x01auth=Bearer fresh-token\x01\x01");
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready")
        .expect("AUTHENTICATE XOAUTH2", &["+ "])
        .expect_line(&sasl, &["{tag} OK Success"])
        .step(
            Expect::StartsWith("CAPABILITY".into()),
            &["* CAPABILITY IMAP4rev1", "{tag} OK done"],
        );
    let server = ScriptedImapServer::start(script).await.unwrap();
    let mut connector = ImapConnector::new(scripted_config(
        server.port(),
        provider(&endpoint.url, "rt-1"),
    ));
    connector.connect().await.unwrap();
    server.finish().await.unwrap();

    // The second login's refresh is refused: nothing is sent to the server at all.
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready");
    let server = ScriptedImapServer::start(script).await.unwrap();
    let refused = provider(&endpoint.url, "rt-1");
    // A second provider, without a cached token, meets the endpoint's next answer: a refusal.
    let error = ImapConnector::new(scripted_config(server.port(), refused))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectorError::InvalidCredentials { .. }),
        "{error:?}"
    );
    assert!(server.finish().await.unwrap().is_empty());
}

/// A mailbox with OAuth2 token settings: the sync exchanges its refresh token at login, and the
/// refresh token the endpoint rotates is stored (sealed, with the client secret kept) even when
/// the sync then fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_exchanges_the_refresh_token_and_stores_the_rotated_one() {
    use base64::Engine;
    use email_model::{AuthKind, ImapSettings, NewMailbox, NewUser, Store};
    let endpoint = token_endpoint(vec![(
        200,
        r#"{"access_token":"fresh-token","expires_in":3600,"refresh_token":"rt-2"}"#,
    )])
    .await;
    let sasl = base64::engine::general_purpose::STANDARD
        .encode("user=user@example.test\x01auth=Bearer fresh-token\x01\x01");
    let script = Script::greeting("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready")
        .expect("AUTHENTICATE XOAUTH2", &["+ "])
        .expect_line(&sasl, &["{tag} OK Success"])
        .step(
            Expect::StartsWith("CAPABILITY".into()),
            &["* CAPABILITY IMAP4rev1", "{tag} OK done"],
        )
        .step(Expect::StartsWith("LIST".into()), &["{tag} NO not today"])
        .hangup();
    let server = ScriptedImapServer::start(script).await.unwrap();

    let (store, _database) = crate::model_store::sqlite_store();
    let user = store
        .create_user(NewUser {
            email: "owner@example.test".into(),
            name: "Owner".into(),
            enabled: true,
            capabilities: vec![],
        })
        .await
        .unwrap();
    let settings = sync_core::OAuth2MailboxSettings {
        token_endpoint: endpoint.url.clone(),
        client_id: "client-1".into(),
        scope: None,
    };
    let mailbox = store
        .create_mailbox(NewMailbox {
            owner_user_id: Some(user.id),
            email: "user@example.test".into(),
            imap: ImapSettings {
                host: "127.0.0.1".into(),
                port: server.port(),
                security: email_model::Security::None,
                user: "user@example.test".into(),
            },
            auth_kind: AuthKind::OAuth2,
            secret: Some(sync_core::oauth2_secret("rt-1", Some("client-secret"))),
            oauth_settings: Some(serde_json::to_string(&settings).unwrap()),
            first_sync_days: 30,
        })
        .await
        .unwrap();
    let mut factory = sync_core::ImapServerFactory::default();
    factory.connect_policy = integration_tests::rig_connect_policy();
    factory.command_timeout = Duration::from_secs(5);
    let synchronizer =
        sync_core::Synchronizer::new(store.clone(), factory, sync_core::SyncConfig::default());
    let report = synchronizer
        .sync_mailboxes(&[mailbox.id], true)
        .await
        .unwrap();
    assert!(
        matches!(
            report.outcomes[0].status,
            sync_core::OutcomeStatus::Failure(_)
        ),
        "LIST was refused, the login was not: {:?}",
        report.outcomes[0].status
    );
    let _ = server.finish().await;

    let request = endpoint.requests.lock().unwrap()[0].clone();
    assert!(request.contains("refresh_token=rt-1"), "{request}");
    assert!(request.contains("client_secret=client-secret"), "{request}");
    let stored = store.mailbox_secret(mailbox.id).await.unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose_secret()).unwrap();
    assert_eq!(
        stored["refresh_token"], "rt-2",
        "the rotated refresh token is kept"
    );
    assert_eq!(stored["client_secret"], "client-secret");
    assert!(
        store.open_episode(mailbox.id).await.unwrap().is_none(),
        "a refused LIST is not a credential failure"
    );
}
