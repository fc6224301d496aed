//! Users and their login notices.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use email_model::{NewUser, Store};
use serde::Deserialize;

use super::{ApiError, ApiResult, Shared, json, user_or_404};

fn user_json(user: &email_model::User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "enabled": user.enabled,
        "capabilities": user.capabilities,
    })
}

pub(super) async fn list_users<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
) -> ApiResult {
    let users = state.store.users().await?;
    json(serde_json::json!(
        users.iter().map(user_json).collect::<Vec<_>>()
    ))
}

#[derive(Deserialize)]
pub(super) struct UserBody {
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
        Some(unknown) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("unknown capability {unknown:?}"),
        )),
        None => Ok(()),
    }
}

pub(super) async fn add_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Json(body): Json<UserBody>,
) -> ApiResult {
    let (Some(email), Some(name)) = (body.email, body.name) else {
        return Err(ApiError::new(
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

pub(super) async fn get_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let user = user_or_404(&state, id).await?;
    json(user_json(&user))
}

pub(super) async fn update_user<S: Store + Clone + 'static>(
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

pub(super) async fn delete_user<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    user_or_404(&state, id).await?;
    state.store.delete_user(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn login_notices<S: Store + Clone + 'static>(
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

pub(super) async fn take_login_notices<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
) -> ApiResult {
    let notices = notify::login_notices(&state.store, id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
