//! The rig's servers, started once per `cargo xtask test` or kept up for manual work.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use test_support::{
    DATABASE_URL_VAR, DovecotEndpoint, DovecotServer, DovecotVariant, Lifetime, PostgresServer,
    Supervised, process_running,
};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Start Dovecot (full and minimal) and PostgreSQL in the background; print their settings.
    Up,
    /// Stop the servers started by `up` and delete their data.
    Down,
    /// Show the servers started by `up` and how to reach them.
    Status,
}

/// The servers of one run, and the environment that hands them to the tests.
#[derive(Debug)]
pub(crate) struct RunningServers {
    pub(crate) env: Vec<(String, String)>,
    processes: Vec<Supervised>,
}

impl RunningServers {
    /// Starts the full and minimal Dovecot and PostgreSQL.
    pub(crate) fn start(lifetime: Lifetime) -> anyhow::Result<Self> {
        let mut env = Vec::new();
        let mut processes = Vec::new();
        for variant in [DovecotVariant::Full, DovecotVariant::Minimal] {
            let server = DovecotServer::start(variant, lifetime)
                .with_context(|| format!("starting the {variant:?} Dovecot"))?;
            env.push((
                variant.env_var().to_owned(),
                server.endpoint().to_env_value(),
            ));
            processes.push(server.into_supervised());
        }
        let postgres = PostgresServer::start(lifetime).context("starting PostgreSQL")?;
        env.push((DATABASE_URL_VAR.to_owned(), postgres.admin_url().to_owned()));
        processes.push(postgres.into_supervised());
        Ok(Self { env, processes })
    }

    /// Stops every server and waits until their directories are gone.
    pub(crate) fn stop(self) {
        for process in self.processes {
            process.stop();
        }
    }
}

/// What `servers up` leaves for `status` and `down`.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    env: Vec<(String, String)>,
    watchdogs: Vec<u32>,
}

fn state_file() -> PathBuf {
    crate::workspace_root().join("target/xtask-servers.json")
}

pub(crate) fn run(action: Action) -> anyhow::Result<()> {
    match action {
        Action::Up => up(),
        Action::Down => down(),
        Action::Status => status(),
    }
}

fn read_state() -> anyhow::Result<Option<State>> {
    let path = state_file();
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

fn up() -> anyhow::Result<()> {
    if let Some(state) = read_state()?
        && state.watchdogs.iter().any(|pid| process_running(*pid))
    {
        bail!("the servers are already up (`cargo xtask servers status`; `down` stops them)");
    }
    crate::packages::ensure_installed()?;
    let servers = RunningServers::start(Lifetime::Detached)?;
    let state = State {
        env: servers.env.clone(),
        watchdogs: servers
            .processes
            .into_iter()
            .map(Supervised::detach)
            .collect(),
    };
    let path = state_file();
    std::fs::create_dir_all(path.parent().expect("target dir"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&state)?)
        .with_context(|| format!("writing {}", path.display()))?;
    print_settings(&state);
    Ok(())
}

fn status() -> anyhow::Result<()> {
    match read_state()? {
        None => println!("no servers up (`cargo xtask servers up` starts them)"),
        Some(state) => {
            let running = state
                .watchdogs
                .iter()
                .filter(|pid| process_running(**pid))
                .count();
            println!("{running} of {} servers running", state.watchdogs.len());
            print_settings(&state);
        }
    }
    Ok(())
}

fn down() -> anyhow::Result<()> {
    let Some(state) = read_state()? else {
        println!("no servers up");
        return Ok(());
    };
    for pid in &state.watchdogs {
        // SIGTERM to a watchdog stops its server and deletes the server's directory.
        let _ = std::process::Command::new("/bin/sh")
            .args(["-c", "kill \"$0\" 2>/dev/null"])
            .arg(pid.to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.watchdogs.iter().any(|pid| process_running(*pid)) {
        if Instant::now() > deadline {
            bail!(
                "servers still running after 30 s: watchdog pids {:?}",
                state.watchdogs
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(state_file())?;
    println!("servers stopped");
    Ok(())
}

fn print_settings(state: &State) {
    println!("# The tests use these servers when these variables are set:");
    for (name, value) in &state.env {
        println!("export {name}='{value}'");
    }
    for (name, value) in &state.env {
        if let Ok(endpoint) = serde_json::from_str::<DovecotEndpoint>(value) {
            println!(
                "# {:?} Dovecot: imap://{}:{} (STARTTLS), imaps://localhost:{}, CA {}, any user, password {}",
                endpoint.variant,
                endpoint.host,
                endpoint.plain_port,
                endpoint.tls_port,
                endpoint.ca_file.display(),
                endpoint.password
            );
        } else if name == DATABASE_URL_VAR {
            println!("# PostgreSQL: psql '{value}'");
        }
    }
}
