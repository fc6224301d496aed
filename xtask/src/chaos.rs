//! `cargo xtask chaos --seed S --ops N`: one long run of the seeded randomized scenario test
//! (tests/it/chaos.rs) on both backends against the rig's Dovecot and PostgreSQL. On failure the
//! test prints the seed and the shortest failing prefix of operations it found.

use std::process::Command;

use anyhow::bail;
use test_support::Lifetime;

use crate::servers::RunningServers;

#[derive(Debug, clap::Args)]
pub(crate) struct ChaosArgs {
    /// The generator's seed: the same seed makes the same operations.
    #[arg(long, default_value_t = 4)]
    seed: u64,
    /// Operations before the final sync (a sync is one of the operations too).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    ops: u64,
}

pub(crate) fn run(args: &ChaosArgs) -> anyhow::Result<()> {
    crate::packages::ensure_installed()?;
    let servers = RunningServers::start(Lifetime::OwningProcess)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!(
        "xtask: chaos, seed {} with {} operations",
        args.seed, args.ops
    );
    let status = Command::new(cargo)
        .args([
            "nextest",
            "run",
            "--locked",
            "-p",
            "integration-tests",
            "--no-capture",
            "-E",
            "test(chaos::the_seed_from_the_environment_converges)",
        ])
        .current_dir(crate::workspace_root())
        .envs(servers.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("IMAP_SYNC_CHAOS_SEED", args.seed.to_string())
        .env("IMAP_SYNC_CHAOS_OPS", args.ops.to_string())
        .status()?;
    servers.stop();
    if !status.success() {
        bail!(
            "chaos: seed {} failed ({status}); the test output above has the shortest failing prefix",
            args.seed
        );
    }
    println!(
        "chaos: seed {} with {} operations converged on both backends",
        args.seed, args.ops
    );
    Ok(())
}
