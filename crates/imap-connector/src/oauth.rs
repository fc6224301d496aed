//! OAuth2 access tokens for XOAUTH2: refreshed from a refresh token at a token endpoint,
//! cached until shortly before they expire. A rotated refresh token is handed back to the
//! caller, who stores it; nothing is kept on disk here. No browser flow: the first refresh
//! token comes from the host application's consent flow.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// Where and as which client to refresh tokens.
#[derive(Debug, Clone)]
pub struct OAuth2Settings {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Some endpoints (Microsoft) want the scope again on refresh.
    pub scope: Option<String>,
}

impl OAuth2Settings {
    /// Google's token endpoint; scope `https://mail.google.com/`.
    pub fn google(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            token_endpoint: "https://oauth2.googleapis.com/token".into(),
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            scope: None,
        }
    }

    /// Microsoft identity platform for `tenant` ("common", "organizations" or a tenant id).
    pub fn microsoft(
        tenant: &str,
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
    ) -> Self {
        Self {
            token_endpoint: format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            client_id: client_id.into(),
            client_secret,
            scope: Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access".into()),
        }
    }
}

/// Why no token came.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The endpoint refused the refresh token (`invalid_grant`…): the user must re-authorize.
    #[error("the token endpoint refused the refresh: {0}")]
    RefreshRefused(String),
    /// The endpoint could not be reached or failed: try again later.
    #[error("the token endpoint failed: {0}")]
    Transient(String),
}

/// A usable access token, and a new refresh token when the endpoint rotated it.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub rotated_refresh_token: Option<SecretString>,
}

/// Gives an access token at each login.
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    fn access_token(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<TokenGrant, TokenError>> + Send + '_>>;
}

/// A token is refreshed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Refreshes access tokens with a refresh token.
#[derive(Debug)]
pub struct OAuth2TokenProvider {
    settings: OAuth2Settings,
    client: reqwest::Client,
    refresh_token: Mutex<SecretString>,
    cached: Mutex<Option<(SecretString, Instant)>>,
    /// A rotated refresh token not yet taken by the owner.
    rotated: Mutex<Option<SecretString>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

impl OAuth2TokenProvider {
    pub fn new(
        settings: OAuth2Settings,
        refresh_token: SecretString,
    ) -> Result<Arc<Self>, TokenError> {
        let tls = crate::tls::rustls_config(&crate::config::TlsOptions::default())
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        Ok(Arc::new(Self {
            settings,
            client,
            refresh_token: Mutex::new(refresh_token),
            cached: Mutex::new(None),
            rotated: Mutex::new(None),
        }))
    }

    /// The refresh token the endpoint rotated since the last call, for the owner to store
    /// (when the connector refreshed at login, this is how the new token reaches the owner).
    pub fn take_rotated_refresh_token(&self) -> Option<SecretString> {
        self.rotated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    async fn refresh(&self) -> Result<TokenGrant, TokenError> {
        let refresh_token = self
            .refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
            ("client_id", self.settings.client_id.clone()),
        ];
        if let Some(secret) = &self.settings.client_secret {
            form.push(("client_secret", secret.expose_secret().to_owned()));
        }
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope.clone()));
        }
        let response = self
            .client
            .post(&self.settings.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Transient(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        if status.is_success() {
            let token: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| TokenError::Transient(format!("unreadable token response: {e}")))?;
            let expires_in = Duration::from_secs(token.expires_in.unwrap_or(3600));
            let access_token = SecretString::from(token.access_token);
            *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((access_token.clone(), Instant::now() + expires_in));
            let rotated = token.refresh_token.map(SecretString::from);
            if let Some(rotated) = &rotated {
                *self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = rotated.clone();
                *self.rotated.lock().unwrap_or_else(|p| p.into_inner()) = Some(rotated.clone());
            }
            return Ok(TokenGrant {
                access_token,
                rotated_refresh_token: rotated,
            });
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
        let message = error.as_ref().map_or_else(
            || format!("HTTP {status}"),
            |e| {
                format!(
                    "{}: {}",
                    e.error,
                    e.error_description.as_deref().unwrap_or("")
                )
            },
        );
        // RFC 6749 §5.2: invalid_grant (expired or revoked refresh token), invalid_client and
        // unauthorized_client need the user or the administrator; anything else may pass.
        let refused = error.as_ref().is_some_and(|e| {
            matches!(
                e.error.as_str(),
                "invalid_grant" | "invalid_client" | "unauthorized_client"
            )
        });
        if refused {
            Err(TokenError::RefreshRefused(message))
        } else {
            Err(TokenError::Transient(message))
        }
    }
}

impl TokenSource for OAuth2TokenProvider {
    fn access_token(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<TokenGrant, TokenError>> + Send + '_>> {
        Box::pin(async move {
            let cached = self
                .cached
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some((token, expires_at)) = cached
                && Instant::now() + EXPIRY_MARGIN < expires_at
            {
                return Ok(TokenGrant {
                    access_token: token,
                    rotated_refresh_token: None,
                });
            }
            self.refresh().await
        })
    }
}
