//! `cargo xtask test`: everything CI checks, with the servers it needs, and the demo.

use std::process::Command;

use anyhow::bail;
use test_support::Lifetime;

use crate::servers::RunningServers;

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Do not install missing system packages; fail instead.
    #[arg(long)]
    no_install: bool,
    /// Arguments passed on to `cargo nextest run` (a filter, `--profile ci`, …); with any, the
    /// demo is left out.
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

pub(crate) fn run(args: &TestArgs) -> anyhow::Result<()> {
    if !args.no_install {
        crate::packages::ensure_installed()?;
    }
    let root = crate::workspace_root();
    let mut failures = Vec::new();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let checks: [(&str, &[&str]); 2] = [
        ("cargo fmt --check", &["fmt", "--all", "--", "--check"]),
        (
            "cargo clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    for (name, arguments) in checks {
        if let Err(failure) = step(name, &cargo, arguments, &[]) {
            failures.push(failure);
        }
    }
    println!("xtask: tidy");
    if let Err(error) = crate::tidy::run(&root) {
        eprintln!("{error:#}");
        failures.push("tidy".to_owned());
    }

    println!("xtask: starting Dovecot (full, minimal) and PostgreSQL");
    let servers = RunningServers::start(Lifetime::OwningProcess)?;
    let mut nextest = vec![
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
    ];
    nextest.extend(args.nextest_args.iter().map(String::as_str));
    if let Err(failure) = step("cargo nextest run", &cargo, &nextest, &servers.env) {
        failures.push(failure);
    }
    servers.stop();

    // README's first command must keep working: the demo checks what it shows. A run narrowed
    // to some tests leaves it out.
    if args.nextest_args.is_empty() {
        println!("xtask: cargo xtask demo");
        let demo = crate::demo::DemoArgs {
            messages: 300,
            no_install: true,
        };
        if let Err(error) = crate::demo::run(&demo) {
            eprintln!("{error:#}");
            failures.push("demo".to_owned());
        }
    }

    if failures.is_empty() {
        println!("xtask: all checks passed");
        Ok(())
    } else {
        bail!("failed: {}", failures.join(", "))
    }
}

/// Runs one step in the workspace root; `Err` names it for the summary.
fn step(
    name: &str,
    program: &str,
    arguments: &[&str],
    env: &[(String, String)],
) -> Result<(), String> {
    println!("xtask: {name}");
    let status = Command::new(program)
        .args(arguments)
        .current_dir(crate::workspace_root())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{name} ({status})")),
        Err(error) => Err(format!("{name} (could not run {program}: {error})")),
    }
}
