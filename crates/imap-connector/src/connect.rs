//! Opening a session: TCP, TLS or STARTTLS, greeting, login (LOGIN or XOAUTH2), capabilities,
//! ID and COMPRESS=DEFLATE.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_imap::imap_proto::{Capability, Response, ResponseCode, Status};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::{Credentials, ImapConfig, Security};
use crate::error::{ConnectorError, Result, from_imap};
use crate::session::{ImapSession, execute, outcome_text, with_timeout};
use crate::stream::{BoxedStream, ByteCounters, CommandLog, CommandTap, Counting};
use crate::tls::tls_connector;

/// An open, logged-in session and what the server said it can do.
pub(crate) struct Established {
    pub(crate) session: ImapSession,
    pub(crate) capabilities: BTreeSet<String>,
    pub(crate) compressed: bool,
}

/// Shared per-connector instruments that survive reconnects.
pub(crate) struct Instruments {
    pub(crate) counters: Arc<ByteCounters>,
    pub(crate) log: Arc<CommandLog>,
}

type Client = async_imap::Client<BoxedStream>;

pub(crate) async fn establish(
    config: &ImapConfig,
    instruments: &Instruments,
) -> Result<Established> {
    let address = format!("{}:{}", config.host, config.port);
    let addresses = with_timeout(
        config.connect_timeout,
        "resolve",
        config.connect_policy.resolve(&config.host, config.port),
    )
    .await??;
    let tcp = with_timeout(
        config.connect_timeout,
        "connect",
        TcpStream::connect(addresses.as_slice()),
    )
    .await?
    .map_err(|source| ConnectorError::Connection {
        address: address.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let counted = Counting::new(tcp, instruments.counters.clone());
    let mut tap_active = Arc::new(AtomicBool::new(true));

    let (client, capabilities) = match config.security {
        Security::Tls => {
            let tls = handshake(config, counted).await?;
            let client = Client::new(Box::new(CommandTap::new(
                tls,
                instruments.log.clone(),
                tap_active.clone(),
            )));
            greet(config, client, &address).await?
        }
        Security::None => {
            let client = Client::new(Box::new(CommandTap::new(
                counted,
                instruments.log.clone(),
                tap_active.clone(),
            )));
            greet(config, client, &address).await?
        }
        Security::Starttls => {
            let client = Client::new(Box::new(CommandTap::new(
                counted,
                instruments.log.clone(),
                tap_active.clone(),
            )));
            let (mut client, mut capabilities) = greet(config, client, &address).await?;
            if capabilities.is_empty() {
                capabilities = client_capabilities(config, &mut client, &address).await?;
            }
            if !capabilities.contains("STARTTLS") {
                return Err(ConnectorError::Tls(format!(
                    "{address} does not offer STARTTLS; refusing to continue in plain text"
                )));
            }
            with_timeout(
                config.command_timeout,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?
            .map_err(|e| match e {
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                    ConnectorError::Tls(format!(
                        "STARTTLS was refused by {address}: {}; choose TLS (port 993) or ask the server's administrator",
                        crate::error::server_words(&text)
                    ))
                }
                other => from_imap(other, &address, false),
            })?;
            // The tap below TLS would now see ciphertext: a new one goes on top.
            tap_active.store(false, Ordering::Relaxed);
            tap_active = Arc::new(AtomicBool::new(true));
            let tls = handshake(config, client.into_inner()).await?;
            let client = Client::new(Box::new(CommandTap::new(
                tls,
                instruments.log.clone(),
                tap_active.clone(),
            )));
            // No greeting follows STARTTLS; capabilities may differ now.
            (client, BTreeSet::new())
        }
    };

    // Capabilities announced before login may change with it: they are read again below.
    drop(capabilities);
    let (mut session, login_capabilities) = login(config, client, &address).await?;
    let mut capabilities = match login_capabilities {
        Some(capabilities) => capabilities,
        None => session_capabilities(config, &mut session, &address).await?,
    };
    capabilities.remove("STARTTLS");

    if capabilities.contains("ID") {
        let id = format!(
            r#"ID ("name" "imap-sync" "version" "{}")"#,
            env!("CARGO_PKG_VERSION")
        );
        // The server's own ID is only informative: a refusal is not worth failing for.
        if let Err(error) = execute(&mut session, &id, config.command_timeout, &address, |_| {
            Ok(())
        })
        .await
        {
            tracing::debug!(%error, "ID refused");
        }
    }

    let mut compressed = false;
    if config.compress && capabilities.contains("COMPRESS=DEFLATE") {
        let log = instruments.log.clone();
        let below = tap_active.clone();
        let top = Arc::new(AtomicBool::new(true));
        session = with_timeout(
            config.command_timeout,
            "COMPRESS",
            session.compress(move |deflate| {
                below.store(false, Ordering::Relaxed);
                Box::new(CommandTap::new(deflate, log, top)) as BoxedStream
            }),
        )
        .await?
        .map_err(|e| from_imap(e, &address, false))?;
        compressed = true;
    }
    tracing::debug!(
        %address,
        security = ?config.security,
        compressed,
        capabilities = capabilities.len(),
        "IMAP session established"
    );
    Ok(Established {
        session,
        capabilities,
        compressed,
    })
}

async fn handshake<S>(config: &ImapConfig, stream: S) -> Result<tokio_rustls::client::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (connector, refused) = tls_connector(&config.tls)?;
    let name = rustls::pki_types::ServerName::try_from(config.host.clone()).map_err(|e| {
        ConnectorError::Tls(format!(
            "{} is not a host name TLS can check: {e}",
            config.host
        ))
    })?;
    with_timeout(
        config.connect_timeout,
        "TLS handshake",
        connector.connect(name, stream),
    )
    .await?
    .map_err(|e| {
        let fingerprint = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
        ConnectorError::Tls(crate::tls::explain_handshake_failure(
            &config.host,
            &e,
            fingerprint,
        ))
    })
}

/// Reads the greeting; returns the capabilities it announced, if any.
async fn greet(
    config: &ImapConfig,
    mut client: Client,
    address: &str,
) -> Result<(Client, BTreeSet<String>)> {
    let greeting = with_timeout(config.connect_timeout, "greeting", client.read_response())
        .await?
        .map_err(|source| ConnectorError::Connection {
            address: address.to_owned(),
            source,
        })?
        .ok_or_else(|| ConnectorError::Connection {
            address: address.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the greeting",
            ),
        })?;
    let capabilities = match greeting.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            outcome,
        } => match &outcome.code {
            Some(ResponseCode::Capabilities(list)) => capability_names(list),
            _ => BTreeSet::new(),
        },
        Response::Data {
            status: Status::Bye,
            outcome,
        } => {
            return Err(crate::error::classify_refusal(
                &format!("greeting BYE: {}", outcome_text(outcome)),
                false,
            ));
        }
        other => {
            return Err(ConnectorError::Protocol(format!(
                "unexpected greeting {other:?}"
            )));
        }
    };
    Ok((client, capabilities))
}

pub(crate) fn capability_names(list: &[Capability<'_>]) -> BTreeSet<String> {
    list.iter()
        .map(|capability| match capability {
            Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
            Capability::Auth(mechanism) => format!("AUTH={}", mechanism.to_ascii_uppercase()),
            Capability::Atom(atom) => atom.to_ascii_uppercase(),
        })
        .collect()
}

async fn client_capabilities(
    config: &ImapConfig,
    client: &mut Client,
    address: &str,
) -> Result<BTreeSet<String>> {
    // async-imap keeps raw commands private before login: write this one ourselves, with a
    // tag of our own that its tag generator never produces.
    const TAG: &str = "pre0";
    let stream = client.get_mut();
    with_timeout(config.command_timeout, "CAPABILITY", async {
        stream
            .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
            .await?;
        stream.flush().await
    })
    .await?
    .map_err(|source| ConnectorError::Connection {
        address: address.to_owned(),
        source,
    })?;
    let mut capabilities = BTreeSet::new();
    loop {
        let response = with_timeout(config.command_timeout, "CAPABILITY", client.read_response())
            .await?
            .map_err(|source| ConnectorError::Connection {
                address: address.to_owned(),
                source,
            })?
            .ok_or_else(|| {
                ConnectorError::Protocol("connection closed during CAPABILITY".into())
            })?;
        match response.parsed() {
            Response::Capabilities(list) => capabilities = capability_names(list),
            Response::Done {
                tag,
                status,
                outcome,
            } if tag.0 == TAG => {
                return match status {
                    Status::Ok => Ok(capabilities),
                    _ => Err(ConnectorError::Protocol(format!(
                        "CAPABILITY: {}",
                        outcome_text(outcome)
                    ))),
                };
            }
            _ => {}
        }
    }
}

async fn session_capabilities(
    config: &ImapConfig,
    session: &mut ImapSession,
    address: &str,
) -> Result<BTreeSet<String>> {
    let mut capabilities = BTreeSet::new();
    execute(
        session,
        "CAPABILITY",
        config.command_timeout,
        address,
        |response| {
            if let Response::Capabilities(list) = response {
                capabilities = capability_names(list);
            }
            Ok(())
        },
    )
    .await?;
    Ok(capabilities)
}

/// SASL XOAUTH2: the initial response, then an empty answer to the server's error challenge so
/// that it can send its tagged NO.
struct XOAuth2 {
    initial: String,
    sent: bool,
}

impl async_imap::Authenticator for &mut XOAuth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        if self.sent {
            String::new()
        } else {
            self.sent = true;
            self.initial.clone()
        }
    }
}

async fn login(
    config: &ImapConfig,
    client: Client,
    address: &str,
) -> Result<(ImapSession, Option<BTreeSet<String>>)> {
    match &config.credentials {
        Credentials::Password(password) => {
            let result = with_timeout(
                config.command_timeout,
                "LOGIN",
                client.login_with_capabilities(&config.user, password.expose_secret()),
            )
            .await?;
            match result {
                Ok((session, capabilities)) => Ok((
                    session,
                    capabilities.map(|c| {
                        c.iter()
                            .map(|capability| match capability {
                                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                                async_imap::types::Capability::Auth(m) => {
                                    format!("AUTH={}", m.to_ascii_uppercase())
                                }
                                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
                            })
                            .collect()
                    }),
                )),
                Err((error, _client)) => {
                    Err(with_login(from_imap(error, address, true), config, address))
                }
            }
        }
        Credentials::OAuth2AccessToken(token) => xoauth2(config, client, address, token).await,
        Credentials::OAuth2(source) => {
            let grant = source.access_token().await.map_err(|error| match error {
                crate::oauth::TokenError::RefreshRefused(message) => {
                    ConnectorError::InvalidCredentials {
                        message: format!("OAuth2 refresh refused: {message}"),
                    }
                }
                crate::oauth::TokenError::Transient(message) => {
                    ConnectorError::TokenEndpoint(message)
                }
            })?;
            xoauth2(config, client, address, &grant.access_token).await
        }
    }
}

async fn xoauth2(
    config: &ImapConfig,
    client: Client,
    address: &str,
    token: &secrecy::SecretString,
) -> Result<(ImapSession, Option<BTreeSet<String>>)> {
    let mut authenticator = XOAuth2 {
        initial: format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            config.user,
            token.expose_secret()
        ),
        sent: false,
    };
    let result = with_timeout(
        config.command_timeout,
        "AUTHENTICATE",
        client.authenticate("XOAUTH2", &mut authenticator),
    )
    .await?;
    match result {
        Ok(session) => Ok((session, None)),
        Err((error, _client)) => Err(with_login(from_imap(error, address, true), config, address)),
    }
}

/// A refused login says whose login, where, and what to do.
fn with_login(error: ConnectorError, config: &ImapConfig, address: &str) -> ConnectorError {
    match error {
        ConnectorError::InvalidCredentials { message } => ConnectorError::InvalidCredentials {
            message: format!(
                "{} for {} at {address}; check the password (or the OAuth2 grant) in the mailbox's settings",
                message.trim_end_matches('.'),
                config.user
            ),
        },
        other => other,
    }
}
