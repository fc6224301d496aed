//! What the mirror holds and how its mailboxes fare: `status`, `mailbox show`, the folder tree.

use chrono::{DateTime, Utc};
use email_model::{Mailbox, Store};

/// A mailbox's settings as JSON; never its secret.
pub(crate) fn mailbox_settings(m: &Mailbox) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "email": m.email,
        "owner": m.owner_user_id,
        "system": m.is_system(),
        "host": m.imap.host,
        "port": m.imap.port,
        "security": m.imap.security.as_str(),
        "user": m.imap.user,
        "auth": m.auth_kind.as_str(),
        "has_password": m.has_secret,
        "active": m.active,
        "sync_enabled": m.sync_enabled,
        "first_sync_days": m.first_sync_days,
        "tls_pin": m.tls_pin,
        "state": m.sync_state.as_str(),
    })
}

fn rfc3339(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub(crate) async fn folder_rows<S: Store>(
    store: &S,
    mailbox: i64,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for folder in store.folders(mailbox).await? {
        let messages = store.memberships(folder.id).await?.len();
        // Messages waiting for a retry: not returned by the server, or refused by the database.
        let waiting: Vec<serde_json::Value> = match folder.uid_validity {
            Some(uid_validity) => store
                .retry_uids(folder.id, uid_validity)
                .await?
                .into_iter()
                .map(|r| serde_json::json!({"uid": r.uid, "attempts": r.attempts, "error": r.last_error}))
                .collect(),
            None => Vec::new(),
        };
        rows.push(serde_json::json!({
            "failed_messages": waiting,
            "name": folder.full_name,
            "type": folder.folder_type,
            "sync": folder.sync_enabled,
            "selectable": folder.selectable,
            "gone": folder.gone_since.is_some(),
            "messages": messages,
            "synchronized_at": rfc3339(folder.synchronized_at),
        }));
    }
    Ok(rows)
}

/// Settings, state and folders of one mailbox, as JSON.
pub(crate) async fn mailbox_status<S: Store>(
    store: &S,
    m: &Mailbox,
) -> anyhow::Result<serde_json::Value> {
    let now = Utc::now();
    let episode = store.open_episode(m.id).await?;
    let mut row = mailbox_settings(m);
    let fields = [
        (
            "last_success",
            serde_json::json!(rfc3339(m.last_success_at)),
        ),
        (
            "lag_seconds",
            serde_json::json!(m.last_success_at.map(|d| (now - d).num_seconds())),
        ),
        (
            "last_sync_started",
            serde_json::json!(rfc3339(m.last_sync_started_at)),
        ),
        (
            "last_sync_finished",
            serde_json::json!(rfc3339(m.last_sync_finished_at)),
        ),
        (
            "backoff_until",
            serde_json::json!(rfc3339(m.backoff_until.filter(|until| *until > now))),
        ),
        (
            "consecutive_failures",
            serde_json::json!(m.consecutive_failures),
        ),
        ("last_error", serde_json::json!(m.last_error)),
        (
            "lease",
            serde_json::json!(
                m.lease_holder
                    .as_ref()
                    .filter(|_| m.lease_expires_at.is_some_and(|until| until > now))
                    .map(|holder| serde_json::json!({
                        "holder": holder,
                        "until": rfc3339(m.lease_expires_at),
                    }))
            ),
        ),
        (
            "credential_episode",
            serde_json::json!(episode.map(|e| serde_json::json!({
                "reason": e.reason,
                "opened_at": rfc3339(Some(e.opened_at)),
            }))),
        ),
        (
            "folders",
            serde_json::json!(folder_rows(store, m.id).await?),
        ),
    ];
    if let Some(object) = row.as_object_mut() {
        for (key, value) in fields {
            object.insert(key.to_owned(), value);
        }
    }
    Ok(row)
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_mailbox_text(row: &serde_json::Value) {
    let owner = row["owner"]
        .as_i64()
        .map_or_else(|| "system".to_owned(), |id| format!("user {id}"));
    println!(
        "mailbox {} {} ({owner}) {}:{} {} as {}",
        row["id"],
        text(&row["email"]),
        text(&row["host"]),
        row["port"],
        text(&row["security"]),
        text(&row["user"])
    );
    println!(
        "  state {}, last success {}, lag {} s, back-off until {}, failures {}",
        text(&row["state"]),
        text(&row["last_success"]),
        text(&row["lag_seconds"]),
        text(&row["backoff_until"]),
        row["consecutive_failures"]
    );
    if !row["last_error"].is_null() {
        println!("  last error: {}", text(&row["last_error"]));
    }
    if !row["lease"].is_null() {
        println!(
            "  being synced by {} (lease until {})",
            text(&row["lease"]["holder"]),
            text(&row["lease"]["until"])
        );
    }
    if !row["credential_episode"].is_null() {
        println!(
            "  credentials refused since {}: {}",
            text(&row["credential_episode"]["opened_at"]),
            text(&row["credential_episode"]["reason"])
        );
    }
    for folder in row["folders"].as_array().into_iter().flatten() {
        println!(
            "  {:<30} {:<8} {:<6} {:>7} messages  synced {}",
            text(&folder["name"]),
            text(&folder["type"]),
            if folder["sync"] == true {
                "[sync]"
            } else {
                "[    ]"
            },
            folder["messages"],
            text(&folder["synchronized_at"])
        );
    }
}

pub(crate) async fn print_status<S: Store>(store: &S, json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for mailbox in store.mailboxes().await? {
        rows.push(mailbox_status(store, &mailbox).await?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("no mailbox yet (`imap-sync mailbox add` adds one)");
    } else {
        rows.iter().for_each(print_mailbox_text);
    }
    Ok(())
}

pub(crate) async fn show_mailbox<S: Store>(store: &S, id: i64, json: bool) -> anyhow::Result<()> {
    let mailbox = crate::mailboxes::existing(store, id).await?;
    let row = mailbox_status(store, &mailbox).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&row)?);
    } else {
        print_mailbox_text(&row);
        println!(
            "  auth {}, password {}, first sync takes {} days",
            text(&row["auth"]),
            if row["has_password"] == true {
                "stored (encrypted)"
            } else {
                "missing"
            },
            row["first_sync_days"]
        );
    }
    Ok(())
}

/// The folder tree, indented by depth.
pub(crate) async fn print_folders<S: Store>(
    store: &S,
    mailbox: i64,
    json: bool,
) -> anyhow::Result<()> {
    let rows = folder_rows(store, mailbox).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for row in rows {
        let name = row["name"].as_str().unwrap_or_default();
        let depth = name.matches('/').count();
        let leaf = name.rsplit('/').next().unwrap_or(name);
        println!(
            "{:indent$}{:<width$} {:<8} {} {:>7} messages{}",
            "",
            leaf,
            text(&row["type"]),
            if row["sync"] == true {
                "[sync]"
            } else {
                "[    ]"
            },
            row["messages"],
            if row["gone"] == true {
                "  (gone from the server; mail kept)"
            } else {
                ""
            },
            indent = depth * 2,
            width = 30usize.saturating_sub(depth * 2)
        );
    }
    Ok(())
}
