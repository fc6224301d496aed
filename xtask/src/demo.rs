//! `cargo xtask demo`: imap-sync at work in a minute, with nothing to set up — a throwaway
//! Dovecot seeded with realistic mail, one mailbox added and synced into a SQLite file, its
//! status and a few synced subjects. It checks what it shows, so CI runs it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use email_model::secrets::Keyring;
use email_model::{SqliteStore, Store, StoreOptions};
use test_support::{
    DovecotServer, DovecotVariant, Lifetime, MailGenerator, MailGeneratorConfig, RawImap,
};

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Messages to seed (spread over two years; the first sync takes the last one).
    #[arg(long, default_value_t = 300)]
    pub(crate) messages: usize,
    /// Do not install missing system packages; fail instead.
    #[arg(long)]
    pub(crate) no_install: bool,
}

/// Where the seeded mail goes: (folder, share of the messages in percent).
const FOLDERS: [(&str, usize); 3] = [("INBOX", 60), ("Sent", 25), ("Projects", 15)];

/// The first sync's window (the default: one year).
const WINDOW_DAYS: i64 = 365;

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !args.no_install {
        crate::packages::ensure_installed()?;
    }
    let root = crate::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("demo: building imap-sync");
    let built = Command::new(&cargo)
        .args(["build", "--locked", "-p", "sync-bin", "--bin", "imap-sync"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !built.success() {
        bail!("cargo build failed ({built})");
    }
    let binary = root.join("target/debug/imap-sync");
    let dir = root.join("target/demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("imap-sync.db");

    println!("demo: starting a throwaway Dovecot on 127.0.0.1");
    let server = DovecotServer::start(DovecotVariant::Full, Lifetime::OwningProcess)
        .context("starting Dovecot")?;
    let endpoint = server.endpoint().clone();
    let login = "demo@example.test";
    let runtime = tokio::runtime::Runtime::new()?;
    let in_window = runtime.block_on(seed(&endpoint, login, args.messages))?;

    let imap_sync = |arguments: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(&binary)
            .arg("--database-url")
            .arg(&database)
            .args(arguments)
            .env("IMAP_SYNC__IMAP_EXTRA_CA_FILE", &endpoint.ca_file)
            // The throwaway Dovecot listens on loopback, which the connect policy refuses
            // unless it is listed.
            .env("IMAP_SYNC__IMAP_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("DEMO_PASSWORD", &endpoint.password)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running imap-sync {}", arguments.join(" ")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "imap-sync {} failed ({}):\n{stdout}",
                arguments.join(" "),
                output.status
            );
        }
        Ok(stdout)
    };
    let show = |title: &str, arguments: &[&str]| -> anyhow::Result<String> {
        println!("\n$ imap-sync {}    # {title}", arguments.join(" "));
        let stdout = imap_sync(arguments)?;
        print!("{stdout}");
        Ok(stdout)
    };

    show(
        "a user",
        &["user", "add", "--email", login, "--name", "Demo User"],
    )?;
    let port = endpoint.tls_port.to_string();
    show(
        "their mailbox, over TLS; the password comes from the environment",
        &[
            "mailbox",
            "add",
            "--owner",
            "1",
            "--email",
            login,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--security",
            "tls",
            "--password-env",
            "DEMO_PASSWORD",
        ],
    )?;
    show("check connection", &["mailbox", "check", "1"])?;
    show(
        "the folder tree; INBOX and Sent sync by default, Projects switched on",
        &["mailbox", "folders", "1", "--enable", "Projects"],
    )?;
    // Progress on stderr (bars on a terminal), the summary on stdout.
    let summary = show("one sync run", &["sync"])?;
    show("what the mirror holds", &["status"])?;

    let synced = runtime.block_on(print_subjects(&database))?;
    drop(server);
    println!(
        "\ndemo: seeded {} messages over two years; {} fall in the first sync's window of {WINDOW_DAYS} days; {} synced",
        args.messages,
        in_window.values().sum::<usize>(),
        synced.values().sum::<usize>()
    );
    if synced != in_window {
        bail!(
            "the mirror does not hold the window's mail: per folder {synced:?}, expected {in_window:?}\n{summary}"
        );
    }
    println!(
        "demo: the mirror stays in {} (the server is stopped); look again with\n  {} --database-url {} status",
        database.display(),
        relative(&binary, &root).display(),
        relative(&database, &root).display()
    );
    Ok(())
}

fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_owned(), Path::to_path_buf)
}

/// Seeds the demo account: most mail within the last year, the rest a year earlier (outside the
/// window). Returns how many messages per folder fall within the window.
async fn seed(
    endpoint: &test_support::DovecotEndpoint,
    login: &str,
    messages: usize,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut raw = RawImap::login_to(endpoint, login).await?;
    raw.create_folder("Projects").await?;
    let now = Utc::now();
    // Two periods with a gap around the window's edge, so that the expected count is exact.
    let recent = MailGeneratorConfig::over_days_before(2026, now, WINDOW_DAYS - 5);
    let older = MailGeneratorConfig::over_days_before(
        1999,
        now - Duration::days(WINDOW_DAYS + 5),
        WINDOW_DAYS - 10,
    );
    let recent_count = messages * 2 / 3;
    let mut in_window = BTreeMap::new();
    let mut generators = [
        (MailGenerator::new(recent), recent_count, true),
        (MailGenerator::new(older), messages - recent_count, false),
    ];
    println!("demo: seeding {messages} messages into INBOX, Sent and Projects");
    for (generator, count, counts) in &mut generators {
        for index in 0..*count {
            let message = generator.next().context("the generator is endless")?;
            let mut slot = index % 100;
            let folder = FOLDERS
                .iter()
                .find(|(_, share)| {
                    let hit = slot < *share;
                    slot = slot.saturating_sub(*share);
                    hit
                })
                .map_or("INBOX", |(name, _)| *name);
            raw.append(
                folder,
                &message.flags,
                Some(message.internal_date),
                &message.raw,
            )
            .await?;
            if *counts {
                *in_window.entry(folder.to_owned()).or_insert(0) += 1;
            }
        }
    }
    raw.logout().await?;
    Ok(in_window)
}

/// Prints the newest synced subjects; returns the synced messages per folder.
async fn print_subjects(database: &Path) -> anyhow::Result<BTreeMap<String, usize>> {
    let url = database.to_string_lossy();
    let keyring = Keyring::for_database(&url, None)?;
    let store = SqliteStore::open(database, keyring, StoreOptions::default())?;
    let mut per_folder = BTreeMap::new();
    for folder in store.folders(1).await? {
        let count = store.memberships(folder.id).await?.len();
        if count > 0 {
            per_folder.insert(folder.full_name, count);
        }
    }
    let mut emails = store.emails(1).await?;
    emails.sort_by_key(|e| std::cmp::Reverse(e.sent_at));
    println!("\nthe newest synced messages:");
    for email in emails.iter().take(5) {
        let from = email
            .from
            .as_ref()
            .and_then(|a| a.email.clone())
            .unwrap_or_default();
        println!(
            "  {}  {:<28} {}",
            email
                .sent_at
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            from,
            email.subject.as_deref().unwrap_or("(no subject)")
        );
    }
    Ok(per_folder)
}
