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

/// An error as the API answers it: a status and `{"error": "…", "field": "…"}` (the field when
/// one value was at fault). A 500 is a fault of ours: it is logged with the request's id, which
/// the answer carries so an operator can find the log line.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: String) -> Self {
        Self {
            status,
            message,
            field: None,
        }
    }

    pub(crate) fn on_field(status: StatusCode, field: &str, message: String) -> Self {
        Self {
            status,
            message,
            field: Some(field.to_owned()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(field) = &self.field {
            body["field"] = serde_json::json!(field);
        }
        if self.status.is_server_error() {
            let request_id = guard::current_request_id();
            tracing::error!(request_id = %request_id, error = %self.message, "API request failed");
            body["request_id"] = serde_json::json!(request_id);
            body["error"] = serde_json::json!(format!(
                "{}; the daemon's log has the details under request id {request_id}",
                self.message
            ));
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, message),
            StoreError::Refused(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
            StoreError::OtherAccount { .. } => ApiError::new(StatusCode::CONFLICT, message),
            StoreError::Invalid { field, .. } => {
                Self::on_field(StatusCode::UNPROCESSABLE_ENTITY, &field, message)
            }
            StoreError::Conflict { field, .. } => {
                Self::on_field(StatusCode::CONFLICT, &field, message)
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    /// The shared CLI/API routines answer anyhow errors: a store error inside keeps its
    /// status; the rest are the request's mistakes.
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<StoreError>() {
            Ok(store) => store.into(),
            Err(error) => ApiError::new(StatusCode::BAD_REQUEST, format!("{error:#}")),
        }
    }
}

fn not_found(what: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
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
        .route("/api/mailboxes/{id}/runs", get(mailboxes::list_runs::<S>))
        .route("/api/mailboxes/{id}/emails", get(emails::list_emails::<S>))
        .route(
            "/api/mailboxes/{id}/dropped-changes",
            get(emails::list_dropped_changes::<S>),
        )
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
        .with_state(state.clone())
        .merge(api)
        .merge(websocket)
        .layer(middleware::from_fn_with_state(
            state,
            guard::refuse_cross_site::<S>,
        ))
        .layer(middleware::from_fn(guard::with_request_id))
}

/// Ready when the database answers and the scheduler is working.
async fn ready<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> Response {
    let unready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unready", "error": reason})),
        )
            .into_response()
    };
    if let Err(error) = state.store.users().await {
        return unready(format!("the database does not answer: {error}"));
    }
    match state.daemon.readiness() {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => unready(reason),
    }
}
