//! Mailboxes: settings, check, folders, sync now.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use email_model::{AuthKind, ImapSettings, NewMailbox, Store};
use secrecy::SecretString;
use serde::Deserialize;
use sync_core::OutcomeStatus;

use super::{ApiError, ApiResult, Shared, json, mailbox_or_404, not_found};
use crate::status;

pub(super) async fn list_mailboxes<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
) -> ApiResult {
    let mailboxes = state.store.mailboxes().await?;
    json(serde_json::json!(
        mailboxes
            .iter()
            .map(status::mailbox_settings)
            .collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
pub(super) struct MailboxBody {
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
    /// The SHA-256 fingerprint of a self-signed server's certificate to accept; `""` removes it.
    tls_pin: Option<String>,
    reset: Option<bool>,
}

pub(super) async fn add_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Json(body): Json<MailboxBody>,
) -> ApiResult {
    let (Some(email), Some(host), Some(password)) = (body.email, body.host, body.password) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email, host and password are required".into(),
        ));
    };
    let system = body.system.unwrap_or(false);
    if system == body.owner.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give either owner (a user id) or system=true".into(),
        ));
    }
    let security = body.security.unwrap_or(email_model::Security::Tls);
    let port = body
        .port
        .unwrap_or(if security == email_model::Security::Tls {
            993
        } else {
            143
        });
    refuse_by_policy(&state, &host, port).await?;
    let tls_pin = body
        .tls_pin
        .as_deref()
        .filter(|pin| !pin.is_empty())
        .map(email_model::rules::tls_pin)
        .transpose()?;
    let (auth_kind, secret, oauth_settings) = match &body.oauth {
        Some(oauth) => (
            AuthKind::OAuth2,
            sync_core::oauth2_secret(&password, body.client_secret.as_deref()),
            Some(
                serde_json::to_string(oauth)
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?,
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
                port,
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
    let mailbox = match tls_pin {
        Some(pin) => {
            state.store.set_tls_pin(mailbox.id, Some(pin)).await?;
            mailbox_or_404(&state, mailbox.id).await?
        }
        None => mailbox,
    };
    Ok((
        StatusCode::CREATED,
        Json(status::mailbox_settings(&mailbox)),
    )
        .into_response())
}

/// A host the connect policy refuses is not saved (the connect checks again, every time).
async fn refuse_by_policy<S: Store + Clone + 'static>(
    state: &Shared<S>,
    host: &str,
    port: u16,
) -> Result<(), ApiError> {
    state
        .factory
        .connect_policy
        .check_host(host, port)
        .await
        .map_err(policy_refusal)
}

/// A connect-policy refusal as the API answers it: 422 on the host.
fn policy_refusal(error: imap_connector::ConnectorError) -> ApiError {
    ApiError::on_field(StatusCode::UNPROCESSABLE_ENTITY, "host", error.to_string())
}

pub(super) async fn get_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let mailbox = mailbox_or_404(&state, id).await?;
    json(status::mailbox_status(&state.store, &mailbox).await?)
}

pub(super) async fn update_mailbox<S: Store + Clone + std::fmt::Debug + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<MailboxBody>,
) -> ApiResult {
    let mailbox = mailbox_or_404(&state, id).await?;
    crate::mailboxes::check_new_address(
        &state.factory.connect_policy,
        &mailbox,
        body.host.as_deref(),
        body.port,
    )
    .await
    .map_err(policy_refusal)?;
    let changes = crate::mailboxes::MailboxChanges {
        email: body.email,
        host: body.host,
        port: body.port,
        security: body.security,
        user: body.user,
        password: body.password.map(SecretString::from),
        first_sync_days: body.first_sync_days,
        tls_pin: body.tls_pin.map(|pin| (!pin.is_empty()).then_some(pin)),
        reset: body.reset.unwrap_or(false),
    };
    let applied = crate::mailboxes::apply_changes(&state.store, &mailbox, changes).await?;
    if applied.refresh_folders {
        // Folders at once; mail at the next run.
        refresh_folders(&state, id).await?;
    }
    get_mailbox(State(state), Path(id)).await
}

/// Folders at once: listed and merged now, or — when a sync holds the mailbox — handed to it
/// (its sync lists the folders first). True when handed over.
async fn refresh_folders<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<bool, ApiError> {
    let synchronizer = state.daemon.synchronizer(format!("api-folders-{id}"));
    match synchronizer.settings_changed(id).await {
        Ok(OutcomeStatus::Success) => Ok(false),
        Ok(OutcomeStatus::LeaseHeld) => {
            state.daemon.request_sync(id).await?;
            Ok(true)
        }
        Ok(other) => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("{other:?}"))),
        Err(error) => Err(ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())),
    }
}

pub(super) async fn delete_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    state.store.delete_mailbox(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn check_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    use sync_core::ServerFactory as _;
    let mailbox = mailbox_or_404(&state, id).await?;
    let secret = state.store.mailbox_secret(id).await?.ok_or_else(|| {
        ApiError::new(
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

pub(super) async fn get_folders<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    json(serde_json::json!(
        status::folder_rows(&state.store, id).await?
    ))
}

#[derive(Deserialize)]
pub(super) struct FolderSwitches {
    #[serde(default)]
    enable: Vec<String>,
    #[serde(default)]
    disable: Vec<String>,
}

pub(super) async fn switch_folders<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<FolderSwitches>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    let handed_over = refresh_folders(&state, id).await?;
    if let Some(unknown) =
        crate::mailboxes::switch_folders(&state.store, id, &body.enable, &body.disable).await?
    {
        return Err(not_found(format!("folder {unknown:?}")));
    }
    // Applied; with a sync holding the mailbox, the folder list is refreshed by that sync.
    let status = if handed_over {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!(
            status::folder_rows(&state.store, id).await?
        )),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct SyncQuery {
    /// Wait up to this many seconds for the sync to finish (0–600) and answer with its run.
    wait: Option<u64>,
}

/// "Sync now": never refused. Answers 202 at once with who took it; with `wait=SECONDS`,
/// answers 200 with the finished run (or 202 if it has not finished by then).
pub(super) async fn sync_mailbox<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Query(query): Query<SyncQuery>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    let wait = query.wait.unwrap_or(0);
    if wait > 600 {
        return Err(ApiError::on_field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wait",
            "wait is at most 600 seconds".to_owned(),
        ));
    }
    let (handover, requested_at) = state.daemon.request_sync(id).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        if let Some(run) = state
            .store
            .sync_runs(id, 5)
            .await?
            .into_iter()
            .find(|run| run.started_at >= requested_at && run.finished_at.is_some())
        {
            return Ok((StatusCode::OK, Json(run_json(&run))).into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "accepted": true,
            "handed_to": handover.as_str(),
            "requested_at": requested_at.to_rfc3339(),
            "runs": format!("/api/mailboxes/{id}/runs"),
        })),
    )
        .into_response())
}

fn run_json(run: &email_model::SyncRunRecord) -> serde_json::Value {
    serde_json::json!({
        "id": run.id,
        "started_at": run.started_at.to_rfc3339(),
        "finished_at": run.finished_at.map(|d| d.to_rfc3339()),
        "status": run.outcome,
        "message": run.message,
        "new": run.emails_new,
        "changed": run.emails_changed,
        "removed": run.emails_removed,
    })
}

/// The mailbox's latest sync runs, newest first (`limit` 1–100, default 20).
pub(super) async fn list_runs<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Query(query): Query<RunsQuery>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::on_field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
            "limit must be between 1 and 100".to_owned(),
        ));
    }
    let runs = state.store.sync_runs(id, limit).await?;
    json(serde_json::json!(
        runs.iter().map(run_json).collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
pub(super) struct RunsQuery {
    limit: Option<i64>,
}
