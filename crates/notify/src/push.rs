//! The real-time push channel (best effort; the login notice is the durable one): a hub that
//! delivers at once to connected clients, a WebSocket route for them, and PostgreSQL `NOTIFY`
//! on [`PUSH_NOTIFY_CHANNEL`] with the same JSON for host applications that listen to the
//! database.
//!
//! A browser connects to `GET /notifications/ws?token=…` with a short-lived token the host
//! application mints itself: a JWT signed with HS256 and the secret shared through
//! configuration, claims `sub` = the user id and `exp`. A user only ever receives his own
//! notices (those of system mailboxes come to him when he holds the capability, because the
//! outbox addresses them to him).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::{Notifier, NotifyError};

/// The PostgreSQL channel that carries each pushed notice.
pub const PUSH_NOTIFY_CHANNEL: &str = "imap_sync_credential_notices";

/// Connected clients, by user.
#[derive(Debug, Default)]
pub struct PushHub {
    subscribers: Mutex<HashMap<i64, Vec<mpsc::UnboundedSender<String>>>>,
}

impl PushHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A stream of the notices for `user_id`.
    pub fn subscribe(&self, user_id: i64) -> mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user_id)
            .or_default()
            .push(sender);
        receiver
    }

    /// Sends to every connected client of `user_id`; returns how many got it.
    pub fn publish(&self, user_id: i64, message: &str) -> usize {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(senders) = subscribers.get_mut(&user_id) else {
            return 0;
        };
        senders.retain(|sender| sender.send(message.to_owned()).is_ok());
        senders.len()
    }
}

/// The JSON of a pushed notice.
pub fn push_payload(entry: &email_model::OutboxEntry) -> String {
    serde_json::json!({
        "type": "credential_failure",
        "episode": entry.episode_id,
        "user": entry.user_id,
        "mailbox": entry.mailbox_id,
        "mailbox_email": entry.mailbox_email,
        "imap_user": entry.imap_user,
        "imap_host": entry.imap_host,
        "reason": entry.reason,
        "since": entry.opened_at.to_rfc3339(),
    })
    .to_string()
}

/// Pushes notices to connected clients and to database listeners.
#[derive(Debug)]
pub struct PushNotifier<S: email_model::Store> {
    hub: Arc<PushHub>,
    store: S,
}

impl<S: email_model::Store> PushNotifier<S> {
    pub fn new(hub: Arc<PushHub>, store: S) -> Self {
        Self { hub, store }
    }
}

impl<S: email_model::Store + std::fmt::Debug> Notifier for PushNotifier<S> {
    fn channel(&self) -> &'static str {
        "push"
    }

    fn deliver<'a>(
        &'a self,
        entry: &'a email_model::OutboxEntry,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(async move {
            let payload = push_payload(entry);
            let clients = self.hub.publish(entry.user_id, &payload);
            tracing::debug!(user = entry.user_id, clients, "notice pushed");
            self.store
                .notify_listeners(PUSH_NOTIFY_CHANNEL.to_owned(), payload)
                .await?;
            Ok(())
        })
    }
}

/// Checks (and, for host applications and tests, mints) the tokens of the WebSocket route.
#[derive(Debug)]
pub struct PushTokens {
    secret: SecretString,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

impl PushTokens {
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    /// A token for `user_id` valid until `expires_at` (what the host application does).
    pub fn mint(&self, user_id: i64, expires_at: chrono::DateTime<chrono::Utc>) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            exp: u64::try_from(expires_at.timestamp()).unwrap_or(0),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.secret.expose_secret().as_bytes()),
        )
        .unwrap_or_default()
    }

    /// The user a valid, unexpired token names.
    pub fn verify(&self, token: &str) -> Option<i64> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(self.secret.expose_secret().as_bytes()),
            &validation,
        )
        .ok()?;
        data.claims.sub.parse().ok()
    }
}

#[derive(Debug)]
struct RouteState {
    hub: Arc<PushHub>,
    tokens: Arc<PushTokens>,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: String,
}

/// The WebSocket route, ready to mount: `GET /notifications/ws?token=…`.
pub fn websocket_routes(hub: Arc<PushHub>, tokens: Arc<PushTokens>) -> axum::Router {
    axum::Router::new()
        .route("/notifications/ws", axum::routing::get(connect))
        .with_state(Arc::new(RouteState { hub, tokens }))
}

async fn connect(
    State(state): State<Arc<RouteState>>,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(user_id) = state.tokens.verify(&query.token) else {
        return (StatusCode::UNAUTHORIZED, "invalid or expired token").into_response();
    };
    let notices = state.hub.subscribe(user_id);
    upgrade.on_upgrade(move |socket| forward(socket, notices))
}

async fn forward(mut socket: WebSocket, mut notices: mpsc::UnboundedReceiver<String>) {
    while let Some(notice) = notices.recv().await {
        if socket.send(Message::Text(notice.into())).await.is_err() {
            break;
        }
    }
}
