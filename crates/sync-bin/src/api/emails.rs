//! The mirror's emails and the host's flag changes.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use email_model::Store;
use serde::Deserialize;

use super::{ApiResult, Shared, email_or_404, json, mailbox_or_404, not_found};

#[derive(Deserialize)]
pub(super) struct EmailQuery {
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

pub(super) async fn list_emails<S: Store + Clone + 'static>(
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

pub(super) async fn get_email<S: Store + Clone + 'static>(
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
pub(super) struct FlagChange {
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    unset: Vec<String>,
}

pub(super) async fn change_flags<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Json(body): Json<FlagChange>,
) -> ApiResult {
    let mailbox_id = email_or_404(&state, id).await?.mailbox_id;
    // Every name is checked before any is recorded: a request is taken whole or not at all.
    for flag in body.set.iter().chain(&body.unset) {
        email_model::rules::flag_name(flag)?;
    }
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
    // Pushed now: handed to whoever syncs the mailbox (its watcher, or a sync started here).
    if recorded > 0 {
        state.daemon.request_sync(mailbox_id).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"pending_changes": recorded, "pushed": "now, by a sync of the mailbox"})),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct DroppedQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

/// The host's flag changes the server's flags overrode, newest first; `next_before` pages on.
pub(super) async fn list_dropped_changes<S: Store + Clone + 'static>(
    State(state): State<Shared<S>>,
    Path(id): Path<i64>,
    Query(query): Query<DroppedQuery>,
) -> ApiResult {
    mailbox_or_404(&state, id).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(super::ApiError::on_field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
            "limit must be between 1 and 1000".to_owned(),
        ));
    }
    let folders = state.store.folders(id).await?;
    let dropped = state
        .store
        .dropped_flag_changes(id, query.before, limit)
        .await?;
    let next_before = (dropped.len() as i64 == limit)
        .then(|| dropped.last().map(|d| d.id))
        .flatten();
    let rows: Vec<serde_json::Value> = dropped
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "folder_id": d.folder_id,
                "folder": folders.iter().find(|f| f.id == d.folder_id).map(|f| f.full_name.clone()),
                "email_id": d.email_id,
                "uid": d.uid,
                "change": d.change,
                "reason": d.reason,
                "dropped_at": d.dropped_at.to_rfc3339(),
            })
        })
        .collect();
    json(serde_json::json!({"dropped": rows, "next_before": next_before}))
}
