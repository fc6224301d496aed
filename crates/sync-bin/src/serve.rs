//! `imap-sync run`: the daemon — scheduler and IDLE watchers (sync-core), the notification
//! dispatcher (notify) and the HTTP API (api.rs) — until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use email_model::Store;
use secrecy::SecretString;
use sync_core::{Daemon, DaemonConfig, SyncConfig};
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::settings::Settings;

/// Where the HTTP API may listen: loopback freely; elsewhere only with a bearer token.
pub(crate) fn check_listen(listen: &str, token: Option<&str>) -> anyhow::Result<SocketAddr> {
    let address: SocketAddr = listen
        .parse()
        .with_context(|| format!("http.listen = {listen:?}: use HOST:PORT, e.g. 127.0.0.1:8080"))?;
    if !address.ip().is_loopback() && token.is_none_or(|t| t.trim().is_empty()) {
        bail!(
            "http.listen = {listen} is reachable from other hosts: set http.token \
             (IMAP_SYNC__HTTP__TOKEN) to a long random secret, or listen on 127.0.0.1"
        );
    }
    Ok(address)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Runs the daemon; `outbox_wakeups` (PostgreSQL's NOTIFY) wakes the dispatcher at once.
pub(crate) async fn run<S>(
    store: S,
    settings: &Settings,
    outbox_wakeups: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
) -> anyhow::Result<ExitCode>
where
    S: Store + Clone + std::fmt::Debug + 'static,
{
    let address = check_listen(&settings.http.listen, settings.http.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let bound = listener.local_addr()?;

    let sync_config = SyncConfig {
        interval: Duration::from_secs(settings.sync_interval_minutes * 60),
        max_concurrent: settings.max_concurrent,
        batch_size: settings.sync_batch_size.max(1),
        lease: Duration::from_secs(settings.daemon.lease_seconds.max(1)),
        ..SyncConfig::default()
    };
    let daemon_config = DaemonConfig {
        tick: Duration::from_secs(settings.daemon.tick_seconds.max(1)),
        jitter: Duration::from_millis(settings.daemon.jitter_millis),
        idle: settings.daemon.idle,
        max_idle_per_server: settings.daemon.max_idle_per_server,
        poll_interval: Duration::from_secs(settings.daemon.poll_seconds.max(1)),
        request_check: Duration::from_secs(settings.daemon.request_check_seconds.max(1)),
    };
    let factory = crate::factory(settings);
    let daemon = Arc::new(Daemon::new(
        store.clone(),
        factory.clone(),
        sync_config,
        daemon_config,
        sync_core::no_progress(),
    ));

    // Notices: email when SMTP is configured, push to WebSocket clients always.
    let hub = notify::PushHub::new();
    let mut notifiers = settings.notifiers()?;
    notifiers.push(Box::new(notify::PushNotifier::new(
        hub.clone(),
        store.clone(),
    )));
    let push_secret = settings.push_jwt_secret.clone().unwrap_or_else(|| {
        tracing::info!(
            "no push_jwt_secret configured: WebSocket tokens are signed with a per-process key"
        );
        let mut bytes = [0u8; 32];
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let tokens = Arc::new(notify::PushTokens::new(SecretString::from(push_secret)));
    let websocket = notify::websocket_routes(hub, tokens);

    let state = Arc::new(AppState {
        store: store.clone(),
        daemon: daemon.clone(),
        factory,
        token: settings.http.token.clone().filter(|t| !t.trim().is_empty()),
    });
    let app = api::router(state, websocket);

    let (stop_sender, stop) = watch::channel(false);
    let dispatcher = notify::Dispatcher::new(store, notifiers, notify::DispatcherConfig::default());
    let http_stop = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    println!("imap-sync: listening on http://{bound}");
    tracing::info!(%bound, "daemon started");
    let daemon_task = tokio::spawn(daemon.clone().run(stop.clone()));
    let server = axum::serve(listener, app).with_graceful_shutdown(http_stop);
    let dispatch = supervised_dispatcher(&dispatcher, &daemon, outbox_wakeups, stop.clone());
    let signal = async {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the current batches");
        let _ = stop_sender.send(true);
    };
    let (served, (), ()) = tokio::join!(server, dispatch, signal);
    served.context("HTTP server")?;
    if let Err(error) = daemon_task.await {
        // The daemon contains its own panics; this is the last line of defence, and still a
        // clean stop: every batch it committed is consistent.
        tracing::error!(%error, "the daemon task ended abnormally");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The notification dispatcher until `stop`; a panic inside it (a channel's bug, a broken
/// template) restarts it after a back-off and is counted in `/metrics`.
async fn supervised_dispatcher<S, F>(
    dispatcher: &notify::Dispatcher<S>,
    daemon: &Daemon<S, F>,
    mut wakeups: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    stop: watch::Receiver<bool>,
) where
    S: Store + Clone + std::fmt::Debug + 'static,
    F: sync_core::ServerFactory + Clone + 'static,
    F::Server: Send + 'static,
{
    let mut restarts = 0u32;
    loop {
        let mut until_stopped = stop.clone();
        let run =
            dispatcher.run_with_wakeups(Duration::from_secs(30), wakeups.as_mut(), async move {
                let _ = until_stopped.wait_for(|s| *s).await;
            });
        match sync_core::catch_panic(run).await {
            Ok(()) => return,
            Err(panic) => {
                restarts = restarts.saturating_add(1);
                let pause = sync_core::restart_backoff(restarts);
                tracing::error!(%panic, restart_in = ?pause, "the notification dispatcher panicked; restarting it");
                daemon.counters.record_restart("dispatcher");
                let mut stopped = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        }
    }
}
