//! `cargo xtask`: the project's automation, run through the alias in `.cargo/config.toml`.
//!
//! - `test`: installs what is missing, starts Dovecot and PostgreSQL, runs fmt, clippy, tidy
//!   and every test, stops the servers. The README's test command and what CI runs.
//! - `tidy`: the mechanical checks of ARCHITECTURE.md's invariants.
//! - `servers up|down|status`: the test servers for manual work.

#![allow(clippy::print_stdout)] // A command-line tool: stdout is its interface.

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
    /// Install what is missing, start the servers, run fmt, clippy, tidy and every test.
    Test(test::TestArgs),
    /// Check the layering between our crates and the workspace's conventions.
    Tidy {
        /// Workspace to check (default: this one).
        #[arg(long)]
        workspace: Option<PathBuf>,
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
        Task::Test(args) => test::run(&args),
        Task::Tidy { workspace } => {
            tidy::run(&workspace.unwrap_or_else(workspace_root)).map(|()| println!("tidy: ok"))
        }
        Task::Servers { action } => servers::run(action),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The root of this workspace.
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}
