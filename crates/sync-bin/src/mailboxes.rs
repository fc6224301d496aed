//! `imap-sync mailbox …`: the user-details page of Oro as commands.

use std::io::Read;

use anyhow::{Context, bail};
use email_model::{
    AuthKind, ImapSettings, Mailbox, MailboxSettingsUpdate, NewMailbox, Store, StoreError,
};
use secrecy::SecretString;
use sync_core::{OutcomeStatus, ServerFactory, SyncConfig, Synchronizer};

use crate::cli::{
    AuthArg, MailboxAdd, MailboxCommand, MailboxUpdate, OAuthArgs, OAuthProvider, PasswordSource,
    SecurityArg,
};
use crate::settings::Settings;
use crate::status;

pub(crate) async fn run<S: Store + Clone + 'static>(
    store: &S,
    settings: &Settings,
    command: MailboxCommand,
) -> anyhow::Result<()> {
    match command {
        MailboxCommand::Add(add) => self::add(store, settings, add).await,
        MailboxCommand::List { json } => list(store, json).await,
        MailboxCommand::Show { id, json } => status::show_mailbox(store, id, json).await,
        MailboxCommand::Update(update) => self::update(store, settings, update).await,
        MailboxCommand::Check { id } => check(store, settings, id).await,
        MailboxCommand::Folders {
            id,
            enable,
            disable,
            json,
        } => {
            refresh_folders(store, settings, id).await?;
            if let Some(unknown) = switch_folders(store, id, &enable, &disable).await? {
                bail!("mailbox {id} has no folder {unknown:?}");
            }
            status::print_folders(store, id, json).await
        }
        MailboxCommand::Remove { id, yes } => {
            let mailbox = existing(store, id).await?;
            if !yes {
                bail!(
                    "this deletes mailbox {id} ({}) and all its synced mail: add --yes to confirm",
                    mailbox.email
                );
            }
            store.delete_mailbox(id).await?;
            println!("mailbox {id} removed");
            Ok(())
        }
    }
}

pub(crate) async fn existing<S: Store>(store: &S, id: i64) -> anyhow::Result<Mailbox> {
    store
        .mailbox(id)
        .await?
        .with_context(|| format!("no mailbox {id} (`imap-sync mailbox list` shows them)"))
}

fn read_password(source: &PasswordSource) -> anyhow::Result<Option<SecretString>> {
    if source.password_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from stdin")?;
        let password = password.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            bail!("standard input held no password");
        }
        return Ok(Some(SecretString::from(password.to_owned())));
    }
    if let Some(variable) = &source.password_env {
        let password = std::env::var(variable)
            .with_context(|| format!("environment variable {variable} (for --password-env)"))?;
        return Ok(Some(SecretString::from(password)));
    }
    Ok(None)
}

fn default_port(security: SecurityArg) -> u16 {
    if security == SecurityArg::Tls {
        993
    } else {
        143
    }
}

/// `oauth_settings` and the secret of an `--auth oauth2` mailbox.
fn oauth2_settings(
    oauth: &OAuthArgs,
    refresh_token: &SecretString,
) -> anyhow::Result<(String, SecretString)> {
    use secrecy::ExposeSecret as _;
    let (preset_endpoint, preset_scope) = match oauth.oauth_provider {
        Some(OAuthProvider::Google) => (Some("https://oauth2.googleapis.com/token"), None),
        Some(OAuthProvider::Microsoft) => (
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
            Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
        ),
        None => (None, None),
    };
    let token_endpoint = oauth
        .oauth_token_endpoint
        .clone()
        .or(preset_endpoint.map(str::to_owned))
        .context("--auth oauth2 needs --oauth-provider or --oauth-token-endpoint")?;
    let client_id = oauth
        .oauth_client_id
        .clone()
        .context("--auth oauth2 needs --oauth-client-id")?;
    let client_secret = match &oauth.oauth_client_secret_env {
        Some(variable) => Some(std::env::var(variable).with_context(|| {
            format!("environment variable {variable} (for --oauth-client-secret-env)")
        })?),
        None => None,
    };
    let settings = sync_core::OAuth2MailboxSettings {
        token_endpoint,
        client_id,
        scope: oauth
            .oauth_scope
            .clone()
            .or(preset_scope.map(str::to_owned)),
    };
    Ok((
        serde_json::to_string(&settings)?,
        sync_core::oauth2_secret(refresh_token.expose_secret(), client_secret.as_deref()),
    ))
}

async fn add<S: Store>(store: &S, settings: &Settings, add: MailboxAdd) -> anyhow::Result<()> {
    let Some(password) = read_password(&add.password)? else {
        bail!(
            "give the password with --password-stdin or --password-env VAR (never as an argument)"
        );
    };
    if let Some(owner) = add.owner
        && store.user(owner).await?.is_none()
    {
        bail!("no user {owner} (`imap-sync user add` creates one)");
    }
    let (auth_kind, secret, oauth_settings) = match add.auth {
        AuthArg::Password => (AuthKind::Password, password, None),
        AuthArg::Oauth2Token => (AuthKind::OAuth2, password, None),
        AuthArg::Oauth2 => {
            let (settings, secret) = oauth2_settings(&add.oauth, &password)?;
            (AuthKind::OAuth2, secret, Some(settings))
        }
    };
    let port = add.port.unwrap_or(default_port(add.security));
    settings
        .connect_policy()?
        .check_host(&add.host, port)
        .await?;
    let tls_pin = add
        .tls_pin
        .as_deref()
        .map(email_model::rules::tls_pin)
        .transpose()?;
    let mailbox = store
        .create_mailbox(NewMailbox {
            owner_user_id: if add.system { None } else { add.owner },
            imap: ImapSettings {
                host: add.host,
                port,
                security: add.security.into(),
                user: add.user.unwrap_or_else(|| add.email.clone()),
            },
            email: add.email,
            auth_kind,
            secret: Some(secret),
            oauth_settings,
            first_sync_days: add.first_sync_days,
        })
        .await?;
    if tls_pin.is_some() {
        store.set_tls_pin(mailbox.id, tls_pin).await?;
    }
    println!("mailbox {} added", mailbox.id);
    Ok(())
}

/// A change to a mailbox's settings, from the command line or the API.
#[derive(Default)]
pub(crate) struct MailboxChanges {
    pub(crate) email: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) security: Option<email_model::Security>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<SecretString>,
    pub(crate) first_sync_days: Option<i32>,
    /// `Some(None)` removes the pin.
    pub(crate) tls_pin: Option<Option<String>>,
    /// Allow another account (host or login) on a mailbox holding mail: its mail is deleted.
    pub(crate) reset: bool,
}

/// What [`apply_changes`] did.
pub(crate) struct AppliedChanges {
    pub(crate) data_reset: bool,
    /// The connection or the credentials changed: the folders are to be listed again now.
    pub(crate) refresh_folders: bool,
}

/// Applies a change: another account needs `reset` (else [`StoreError::OtherAccount`]); a new
/// password keeps the mail and ends the back-off (an OAuth2 mailbox with token settings keeps
/// its client secret beside the new refresh token).
pub(crate) async fn apply_changes<S: Store>(
    store: &S,
    mailbox: &Mailbox,
    changes: MailboxChanges,
) -> Result<AppliedChanges, StoreError> {
    let id = mailbox.id;
    // Checked before anything is written: a change is applied whole or not at all.
    if let Some(days) = changes.first_sync_days {
        email_model::rules::in_range(
            "first_sync_days",
            days,
            &email_model::rules::FIRST_SYNC_DAYS,
        )?;
    }
    let tls_pin = match changes.tls_pin {
        Some(Some(pin)) => Some(Some(email_model::rules::tls_pin(&pin)?)),
        other => other,
    };
    let imap = ImapSettings {
        host: changes.host.unwrap_or(mailbox.imap.host.clone()),
        port: changes.port.unwrap_or(mailbox.imap.port),
        security: changes.security.unwrap_or(mailbox.imap.security),
        user: changes.user.unwrap_or(mailbox.imap.user.clone()),
    };
    let email = changes.email.unwrap_or(mailbox.email.clone());
    let connection_changed = imap != mailbox.imap;
    email_model::rules::imap_settings(&imap)?;
    let mut data_reset = false;
    if connection_changed || email != mailbox.email {
        data_reset = store
            .update_mailbox_settings(
                id,
                MailboxSettingsUpdate {
                    email,
                    imap,
                    reset: changes.reset,
                },
            )
            .await?
            .data_reset;
    }
    let password_changed = changes.password.is_some();
    if let Some(password) = changes.password {
        let secret = if mailbox.auth_kind == AuthKind::OAuth2 && mailbox.oauth_settings.is_some() {
            use secrecy::ExposeSecret as _;
            let existing = store.mailbox_secret(id).await?;
            sync_core::renew_oauth2_secret(existing.as_ref(), password.expose_secret())
        } else {
            password
        };
        store.set_mailbox_secret(id, secret).await?;
    }
    if let Some(days) = changes.first_sync_days {
        store.set_first_sync_days(id, days).await?;
    }
    let pin_changed = tls_pin.as_ref().is_some_and(|pin| *pin != mailbox.tls_pin);
    if let Some(pin) = tls_pin {
        store.set_tls_pin(id, pin).await?;
    }
    Ok(AppliedChanges {
        data_reset,
        refresh_folders: connection_changed || password_changed || pin_changed,
    })
}

/// A new host or port the connect policy refuses is not saved (every connect checks again); an
/// unchanged address is not looked up, so other settings can change whatever its DNS says now.
pub(crate) async fn check_new_address(
    policy: &imap_connector::ConnectPolicy,
    mailbox: &Mailbox,
    host: Option<&str>,
    port: Option<u16>,
) -> imap_connector::Result<()> {
    let host = host.unwrap_or(&mailbox.imap.host);
    let port = port.unwrap_or(mailbox.imap.port);
    if host == mailbox.imap.host && port == mailbox.imap.port {
        return Ok(());
    }
    policy.check_host(host, port).await
}

/// Switches folders on and off by full name; `Ok(Some(name))` names a folder the mailbox lacks
/// (nothing after it is switched).
pub(crate) async fn switch_folders<S: Store>(
    store: &S,
    mailbox_id: i64,
    enable: &[String],
    disable: &[String],
) -> Result<Option<String>, StoreError> {
    let folders = store.folders(mailbox_id).await?;
    for (names, enabled) in [(enable, true), (disable, false)] {
        for name in names {
            let Some(folder) = folders.iter().find(|f| &f.full_name == name) else {
                return Ok(Some(name.clone()));
            };
            store.set_folder_sync(folder.id, enabled).await?;
        }
    }
    Ok(None)
}

async fn update<S: Store + Clone + 'static>(
    store: &S,
    settings: &Settings,
    update: MailboxUpdate,
) -> anyhow::Result<()> {
    let id = update.id;
    let mailbox = existing(store, id).await?;
    check_new_address(
        &settings.connect_policy()?,
        &mailbox,
        update.host.as_deref(),
        update.port,
    )
    .await?;
    let changes = MailboxChanges {
        email: update.email,
        host: update.host,
        port: update.port,
        security: update.security.map(Into::into),
        user: update.user,
        password: read_password(&update.password)?,
        first_sync_days: update.first_sync_days,
        tls_pin: update
            .tls_pin
            .map(|pin| (!pin.eq_ignore_ascii_case("none")).then_some(pin)),
        reset: update.reset,
    };
    let applied = apply_changes(store, &mailbox, changes)
        .await
        .map_err(|error| match error {
            StoreError::OtherAccount { .. } => anyhow::anyhow!(
                "{error}: nothing was changed. Add --reset to delete its synced mail and start over, or add a new mailbox instead"
            ),
            other => other.into(),
        })?;
    if applied.data_reset {
        println!("mailbox {id}: another account; its synced mail was deleted");
    }
    println!("mailbox {id} updated");
    if applied.refresh_folders {
        // Oro re-syncs the folders at once after a settings change; mail follows at the next run.
        refresh_folders(store, settings, id).await?;
        println!("folders refreshed; mail follows at the next sync");
    }
    Ok(())
}

/// A folder-only sync, at once.
async fn refresh_folders<S: Store + Clone + 'static>(
    store: &S,
    settings: &Settings,
    id: i64,
) -> anyhow::Result<()> {
    let synchronizer = Synchronizer::new(
        store.clone(),
        crate::factory(settings),
        SyncConfig::default(),
    );
    match synchronizer.settings_changed(id).await {
        Ok(OutcomeStatus::Success) => Ok(()),
        Ok(OutcomeStatus::NotFound) => bail!("no mailbox {id}"),
        Ok(OutcomeStatus::LeaseHeld) => {
            bail!("mailbox {id} is being synced by another process; try again in a moment")
        }
        Ok(other) => bail!("could not list the folders of mailbox {id}: {other:?}"),
        Err(error) => Err(anyhow::Error::new(error)
            .context(format!("could not list the folders of mailbox {id}"))),
    }
}

async fn check<S: Store + Clone + 'static>(
    store: &S,
    settings: &Settings,
    id: i64,
) -> anyhow::Result<()> {
    let mailbox = existing(store, id).await?;
    let secret = store
        .mailbox_secret(id)
        .await?
        .context("the mailbox has no password")?;
    let factory = crate::factory(settings);
    let mut server = factory.server_for(&mailbox, secret);
    let capabilities = imap_connector::MailServer::capabilities(&mut server)
        .await
        .with_context(|| {
            format!(
                "connecting to {}:{} as {}",
                mailbox.imap.host, mailbox.imap.port, mailbox.imap.user
            )
        })?;
    let _ = imap_connector::MailServer::logout(&mut server).await;
    let synchronizer = Synchronizer::new(store.clone(), factory, SyncConfig::default());
    synchronizer.keep_rotated_secret(id).await;
    println!(
        "connected and logged in to {}:{} as {}",
        mailbox.imap.host, mailbox.imap.port, mailbox.imap.user
    );
    println!(
        "capabilities: {}",
        capabilities.into_iter().collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

async fn list<S: Store>(store: &S, json: bool) -> anyhow::Result<()> {
    let mailboxes = store.mailboxes().await?;
    if json {
        let rows: Vec<serde_json::Value> = mailboxes.iter().map(status::mailbox_settings).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:>4}  {:<30} {:<10} {:<28} {:<8}",
        "id", "email", "owner", "server", "state"
    );
    for m in mailboxes {
        let owner = m
            .owner_user_id
            .map_or_else(|| "system".to_owned(), |id| format!("user {id}"));
        println!(
            "{:>4}  {:<30} {:<10} {:<28} {:<8}",
            m.id,
            m.email,
            owner,
            format!(
                "{}:{} ({})",
                m.imap.host,
                m.imap.port,
                m.imap.security.as_str()
            ),
            m.sync_state.as_str()
        );
    }
    Ok(())
}
