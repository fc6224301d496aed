//! `imap-sync user …`

use anyhow::bail;
use email_model::{CREDENTIAL_NOTIFICATIONS_CAPABILITY, NewUser, Store};

use crate::cli::UserCommand;

fn check_capabilities(capabilities: &[String]) -> anyhow::Result<()> {
    for capability in capabilities {
        if capability != CREDENTIAL_NOTIFICATIONS_CAPABILITY {
            bail!(
                "unknown capability {capability:?} (known: {CREDENTIAL_NOTIFICATIONS_CAPABILITY})"
            );
        }
    }
    Ok(())
}

pub(crate) async fn run<S: Store>(store: &S, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            email,
            name,
            capabilities,
            disabled,
        } => {
            check_capabilities(&capabilities)?;
            let user = store
                .create_user(NewUser {
                    email,
                    name,
                    enabled: !disabled,
                    capabilities,
                })
                .await?;
            println!("user {} added", user.id);
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                let rows: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.id,
                            "email": u.email,
                            "name": u.name,
                            "enabled": u.enabled,
                            "capabilities": u.capabilities,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:>4}  {:<30} {:<20} {:<8} capabilities",
                    "id", "email", "name", "enabled"
                );
                for user in users {
                    println!(
                        "{:>4}  {:<30} {:<20} {:<8} {}",
                        user.id,
                        user.email,
                        user.name,
                        if user.enabled { "yes" } else { "no" },
                        user.capabilities.join(",")
                    );
                }
            }
        }
        UserCommand::Update {
            id,
            email,
            name,
            enable,
            disable,
            capabilities,
            no_capabilities,
        } => {
            let Some(user) = store.user(id).await? else {
                bail!("no user {id} (`imap-sync user list` shows them)");
            };
            if email.is_some() || name.is_some() {
                store
                    .set_user_details(id, email.unwrap_or(user.email), name.unwrap_or(user.name))
                    .await?;
            }
            if enable || disable {
                store.set_user_enabled(id, enable).await?;
            }
            if !capabilities.is_empty() || no_capabilities {
                check_capabilities(&capabilities)?;
                store.set_user_capabilities(id, capabilities).await?;
            }
            println!("user {id} updated");
        }
        UserCommand::Remove { id, yes } => {
            let Some(user) = store.user(id).await? else {
                bail!("no user {id} (`imap-sync user list` shows them)");
            };
            let owned = store
                .mailboxes()
                .await?
                .into_iter()
                .filter(|m| m.owner_user_id == Some(id))
                .count();
            if !yes {
                bail!(
                    "this deletes user {id} ({}) and the {owned} mailbox(es) it owns with their mail: add --yes to confirm",
                    user.email
                );
            }
            store.delete_user(id).await?;
            println!("user {id} removed with {owned} mailbox(es)");
        }
    }
    Ok(())
}
