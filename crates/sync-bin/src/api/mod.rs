//! The daemon's HTTP side (axum): health, readiness, Prometheus metrics, the JSON API, the
//! notification WebSocket and the OpenAPI document. Every route is listed once, in
//! [`routes::ROUTES`]: the OpenAPI document is made from that list and a test holds the router
//! to it. One module per concern: `guard` (who may call), `users`, `mailboxes`, `emails`,
//! `metrics`, `routes` (the table and the OpenAPI document).

mod emails;
mod guard;
mod mailboxes;
mod metrics;
mod routes;
mod users;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use email_model::{Store, StoreError};
use sync_core::{Daemon, ImapServerFactory};

/// What the handlers share.
pub(crate) struct AppState<S: Store + Clone + 'static> {
    pub(crate) store: S,
    pub(crate) daemon: Arc<Daemon<S, ImapServerFactory>>,
    pub(crate) factory: ImapServerFactory,
    pub(crate) token: Option<String>,
}

type Shared<S> = Arc<AppState<S>>;

/// An error as the API answers it: a status and `{"error": "…"}`.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = match &error {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::OtherAccount { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, error.to_string())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self(StatusCode::BAD_REQUEST, format!("{error:#}"))
    }
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("{what} not found"))
}

type ApiResult = Result<Response, ApiError>;

async fn user_or_404<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<email_model::User, ApiError> {
    state
        .store
        .user(id)
        .await?
        .ok_or_else(|| not_found(format!("user {id}")))
}

async fn mailbox_or_404<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<email_model::Mailbox, ApiError> {
    state
        .store
        .mailbox(id)
        .await?
        .ok_or_else(|| not_found(format!("mailbox {id}")))
}

async fn email_or_404<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<email_model::StoredEmail, ApiError> {
    state
        .store
        .email(id)
        .await?
        .ok_or_else(|| not_found(format!("email {id}")))
}

fn json(value: serde_json::Value) -> ApiResult {
    Ok(Json(value).into_response())
}

pub(crate) fn router<S: Store + Clone + std::fmt::Debug + 'static>(
    state: Shared<S>,
    websocket: Router,
) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics::metrics::<S>))
        .route("/openapi.json", get(routes::openapi))
        .route(
            "/api/users",
            get(users::list_users::<S>).post(users::add_user::<S>),
        )
        .route(
            "/api/users/{id}",
            get(users::get_user::<S>)
                .patch(users::update_user::<S>)
                .delete(users::delete_user::<S>),
        )
        .route(
            "/api/users/{id}/login-notices",
            get(users::login_notices::<S>),
        )
        .route(
            "/api/users/{id}/login-notices/shown",
            post(users::take_login_notices::<S>),
        )
        .route(
            "/api/mailboxes",
            get(mailboxes::list_mailboxes::<S>).post(mailboxes::add_mailbox::<S>),
        )
        .route(
            "/api/mailboxes/{id}",
            get(mailboxes::get_mailbox::<S>)
                .patch(mailboxes::update_mailbox::<S>)
                .delete(mailboxes::delete_mailbox::<S>),
        )
        .route(
            "/api/mailboxes/{id}/check",
            post(mailboxes::check_mailbox::<S>),
        )
        .route(
            "/api/mailboxes/{id}/folders",
            get(mailboxes::get_folders::<S>).patch(mailboxes::switch_folders::<S>),
        )
        .route(
            "/api/mailboxes/{id}/sync",
            post(mailboxes::sync_mailbox::<S>),
        )
        .route("/api/mailboxes/{id}/emails", get(emails::list_emails::<S>))
        .route("/api/emails/{id}", get(emails::get_email::<S>))
        .route(
            "/api/emails/{id}/flags",
            axum::routing::patch(emails::change_flags::<S>),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            guard::require_token::<S>,
        ))
        .with_state(state.clone());
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready::<S>))
        .with_state(state)
        .merge(api)
        .merge(websocket)
}

async fn ready<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> Response {
    match state.store.users().await {
        Ok(_) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(error) => ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
