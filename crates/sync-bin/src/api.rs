//! The daemon's HTTP side (axum): health, readiness, Prometheus metrics, the JSON API, the
//! notification WebSocket and the OpenAPI document. Every route is listed once, in [`ROUTES`]:
//! the OpenAPI document is made from that list and a test holds the router to it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use email_model::{AuthKind, ImapSettings, NewMailbox, NewUser, Store, StoreError};
use secrecy::SecretString;
use serde::Deserialize;
use sync_core::{Daemon, ImapServerFactory, OutcomeStatus, Trigger};

use crate::status;

/// One route: method, path (axum syntax), what it does.
pub(crate) struct RouteDoc {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
}

/// Every route the daemon serves.
pub(crate) const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "The process is up (no authentication).",
    },
    RouteDoc {
        method: "get",
        path: "/readyz",
        summary: "The database answers (no authentication).",
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics.",
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users",
        summary: "List users.",
    },
    RouteDoc {
        method: "post",
        path: "/api/users",
        summary: "Add a user.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users/{id}",
        summary: "One user.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/users/{id}",
        summary: "Change a user's email, name, enabled flag or capabilities.",
    },
    RouteDoc {
        method: "delete",
        path: "/api/users/{id}",
        summary: "Delete a user with the mailboxes it owns.",
    },
    RouteDoc {
        method: "get",
        path: "/api/users/{id}/login-notices",
        summary: "Credential notices the user has not seen.",
    },
    RouteDoc {
        method: "post",
        path: "/api/users/{id}/login-notices/shown",
        summary: "Take the notices to show at login (each is returned once).",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes",
        summary: "List mailboxes.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes",
        summary: "Add a mailbox.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}",
        summary: "A mailbox's settings (never its password), state and folders.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/mailboxes/{id}",
        summary: "Change settings; another host or login needs reset=true, which deletes its mail.",
    },
    RouteDoc {
        method: "delete",
        path: "/api/mailboxes/{id}",
        summary: "Delete a mailbox and its mail.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes/{id}/check",
        summary: "Connect and log in; the server's capabilities.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/folders",
        summary: "The folder tree with switches and counts.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/mailboxes/{id}/folders",
        summary: "Switch folders on or off; the folders are synced at once.",
    },
    RouteDoc {
        method: "post",
        path: "/api/mailboxes/{id}/sync",
        summary: "Sync the mailbox now.",
    },
    RouteDoc {
        method: "get",
        path: "/api/mailboxes/{id}/emails",
        summary: "Emails of a mailbox, or of one folder (?folder=), newest first.",
    },
    RouteDoc {
        method: "get",
        path: "/api/emails/{id}",
        summary: "One email with its bodies, attachments and folders.",
    },
    RouteDoc {
        method: "patch",
        path: "/api/emails/{id}/flags",
        summary: "Set or clear flags; pushed to the server by the next sync.",
    },
    RouteDoc {
        method: "get",
        path: "/notifications/ws",
        summary: "WebSocket of credential notices (?token= a push token).",
    },
];

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
        .route("/metrics", get(metrics::<S>))
        .route("/openapi.json", get(openapi))
        .route("/api/users", get(list_users::<S>).post(add_user::<S>))
        .route(
            "/api/users/{id}",
            get(get_user::<S>)
                .patch(update_user::<S>)
                .delete(delete_user::<S>),
        )
        .route("/api/users/{id}/login-notices", get(login_notices::<S>))
        .route(
            "/api/users/{id}/login-notices/shown",
            post(take_login_notices::<S>),
        )
        .route(
            "/api/mailboxes",
            get(list_mailboxes::<S>).post(add_mailbox::<S>),
        )
        .route(
            "/api/mailboxes/{id}",
            get(get_mailbox::<S>)
                .patch(update_mailbox::<S>)
                .delete(delete_mailbox::<S>),
        )
        .route("/api/mailboxes/{id}/check", post(check_mailbox::<S>))
        .route(
            "/api/mailboxes/{id}/folders",
            get(get_folders::<S>).patch(switch_folders::<S>),
        )
        .route("/api/mailboxes/{id}/sync", post(sync_mailbox::<S>))
        .route("/api/mailboxes/{id}/emails", get(list_emails::<S>))
        .route("/api/emails/{id}", get(get_email::<S>))
        .route(
            "/api/emails/{id}/flags",
            axum::routing::patch(change_flags::<S>),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_token::<S>,
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

/// With a token configured, every route but health, readiness and the WebSocket (which has its
/// own signed token) needs `Authorization: Bearer <token>`.
async fn require_token<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| {
            // Constant time over the expected length.
            given.len() == expected.len()
                && given
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn ready<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> Response {
    match state.store.users().await {
        Ok(_) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(error) => ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

/// The OpenAPI 3.1 document, from [`ROUTES`].
pub(crate) fn openapi_document() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| serde_json::json!({}));
        let mut operation = serde_json::json!({
            "summary": route.summary,
            "responses": {"200": {"description": "OK"}, "401": {"description": "A token is configured and the request has none or a wrong one"}},
        });
        if route.path.contains("{id}") {
            operation["parameters"] = serde_json::json!([
                {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}
            ]);
        }
        if let Some(object) = entry.as_object_mut() {
            object.insert(route.method.to_owned(), operation);
        }
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "imap-sync", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

async fn metrics<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> ApiResult {
    use std::fmt::Write as _;
    let counters = &state.daemon.counters;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP imap_sync_runs_total Mailbox syncs by trigger and outcome."
    );
    let _ = writeln!(out, "# TYPE imap_sync_runs_total counter");
    for (trigger, status, count) in counters.runs() {
        let _ = writeln!(
            out,
            "imap_sync_runs_total{{trigger=\"{}\",status=\"{status}\"}} {count}",
            trigger.as_str()
        );
    }
    for (name, help, value) in [
        (
            "imap_sync_messages_total",
            "New messages stored.",
            counters.messages_new.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_bytes_received_total",
            "Bytes received from IMAP servers.",
            counters.bytes_received.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_bytes_sent_total",
            "Bytes sent to IMAP servers.",
            counters.bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "imap_sync_folder_errors_total",
            "Folders that failed within a mailbox's sync.",
            counters.folder_errors.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP imap_sync_imap_connections IDLE watcher connections open.\n# TYPE imap_sync_imap_connections gauge\nimap_sync_imap_connections {}",
        counters.idle_connections.load(Ordering::Relaxed)
    );
    let now = chrono::Utc::now();
    let mailboxes = state.store.mailboxes().await?;
    let _ = writeln!(
        out,
        "# HELP imap_sync_lag_seconds Seconds since the mailbox's last successful sync.\n# TYPE imap_sync_lag_seconds gauge"
    );
    let mut backoffs = 0;
    let mut episodes = 0;
    for mailbox in &mailboxes {
        if let Some(at) = mailbox.last_success_at {
            let _ = writeln!(
                out,
                "imap_sync_lag_seconds{{mailbox=\"{}\"}} {}",
                mailbox.id,
                (now - at).num_seconds()
            );
        }
        if mailbox.backoff_until.is_some_and(|until| until > now) {
            backoffs += 1;
        }
        if state.store.open_episode(mailbox.id).await?.is_some() {
            episodes += 1;
        }
    }
    let _ = writeln!(
        out,
        "# HELP imap_sync_backoffs Mailboxes in back-off.\n# TYPE imap_sync_backoffs gauge\nimap_sync_backoffs {backoffs}"
    );
    let _ = writeln!(
        out,
        "# HELP imap_sync_open_credential_episodes Mailboxes whose credentials are refused.\n# TYPE imap_sync_open_credential_episodes gauge\nimap_sync_open_credential_episodes {episodes}"
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

fn user_json(user: &email_model::User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "enabled": user.enabled,
        "capabilities": user.capabilities,
    })
}

async fn list_users<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> ApiResult {
    let users = state.store.users().await?;
    json(serde_json::json!(
        users.iter().map(user_json).collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
struct UserBody {
    email: Option<String>,
    name: Option<String>,
    enabled: Option<bool>,
    capabilities: Option<Vec<String>>,
}

fn check_capabilities(capabilities: &[String]) -> Result<(), ApiError> {
    match capabilities
        .iter()
        .find(|c| c.as_str() != email_model::CREDENTIAL_NOTIFICATIONS_CAPABILITY)
    {
        Some(unknown) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("unknown capability {unknown:?}"),
        )),
        None => Ok(()),
    }
}

async fn add_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Json(body): Json<UserBody>,
) -> ApiResult {
    let (Some(email), Some(name)) = (body.email, body.name) else {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email and name are required".into(),
        ));
    };
    let capabilities = body.capabilities.unwrap_or_default();
    check_capabilities(&capabilities)?;
    let user = state
        .store
        .create_user(NewUser {
            email,
            name,
            enabled: body.enabled.unwrap_or(true),
            capabilities,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

async fn get_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let user = user_or_404(&state, id).await?;
    json(user_json(&user))
}

async fn update_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<UserBody>,
) -> ApiResult {
    let user = user_or_404(&state, id).await?;
    if body.email.is_some() || body.name.is_some() {
        state
            .store
            .set_user_details(
                id,
                body.email.unwrap_or(user.email),
                body.name.unwrap_or(user.name),
            )
            .await?;
    }
    if let Some(enabled) = body.enabled {
        state.store.set_user_enabled(id, enabled).await?;
    }
    if let Some(capabilities) = body.capabilities {
        check_capabilities(&capabilities)?;
        state.store.set_user_capabilities(id, capabilities).await?;
    }
    get_user(State(state), Path(id)).await
}

async fn delete_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    user_or_404(&state, id).await?;
    state.store.delete_user(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn login_notices<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let episodes = state.store.login_notices(id).await?;
    json(serde_json::json!(
        episodes
            .iter()
            .map(|e| serde_json::json!({
                "episode": e.id,
                "mailbox": e.mailbox_id,
                "reason": e.reason,
                "opened_at": e.opened_at.to_rfc3339(),
            }))
            .collect::<Vec<_>>()
    ))
}

async fn take_login_notices<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let notices = notify::login_notices(&state.store, id)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    json(serde_json::json!(
        notices
            .iter()
            .map(|(notice, rendered)| serde_json::json!({
                "episode": notice.episode_id,
                "mailbox": notice.mailbox_id,
                "mailbox_email": notice.mailbox_email,
                "subject": rendered.subject,
                "text": rendered.body,
            }))
            .collect::<Vec<_>>()
    ))
}

async fn list_mailboxes<S: Store + Clone + 'static>(State(state): State<Shared<S>>) -> ApiResult {
    let mailboxes = state.store.mailboxes().await?;
    json(serde_json::json!(
        mailboxes
            .iter()
            .map(status::mailbox_settings)
            .collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
struct MailboxBody {
    owner: Option<i64>,
    system: Option<bool>,
    email: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    security: Option<email_model::Security>,
    user: Option<String>,
    password: Option<String>,
    auth: Option<AuthKind>,
    /// With `oauth`, `password` is a refresh token exchanged at each login.
    oauth: Option<sync_core::OAuth2MailboxSettings>,
    client_secret: Option<String>,
    first_sync_days: Option<i32>,
    reset: Option<bool>,
}

async fn add_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Json(body): Json<MailboxBody>,
) -> ApiResult {
    let (Some(email), Some(host), Some(password)) = (body.email, body.host, body.password) else {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email, host and password are required".into(),
        ));
    };
    let system = body.system.unwrap_or(false);
    if system == body.owner.is_some() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give either owner (a user id) or system=true".into(),
        ));
    }
    let security = body.security.unwrap_or(email_model::Security::Tls);
    let (auth_kind, secret, oauth_settings) = match &body.oauth {
        Some(oauth) => (
            AuthKind::OAuth2,
            sync_core::oauth2_secret(&password, body.client_secret.as_deref()),
            Some(
                serde_json::to_string(oauth)
                    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?,
            ),
        ),
        None => (
            body.auth.unwrap_or(AuthKind::Password),
            SecretString::from(password),
            None,
        ),
    };
    let mailbox = state
        .store
        .create_mailbox(NewMailbox {
            owner_user_id: body.owner,
            imap: ImapSettings {
                host,
                port: body
                    .port
                    .unwrap_or(if security == email_model::Security::Tls {
                        993
                    } else {
                        143
                    }),
                security,
                user: body.user.unwrap_or_else(|| email.clone()),
            },
            email,
            auth_kind,
            secret: Some(secret),
            oauth_settings,
            first_sync_days: body
                .first_sync_days
                .unwrap_or(email_model::DEFAULT_FIRST_SYNC_DAYS),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(status::mailbox_settings(&mailbox)),
    )
        .into_response())
}

async fn get_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let mailbox = mailbox_or_404(&state, id).await?;
    json(status::mailbox_status(&state.store, &mailbox).await?)
}

async fn update_mailbox<S: Store + Clone + std::fmt::Debug + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<MailboxBody>,
) -> ApiResult {
    let mailbox = mailbox_or_404(&state, id).await?;
    let changes = crate::mailboxes::MailboxChanges {
        email: body.email,
        host: body.host,
        port: body.port,
        security: body.security,
        user: body.user,
        password: body.password.map(SecretString::from),
        first_sync_days: body.first_sync_days,
        reset: body.reset.unwrap_or(false),
    };
    let applied = crate::mailboxes::apply_changes(&state.store, &mailbox, changes).await?;
    if applied.refresh_folders {
        // Folders at once; mail at the next run.
        refresh_folders(&state, id).await?;
    }
    get_mailbox(State(state), Path(id)).await
}

async fn refresh_folders<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<(), ApiError> {
    let synchronizer = state.daemon.synchronizer(format!("api-folders-{id}"));
    match synchronizer.settings_changed(id).await {
        Ok(OutcomeStatus::Success) => Ok(()),
        Ok(OutcomeStatus::LeaseHeld) => Err(ApiError(
            StatusCode::CONFLICT,
            format!("mailbox {id} is being synced; try again in a moment"),
        )),
        Ok(other) => Err(ApiError(StatusCode::BAD_GATEWAY, format!("{other:?}"))),
        Err(error) => Err(ApiError(StatusCode::BAD_GATEWAY, error.to_string())),
    }
}

async fn delete_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    state.store.delete_mailbox(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn check_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    use sync_core::ServerFactory as _;
    let mailbox = mailbox_or_404(&state, id).await?;
    let secret = state.store.mailbox_secret(id).await?.ok_or_else(|| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the mailbox has no password".into(),
        )
    })?;
    let mut server = state.factory.server_for(&mailbox, secret);
    let result = imap_connector::MailServer::capabilities(&mut server).await;
    let _ = imap_connector::MailServer::logout(&mut server).await;
    state
        .daemon
        .synchronizer(format!("api-check-{id}"))
        .keep_rotated_secret(id)
        .await;
    match result {
        Ok(capabilities) => json(serde_json::json!({"ok": true, "capabilities": capabilities})),
        Err(error) => json(serde_json::json!({
            "ok": false,
            "credentials_refused": matches!(error, imap_connector::ConnectorError::InvalidCredentials { .. }),
            "error": error.to_string(),
        })),
    }
}

async fn get_folders<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    json(serde_json::json!(
        status::folder_rows(&state.store, id).await?
    ))
}

#[derive(Deserialize)]
struct FolderSwitches {
    #[serde(default)]
    enable: Vec<String>,
    #[serde(default)]
    disable: Vec<String>,
}

async fn switch_folders<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<FolderSwitches>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    refresh_folders(&state, id).await?;
    if let Some(unknown) =
        crate::mailboxes::switch_folders(&state.store, id, &body.enable, &body.disable).await?
    {
        return Err(not_found(format!("folder {unknown:?}")));
    }
    json(serde_json::json!(
        status::folder_rows(&state.store, id).await?
    ))
}

async fn sync_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let synchronizer = state.daemon.synchronizer(format!(
        "{}/api",
        sync_core::SyncConfig::default().worker_id
    ));
    let outcome = synchronizer.sync_now(id).await?;
    state.daemon.counters.record(Trigger::Manual, &outcome);
    let status = match &outcome.status {
        OutcomeStatus::NotFound => return Err(not_found(format!("mailbox {id}"))),
        OutcomeStatus::LeaseHeld => StatusCode::CONFLICT,
        _ => StatusCode::OK,
    };
    Ok((status, Json(crate::sync::outcome_json(&outcome))).into_response())
}

#[derive(Deserialize)]
struct EmailQuery {
    folder: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn email_summary(email: &email_model::StoredEmail) -> serde_json::Value {
    serde_json::json!({
        "id": email.id,
        "subject": email.subject,
        "from": email.from.as_ref().and_then(|a| a.email.clone()),
        "sent_at": email.sent_at.map(|d| d.to_rfc3339()),
        "thread_id": email.thread_id,
        "attachments": email.attachments.len(),
    })
}

async fn list_emails<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Query(query): Query<EmailQuery>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    let limit = query.limit.unwrap_or(50).min(500);
    let offset = query.offset.unwrap_or(0);
    let mut rows = Vec::new();
    match query.folder {
        Some(name) => {
            let folder = state
                .store
                .folders(id)
                .await?
                .into_iter()
                .find(|f| f.full_name == name)
                .ok_or_else(|| not_found(format!("folder {name:?}")))?;
            let mut memberships = state.store.memberships(folder.id).await?;
            memberships.sort_by_key(|m| std::cmp::Reverse((m.uid_validity, m.uid)));
            for membership in memberships.into_iter().skip(offset).take(limit) {
                if let Some(email) = state.store.email(membership.email_id).await? {
                    let mut row = email_summary(&email);
                    row["uid"] = serde_json::json!(membership.uid);
                    row["flags"] = serde_json::json!(membership.flags);
                    rows.push(row);
                }
            }
        }
        None => {
            let emails = state.store.emails(id).await?;
            rows.extend(emails.iter().skip(offset).take(limit).map(email_summary));
        }
    }
    json(serde_json::json!(rows))
}

async fn get_email<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let email = email_or_404(&state, id).await?;
    let folders = state.store.folders(email.mailbox_id).await?;
    let memberships: Vec<serde_json::Value> = state
        .store
        .email_memberships(id)
        .await?
        .into_iter()
        .map(|m| {
            let folder = folders
                .iter()
                .find(|f| f.id == m.folder_id)
                .map(|f| f.full_name.clone());
            serde_json::json!({"folder": folder, "uid": m.uid, "flags": m.flags})
        })
        .collect();
    let mut row = email_summary(&email);
    row["mailbox"] = serde_json::json!(email.mailbox_id);
    row["message_id"] = serde_json::json!(email.message_id);
    row["to"] = serde_json::json!(
        email
            .to
            .iter()
            .filter_map(|a| a.email.clone())
            .collect::<Vec<_>>()
    );
    row["body_text"] = serde_json::json!(email.body_text);
    row["body_html"] = serde_json::json!(email.body_html);
    row["attachments"] = serde_json::json!(email
        .attachments
        .iter()
        .map(|a| serde_json::json!({"name": a.name, "content_type": a.content_type, "size": a.size}))
        .collect::<Vec<_>>());
    row["folders"] = serde_json::json!(memberships);
    json(row)
}

#[derive(Deserialize)]
struct FlagChange {
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    unset: Vec<String>,
}

async fn change_flags<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<FlagChange>,
) -> ApiResult {
    email_or_404(&state, id).await?;
    let memberships = state.store.email_memberships(id).await?;
    let mut recorded = 0;
    for membership in &memberships {
        for (flags, set) in [(&body.set, true), (&body.unset, false)] {
            for flag in flags {
                state
                    .store
                    .record_local_flag_change(id, membership.folder_id, flag.clone(), set)
                    .await?;
                recorded += 1;
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"pending_changes": recorded, "pushed": "at the next sync"})),
    )
        .into_response())
}
