//! `cargo xtask`: the project's automation, run through the alias in `.cargo/config.toml`.
//!
//! - `bench`: release-build benchmarks of the sync against the server's raw limit.
//! - `chaos --seed S --ops N`: one long run of the seeded randomized scenario test.
//! - `demo`: a throwaway Dovecot seeded with mail, synced by `imap-sync` into SQLite.
//! - `test`: installs what is missing, starts Dovecot and PostgreSQL, runs fmt, clippy, tidy,
//!   every test and the demo, stops the servers. The README's test command and what CI runs.
//! - `tidy`: the mechanical checks of ARCHITECTURE.md's invariants.
//! - `servers up|down|status`: the test servers for manual work.

#![allow(clippy::print_stdout)] // A command-line tool: stdout is its interface.

mod bench;
mod chaos;
mod demo;
mod packages;
mod servers;
mod test;
mod tidy;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "imap-sync's project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Benchmarks: initial, no-change and incremental sync against the server's raw limit.
    Bench(bench::BenchArgs),
    /// One long run of the seeded randomized scenario test on both backends.
    Chaos(chaos::ChaosArgs),
    /// See imap-sync work: seed a throwaway Dovecot, add a mailbox, sync it, show the mirror.
    Demo(demo::DemoArgs),
    /// Install what is missing, start the servers, run fmt, clippy, tidy and every test.
    Test(test::TestArgs),
    /// Check the layering between our crates and the workspace's conventions.
    Tidy {
        /// Workspace to check (default: this one).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
    /// Run the schema's migrations on a database (PostgreSQL URL, or a SQLite file path).
    Migrate {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// Revert every migration instead (drops the mirror's tables).
        #[arg(long)]
        revert_all: bool,
    },
    /// Start, stop or show the test servers for manual work.
    Servers {
        #[command(subcommand)]
        action: servers::Action,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bench(args) => bench::run(&args),
        Task::Chaos(args) => chaos::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Test(args) => test::run(&args),
        Task::Tidy { workspace } => {
            tidy::run(&workspace.unwrap_or_else(workspace_root)).map(|()| println!("tidy: ok"))
        }
        Task::Servers { action } => servers::run(action),
        Task::Migrate {
            database_url,
            revert_all,
        } => migrate(&database_url, revert_all),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `cargo xtask migrate`: PostgreSQL when the URL says so, else a SQLite file.
fn migrate(database_url: &str, revert_all: bool) -> anyhow::Result<()> {
    use email_model::migrate as m;
    let versions =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                if revert_all {
                    m::revert_all_postgres(database_url).await
                } else {
                    m::migrate_postgres(database_url).await
                }
            })?
        } else {
            let path = std::path::Path::new(
                database_url
                    .strip_prefix("sqlite://")
                    .unwrap_or(database_url),
            );
            if revert_all {
                m::revert_all_sqlite(path)?
            } else {
                m::migrate_sqlite(path)?
            }
        };
    let verb = if revert_all { "reverted" } else { "ran" };
    if versions.is_empty() {
        println!("migrate: nothing to do");
    } else {
        println!("migrate: {verb} {}", versions.join(", "));
    }
    Ok(())
}

/// The root of this workspace.
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}
