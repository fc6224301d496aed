//! How the synchronizer gets a server for a mailbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use email_model::Mailbox;
use imap_connector::{
    Credentials, ImapConfig, ImapConnector, MailServer, OAuth2Settings, OAuth2TokenProvider,
    TlsOptions,
};
use secrecy::{ExposeSecret, SecretString};

/// Makes a [`MailServer`] for a mailbox from its settings and opened secret.
pub trait ServerFactory: Send + Sync {
    type Server: MailServer;
    fn server_for(&self, mailbox: &Mailbox, secret: SecretString) -> Self::Server;
    /// The secret to store for a mailbox whose OAuth2 refresh token a login rotated (the old
    /// one may stop working): asked after every session with the server.
    fn take_rotated_secret(&self, _mailbox_id: i64) -> Option<SecretString> {
        None
    }
}

/// How an OAuth2 mailbox refreshes its access tokens: its `oauth_settings` (JSON, no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OAuth2MailboxSettings {
    pub token_endpoint: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The sealed secret of an OAuth2 mailbox with [`OAuth2MailboxSettings`].
#[derive(serde::Serialize, serde::Deserialize)]
struct OAuth2Secret {
    refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// The secret to store for an OAuth2 mailbox: its refresh token and the client's secret.
pub fn oauth2_secret(refresh_token: &str, client_secret: Option<&str>) -> SecretString {
    let secret = OAuth2Secret {
        refresh_token: refresh_token.to_owned(),
        client_secret: client_secret.map(str::to_owned),
    };
    SecretString::from(serde_json::to_string(&secret).unwrap_or_default())
}

/// The secret of an OAuth2 mailbox after its user gave a new refresh token: the client secret
/// stored with the old one is kept.
pub fn renew_oauth2_secret(existing: Option<&SecretString>, refresh_token: &str) -> SecretString {
    let client_secret = existing
        .and_then(|e| serde_json::from_str::<OAuth2Secret>(e.expose_secret()).ok())
        .and_then(|e| e.client_secret);
    oauth2_secret(refresh_token, client_secret.as_deref())
}

/// The token provider of one OAuth2 mailbox, shared by all its sessions (IDLE and sync at once
/// must not both spend a refresh token the endpoint rotates).
#[derive(Debug)]
struct ProviderEntry {
    provider: Arc<OAuth2TokenProvider>,
    client_secret: Option<String>,
    /// The refresh token the store holds for it: another one means new credentials.
    stored_refresh_token: String,
}

type Providers = Arc<Mutex<HashMap<i64, ProviderEntry>>>;

/// The real factory: an [`ImapConnector`] per mailbox.
#[derive(Debug, Clone)]
pub struct ImapServerFactory {
    pub tls: TlsOptions,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_message_size: u64,
    pub compress: bool,
    /// Where its connectors may connect (public addresses only by default).
    pub connect_policy: imap_connector::ConnectPolicy,
    providers: Providers,
}

impl Default for ImapServerFactory {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            max_message_size: imap_connector::DEFAULT_MAX_MESSAGE_SIZE,
            compress: true,
            connect_policy: imap_connector::ConnectPolicy::default(),
            providers: Providers::default(),
        }
    }
}

impl ImapServerFactory {
    fn oauth2_provider(
        &self,
        mailbox: &Mailbox,
        secret: &SecretString,
    ) -> Option<Arc<OAuth2TokenProvider>> {
        let settings: OAuth2MailboxSettings =
            match serde_json::from_str(mailbox.oauth_settings.as_deref()?) {
                Ok(settings) => settings,
                Err(error) => {
                    tracing::error!(%error, mailbox = mailbox.id, "unreadable oauth_settings");
                    return None;
                }
            };
        // A bare refresh token is accepted too (no client secret).
        let stored: OAuth2Secret =
            serde_json::from_str(secret.expose_secret()).unwrap_or_else(|_| OAuth2Secret {
                refresh_token: secret.expose_secret().to_owned(),
                client_secret: None,
            });
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = providers.get(&mailbox.id)
            && entry.stored_refresh_token == stored.refresh_token
        {
            return Some(entry.provider.clone());
        }
        let provider = OAuth2TokenProvider::new(
            OAuth2Settings {
                token_endpoint: settings.token_endpoint,
                client_id: settings.client_id,
                client_secret: stored.client_secret.clone().map(SecretString::from),
                scope: settings.scope,
            },
            SecretString::from(stored.refresh_token.clone()),
        );
        match provider {
            Ok(provider) => {
                providers.insert(
                    mailbox.id,
                    ProviderEntry {
                        provider: provider.clone(),
                        client_secret: stored.client_secret,
                        stored_refresh_token: stored.refresh_token,
                    },
                );
                Some(provider)
            }
            Err(error) => {
                tracing::error!(%error, mailbox = mailbox.id, "OAuth2 token provider");
                None
            }
        }
    }
}

impl ServerFactory for ImapServerFactory {
    type Server = ImapConnector;

    fn take_rotated_secret(&self, mailbox_id: i64) -> Option<SecretString> {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        let entry = providers.get_mut(&mailbox_id)?;
        let rotated = entry.provider.take_rotated_refresh_token()?;
        entry.stored_refresh_token = rotated.expose_secret().to_owned();
        Some(oauth2_secret(
            rotated.expose_secret(),
            entry.client_secret.as_deref(),
        ))
    }

    fn server_for(&self, mailbox: &Mailbox, secret: SecretString) -> ImapConnector {
        let credentials = match mailbox.auth_kind {
            email_model::AuthKind::Password => Credentials::Password(secret),
            // With token settings the secret is a refresh token, exchanged at each login;
            // without, it is an access token the host application keeps fresh.
            email_model::AuthKind::OAuth2 => match self.oauth2_provider(mailbox, &secret) {
                Some(provider) => Credentials::OAuth2(provider),
                None => Credentials::OAuth2AccessToken(secret),
            },
        };
        let mut config = ImapConfig::new(
            mailbox.imap.host.clone(),
            mailbox.imap.user.clone(),
            credentials,
        );
        config.port = mailbox.imap.port;
        config.security = match mailbox.imap.security {
            email_model::Security::None => imap_connector::Security::None,
            email_model::Security::Starttls => imap_connector::Security::Starttls,
            email_model::Security::Tls => imap_connector::Security::Tls,
        };
        config.tls = self.tls.clone();
        config.connect_policy = self.connect_policy.clone();
        config.tls.pinned_sha256 = mailbox.tls_pin.clone();
        config.connect_timeout = self.connect_timeout;
        config.command_timeout = self.command_timeout;
        config.max_message_size = self.max_message_size;
        config.compress = self.compress;
        ImapConnector::new(config)
    }
}
