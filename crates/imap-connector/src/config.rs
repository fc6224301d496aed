//! What it takes to reach and log in to one IMAP account.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text all the way: only for loopback and tests.
    None,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// TLS from the first byte (port 993).
    Tls,
}

/// How to log in. The secret is only read at the LOGIN or AUTHENTICATE call.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password(SecretString),
    /// An OAuth2 access token, sent with SASL XOAUTH2.
    OAuth2AccessToken(SecretString),
    /// OAuth2 with a token source asked for a fresh access token at each login.
    OAuth2(std::sync::Arc<dyn crate::oauth::TokenSource>),
}

/// Trust settings for TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// A PEM file of extra CAs to trust besides the webpki roots (a company CA, a test CA).
    pub extra_ca_file: Option<PathBuf>,
    /// Accept any certificate. Only by explicit choice; logged as a warning on every connect.
    pub accept_invalid_certs: bool,
    /// The SHA-256 fingerprint of one certificate to accept besides the trusted ones (a
    /// self-signed server's): exactly that certificate, nothing else loosened.
    pub pinned_sha256: Option<String>,
}

/// One account's connection settings.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub credentials: Credentials,
    pub tls: TlsOptions,
    /// Limit for establishing the connection (TCP, TLS and greeting).
    pub connect_timeout: Duration,
    /// Limit for any one command, including reading its whole answer.
    pub command_timeout: Duration,
    /// Messages larger than this are returned with their headers only, marked too large.
    pub max_message_size: u64,
    /// Use COMPRESS=DEFLATE when the server offers it.
    pub compress: bool,
    /// Which addresses may be connected to (checked after DNS resolution at every connect).
    pub connect_policy: crate::ConnectPolicy,
}

/// Default limit on the size of a message to download: 50 MB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

impl ImapConfig {
    /// Settings with the defaults: TLS on 993, 30 s to connect, 120 s per command, 50 MB
    /// per message, compression on, public addresses only.
    pub fn new(host: impl Into<String>, user: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            host: host.into(),
            port: 993,
            security: Security::Tls,
            user: user.into(),
            credentials,
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            compress: true,
            connect_policy: crate::ConnectPolicy::default(),
        }
    }

    /// Gmail: imap.gmail.com:993 with TLS and an OAuth2 access token.
    pub fn gmail(user: impl Into<String>, access_token: SecretString) -> Self {
        Self::new(
            "imap.gmail.com",
            user,
            Credentials::OAuth2AccessToken(access_token),
        )
    }

    /// Office 365: outlook.office365.com:993 with TLS and an OAuth2 access token.
    pub fn office365(user: impl Into<String>, access_token: SecretString) -> Self {
        Self::new(
            "outlook.office365.com",
            user,
            Credentials::OAuth2AccessToken(access_token),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = ImapConfig::new(
            "imap.example.test",
            "me",
            Credentials::Password("hunter2-secret".to_owned().into()),
        );
        let token = ImapConfig::gmail("me@gmail.com", "ya29.secret-token".to_owned().into());
        let printed = format!("{config:?} {config:#?} {token:?}");
        assert!(
            !printed.contains("hunter2-secret") && !printed.contains("ya29.secret-token"),
            "{printed}"
        );
        assert!(printed.contains("imap.example.test") && printed.contains("REDACTED"));
    }
}
