//! How the synchronizer gets a server for a mailbox.

use std::time::Duration;

use email_model::Mailbox;
use imap_connector::{Credentials, ImapConfig, ImapConnector, MailServer, TlsOptions};
use secrecy::SecretString;

/// Makes a [`MailServer`] for a mailbox from its settings and opened secret.
pub trait ServerFactory: Send + Sync {
    type Server: MailServer;
    fn server_for(&self, mailbox: &Mailbox, secret: SecretString) -> Self::Server;
}

/// The real factory: an [`ImapConnector`] per mailbox.
#[derive(Debug, Clone)]
pub struct ImapServerFactory {
    pub tls: TlsOptions,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_message_size: u64,
    pub compress: bool,
}

impl Default for ImapServerFactory {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            max_message_size: imap_connector::DEFAULT_MAX_MESSAGE_SIZE,
            compress: true,
        }
    }
}

impl ServerFactory for ImapServerFactory {
    type Server = ImapConnector;

    fn server_for(&self, mailbox: &Mailbox, secret: SecretString) -> ImapConnector {
        let credentials = match mailbox.auth_kind {
            email_model::AuthKind::Password => Credentials::Password(secret),
            // The OAuth2 refresh-token exchange arrives with the second connector issue; until
            // then the stored secret is used as the access token.
            email_model::AuthKind::OAuth2 => Credentials::OAuth2AccessToken(secret),
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
        config.connect_timeout = self.connect_timeout;
        config.command_timeout = self.command_timeout;
        config.max_message_size = self.max_message_size;
        config.compress = self.compress;
        ImapConnector::new(config)
    }
}
