//! Mailboxes: settings, check, folders, sync now.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use email_model::{AuthKind, ImapSettings, NewMailbox, Store};
use secrecy::SecretString;
use serde::Deserialize;
use sync_core::{OutcomeStatus, Trigger};

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

async fn refresh_folders<S: Store + Clone + 'static>(
    state: &Shared<S>,
    id: i64,
) -> Result<(), ApiError> {
    let synchronizer = state.daemon.synchronizer(format!("api-folders-{id}"));
    match synchronizer.settings_changed(id).await {
        Ok(OutcomeStatus::Success) => Ok(()),
        Ok(OutcomeStatus::LeaseHeld) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("mailbox {id} is being synced; try again in a moment"),
        )),
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

pub(super) async fn sync_mailbox<S: Store + Clone + 'static>(
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
