//! The system packages the test servers need, installed with apt-get when missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Debian packages and a file each one provides.
const REQUIRED: &[(&str, &str)] = &[
    ("dovecot-imapd", "/usr/sbin/dovecot"),
    ("dovecot-imapd", "/usr/lib/dovecot/imap"),
    (
        "dovecot-imapd",
        "/usr/lib/dovecot/modules/lib30_imap_zlib_plugin.so",
    ),
    ("postgresql", "/usr/lib/postgresql"),
];

/// Serializes our apt-get runs across concurrent `cargo xtask test`s; apt's own lock would make
/// the second one fail instead of wait.
const APT_LOCK: &str = "/var/lock/imap-sync-xtask-apt.lock";

fn missing() -> Vec<&'static str> {
    let mut packages: Vec<&str> = REQUIRED
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    packages.dedup();
    packages
}

/// Installs the missing packages as root; otherwise says exactly what to install.
pub(crate) fn ensure_installed() -> anyhow::Result<()> {
    let packages = missing();
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !running_as_root() {
        bail!(
            "missing system packages: {list}\n  install them as root: apt-get install -y --no-install-recommends {list}\n  (then run `cargo xtask test` again)"
        );
    }
    println!("xtask: installing {list} with apt-get");
    // The check is repeated under the lock (a concurrent run may have installed them meanwhile),
    // by the same files: `dpkg -s` also succeeds for a removed package whose configuration stays.
    let checks: String = REQUIRED
        .iter()
        .map(|(package, file)| format!("[ -e {file} ] || need=\"$need {package}\"\n"))
        .collect();
    let script = format!(
        r#"need=""
{checks}if [ -n "$need" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update &&
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $need
fi"#
    );
    let status = Command::new("flock")
        .args([APT_LOCK, "sh", "-c", &script])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get under flock")?;
    if !status.success() {
        bail!("apt-get install {list} failed ({status})");
    }
    let still = missing();
    if !still.is_empty() {
        bail!("after apt-get, still missing: {}", still.join(" "));
    }
    Ok(())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
