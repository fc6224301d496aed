//! `cargo xtask bench`: initial, no-change and incremental sync measured against the raw limit
//! of the server, on PostgreSQL (the headline) and SQLite. Benchmarks measure; they never fail
//! for a figure. See BENCHMARKS.md for the method.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use chrono::Utc;
use serde::Serialize;
use test_support::{
    DovecotEndpoint, DovecotServer, DovecotVariant, Lifetime, MailGenerator, MailGeneratorConfig,
    PostgresServer, RawImap, TestDatabase,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Messages seeded into the benchmark folder.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Backends to measure (repeatable); default both, PostgreSQL first.
    #[arg(long = "backend", value_enum)]
    backends: Vec<Backend>,
    /// Runs per case; the table shows median, min and max.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Do not install missing system packages; fail instead.
    #[arg(long)]
    no_install: bool,
    /// After the runs, profile one more initial sync per backend with `perf record` (CPU
    /// clock samples); reports in target/bench/perf-<backend>.txt.
    #[arg(long)]
    profile: bool,
}

/// Changes between the no-change and the incremental sync.
const CHANGES_EACH: usize = 100;

#[derive(Debug, Clone, Default, Serialize)]
struct SyncFigures {
    /// Wall time of the `imap-sync sync` process.
    process_seconds: f64,
    /// Time inside the process, from connect to the last commit (its own report).
    in_process_ms: f64,
    messages: u64,
    folders: u64,
    new: u64,
    changed: u64,
    removed: u64,
    imap_commands: u64,
    bytes_received: u64,
    bytes_sent: u64,
    /// Peak resident set of the process (VmHWM, sampled every 10 ms).
    peak_rss_bytes: u64,
    /// CPU time of the process (user + system, sampled every 10 ms): against the wall time,
    /// how much of it was work here rather than waiting for the server or the database.
    cpu_seconds: f64,
    phases_ms: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
struct RunFigures {
    backend: Backend,
    run: usize,
    raw_seconds: f64,
    raw_bytes: u64,
    /// Connect, LOGIN and SELECT by the raw client: the server's own cost of opening the folder.
    raw_select_seconds: f64,
    initial: SyncFigures,
    no_change: SyncFigures,
    incremental: SyncFigures,
}

#[derive(Debug, Serialize)]
struct Report {
    started_at: String,
    messages: usize,
    mean_message_bytes: u64,
    machine: serde_json::Value,
    runs: Vec<RunFigures>,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.no_install {
        crate::packages::ensure_installed()?;
    }
    let backends = if args.backends.is_empty() {
        vec![Backend::Postgres, Backend::Sqlite]
    } else {
        args.backends.clone()
    };
    let root = crate::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("bench: release build of imap-sync and bench-raw-fetch");
    let built = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "sync-bin",
            "--bin",
            "imap-sync",
            "-p",
            "integration-tests",
            "--bin",
            "bench-raw-fetch",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !built.success() {
        bail!("cargo build --release failed ({built})");
    }
    let binaries = root.join("target/release");
    let work = root.join("target/bench/work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;

    println!("bench: starting Dovecot and PostgreSQL (durable: fsync on)");
    let dovecot = DovecotServer::start(DovecotVariant::Full, Lifetime::OwningProcess)
        .context("starting Dovecot")?;
    let postgres =
        PostgresServer::start_durable(Lifetime::OwningProcess).context("starting PostgreSQL")?;
    let endpoint = dovecot.endpoint().clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let login = format!("bench-{}", args.messages);
    let seeded_bytes = runtime.block_on(seed(&endpoint, &login, args.messages))?;

    let mut runs = Vec::new();
    for &backend in &backends {
        for run in 1..=args.runs {
            println!("bench: {backend:?} run {run}/{}", args.runs);
            let figures = runtime.block_on(one_run(
                &binaries,
                &work,
                &endpoint,
                postgres.admin_url(),
                &login,
                backend,
                run,
                args.messages,
            ))?;
            runs.push(figures);
        }
    }
    if args.profile {
        for &backend in &backends {
            runtime.block_on(profile(
                &binaries,
                &work,
                &endpoint,
                postgres.admin_url(),
                &login,
                backend,
            ))?;
        }
    }
    drop(dovecot);
    drop(postgres);

    let report = Report {
        started_at: Utc::now().to_rfc3339(),
        messages: args.messages,
        mean_message_bytes: seeded_bytes / args.messages.max(1) as u64,
        machine: machine(),
        runs,
    };
    let out_dir = root.join("target/bench");
    let out = out_dir.join(format!(
        "bench-{}-{}.json",
        args.messages,
        Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    print_table(&report, &backends);
    println!("\nbench: every run in {}", out.display());
    Ok(())
}

/// Seeds `messages` generated messages (dates over the last 300 days, all inside the default
/// window) into INBOX; returns their total size.
async fn seed(endpoint: &DovecotEndpoint, login: &str, messages: usize) -> anyhow::Result<u64> {
    let mut raw = RawImap::login_to(endpoint, login).await?;
    let generator = MailGenerator::new(MailGeneratorConfig::over_days_before(11, Utc::now(), 300));
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut generator = generator.take(messages).peekable();
    let mut seeded = 0;
    // MULTIAPPEND in chunks: one APPEND per message makes Dovecot's maildir rewrite its UID
    // list each time, quadratic in the folder's size.
    while generator.peek().is_some() {
        let chunk: Vec<_> = generator.by_ref().take(500).collect();
        let items: Vec<test_support::AppendItem<'_>> = chunk
            .iter()
            .map(|m| (m.flags.as_slice(), Some(m.internal_date), m.raw.as_slice()))
            .collect();
        raw.append_many("INBOX", &items).await?;
        bytes += chunk.iter().map(|m| m.raw.len() as u64).sum::<u64>();
        seeded += chunk.len();
        if seeded % 10_000 == 0 {
            println!("bench: seeded {seeded} messages");
        }
    }
    println!(
        "bench: seeded {messages} messages ({:.1} MB) in {:.0} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    raw.logout().await?;
    Ok(bytes)
}

/// A fresh database for one run; PostgreSQL's is dropped with the value.
struct BenchDatabase {
    url: String,
    _postgres: Option<TestDatabase>,
}

impl BenchDatabase {
    async fn new(
        work: &Path,
        postgres_admin_url: &str,
        backend: Backend,
        name: &str,
    ) -> anyhow::Result<Self> {
        let migrations = crate::workspace_root().join("migrations/postgres");
        Ok(match backend {
            Backend::Postgres => {
                let database = TestDatabase::new_on(postgres_admin_url, &migrations).await?;
                Self {
                    url: database.url().to_owned(),
                    _postgres: Some(database),
                }
            }
            Backend::Sqlite => Self {
                url: work.join(format!("{name}.db")).display().to_string(),
                _postgres: None,
            },
        })
    }

    /// `imap-sync` on this database, configured for the benchmark.
    fn imap_sync(&self, program: &Path, endpoint: &DovecotEndpoint) -> Command {
        let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        let mut command = Command::new(program);
        command
            .arg("--database-url")
            .arg(&self.url)
            .env("IMAP_SYNC__SECRET_KEYS", format!("k1:{key}"))
            .env("BENCH_PASSWORD", &endpoint.password)
            // On loopback, compression only costs CPU on both ends; the raw client has none.
            .env("IMAP_SYNC__IMAP_COMPRESS", "false")
            // The rig's Dovecot listens on loopback, which the default connect policy refuses.
            .env("IMAP_SYNC__IMAP_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("RUST_LOG", "warn");
        if let Ok(size) = std::env::var("BENCH_BATCH_SIZE") {
            command.env("IMAP_SYNC__SYNC_BATCH_SIZE", size);
        }
        command
    }

    /// Adds the benchmark's user and mailbox.
    fn add_mailbox(
        &self,
        program: &Path,
        endpoint: &DovecotEndpoint,
        login: &str,
    ) -> anyhow::Result<()> {
        let port = endpoint.plain_port.to_string();
        let steps: [&[&str]; 2] = [
            &[
                "user",
                "add",
                "--email",
                "bench@example.test",
                "--name",
                "Bench",
            ],
            &[
                "mailbox",
                "add",
                "--owner",
                "1",
                "--email",
                "bench@example.test",
                "--host",
                &endpoint.host,
                "--port",
                &port,
                "--security",
                "none",
                "--user",
                login,
                "--password-env",
                "BENCH_PASSWORD",
            ],
        ];
        for arguments in steps {
            let output = self.imap_sync(program, endpoint).args(arguments).output()?;
            if !output.status.success() {
                bail!(
                    "imap-sync {}: {}",
                    arguments.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(())
    }
}

/// `perf record -a` (CPU-clock samples of every process: the hardware counters are not
/// available everywhere) during one initial sync into a fresh database; the top of the flat profile is printed and kept in
/// target/bench/perf-<backend>.txt.
async fn profile(
    binaries: &Path,
    work: &Path,
    endpoint: &DovecotEndpoint,
    postgres_admin_url: &str,
    login: &str,
    backend: Backend,
) -> anyhow::Result<()> {
    let database = BenchDatabase::new(work, postgres_admin_url, backend, "profile").await?;
    let program = binaries.join("imap-sync");
    database.add_mailbox(&program, endpoint, login)?;
    let data = work.join(format!("perf-{backend:?}.data"));
    let sync = database.imap_sync(&program, endpoint);
    let mut perf = Command::new("perf");
    // System-wide: the database's and the IMAP server's share of the time shows beside ours.
    perf.args([
        "record",
        "-q",
        "-a",
        "-F",
        "1000",
        "-e",
        "cpu-clock",
        "-g",
        "-o",
    ])
    .arg(&data)
    .arg("--")
    .arg(sync.get_program())
    .args(sync.get_args())
    .args(["sync", "--mailbox", "1", "--force", "--json"])
    .envs(sync.get_envs().filter_map(|(k, v)| Some((k, v?))))
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let status = perf
        .status()
        .context("running perf (apt-get install linux-perf)")?;
    if !status.success() {
        bail!("perf record failed ({status})");
    }
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--percent-limit",
            "1",
            "-g",
            "none",
            "--sort",
            "comm,dso,symbol",
            "-i",
        ])
        .arg(&data)
        .output()?;
    let text = String::from_utf8_lossy(&report.stdout).into_owned();
    let out = crate::workspace_root().join(format!("target/bench/perf-{backend:?}.txt"));
    std::fs::write(&out, &text)?;
    println!("\nbench: profile of one initial sync on {backend:?} (CPU samples of imap-sync):");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(30)
    {
        println!("  {}", line.trim_end());
    }
    let by_process = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "-g",
            "none",
            "--sort",
            "comm",
            "-i",
        ])
        .arg(&data)
        .output()?;
    println!("bench: CPU samples by process during that sync:");
    for line in String::from_utf8_lossy(&by_process.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(8)
    {
        println!("  {}", line.trim_end());
    }
    if backend == Backend::Postgres {
        let query = "SELECT round(total_exec_time::numeric, 1) AS ms, calls, \
                     left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS statement \
                     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database \
                     WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 12";
        let totals = "SELECT round(sum(total_exec_time)::numeric, 1) AS all_ms, \
                      sum(calls) AS calls, round(sum(total_exec_time) FILTER \
                      (WHERE query ILIKE 'insert into \"emails\"%')::numeric, 1) AS emails_insert_ms, \
                      round(sum(total_exec_time) FILTER (WHERE query ILIKE 'commit%')::numeric, 1) \
                      AS commit_ms FROM pg_stat_statements WHERE dbid = (SELECT oid FROM \
                      pg_database WHERE datname = current_database())";
        let statements = Command::new("psql")
            .arg(&database.url)
            .args([
                "-X",
                "-q",
                "-c",
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                "-c",
                totals,
                "-c",
                query,
            ])
            .output();
        match statements {
            Ok(output) if output.status.success() => {
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                println!("bench: the database's time by statement (pg_stat_statements):");
                for line in text.lines() {
                    println!("  {line}");
                }
                std::fs::write(
                    crate::workspace_root().join("target/bench/statements-Postgres.txt"),
                    text,
                )?;
            }
            Ok(output) => println!(
                "bench: pg_stat_statements: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => println!("bench: psql: {error}"),
        }
    }
    println!("bench: full profile in {}", out.display());
    Ok(())
}

/// One run: the raw limit, then a fresh database's initial, no-change and incremental sync.
#[allow(clippy::too_many_arguments)]
async fn one_run(
    binaries: &Path,
    work: &Path,
    endpoint: &DovecotEndpoint,
    postgres_admin_url: &str,
    login: &str,
    backend: Backend,
    run: usize,
    messages: usize,
) -> anyhow::Result<RunFigures> {
    let raw = Command::new(binaries.join("bench-raw-fetch"))
        .args([
            &endpoint.host,
            &endpoint.plain_port.to_string(),
            login,
            "INBOX",
        ])
        .env("BENCH_PASSWORD", &endpoint.password)
        .output()?;
    if !raw.status.success() {
        bail!("bench-raw-fetch: {}", String::from_utf8_lossy(&raw.stderr));
    }
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout)?;

    let database =
        BenchDatabase::new(work, postgres_admin_url, backend, &format!("run-{run}")).await?;
    let program = binaries.join("imap-sync");
    database.add_mailbox(&program, endpoint, login)?;
    let sync = || {
        let mut command = database.imap_sync(&program, endpoint);
        // Forced: the no-change and incremental syncs are real runs, not skipped as not due.
        command.args(["sync", "--mailbox", "1", "--force", "--json"]);
        measure(command)
    };

    let initial = sync()?;
    if initial.new != messages as u64 {
        bail!(
            "the initial sync stored {} of {messages} messages",
            initial.new
        );
    }
    let no_change = sync()?;
    change_server(endpoint, login, &format!("{backend:?}{run}")).await?;
    let incremental = sync()?;
    Ok(RunFigures {
        backend,
        run,
        raw_seconds: raw["seconds"].as_f64().unwrap_or_default(),
        raw_bytes: raw["bytes"].as_u64().unwrap_or_default(),
        raw_select_seconds: raw["select_seconds"].as_f64().unwrap_or_default(),
        initial,
        no_change,
        incremental,
    })
}

/// 100 appends, 100 flag changes and 100 expunges, by another client.
async fn change_server(endpoint: &DovecotEndpoint, login: &str, label: &str) -> anyhow::Result<()> {
    let mut raw = RawImap::login_to(endpoint, login).await?;
    let generator = MailGenerator::new(MailGeneratorConfig::over_days_before(
        label.bytes().map(u64::from).sum(),
        Utc::now(),
        2,
    ));
    for message in generator.take(CHANGES_EACH) {
        raw.append(
            "INBOX",
            &message.flags,
            Some(message.internal_date),
            &message.raw,
        )
        .await?;
    }
    let last = CHANGES_EACH;
    for command in [
        "SELECT INBOX".to_owned(),
        // A keyword of this run: a change whatever flags the messages had.
        format!("STORE 1:{last} +FLAGS.SILENT ($Bench{label})"),
        format!(
            "STORE {}:{} +FLAGS.SILENT (\\Deleted)",
            last + 1,
            last + CHANGES_EACH
        ),
        "EXPUNGE".to_owned(),
    ] {
        raw.command(&command).await?.ok()?;
    }
    raw.logout().await?;
    Ok(())
}

/// Runs one `imap-sync sync --json`, sampling its peak RSS; reads its report.
fn measure(mut command: Command) -> anyhow::Result<SyncFigures> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let stat_file = PathBuf::from(format!("/proc/{}/stat", child.id()));
    let mut peak_kb = 0u64;
    let mut cpu_ticks = 0u64;
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Ok(text) = std::fs::read_to_string(&stat_file) {
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = text
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let tick = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            cpu_ticks = cpu_ticks.max(tick(11) + tick(12));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let process_seconds = started.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    if !status.success() {
        bail!("imap-sync sync failed ({status}):\n{stdout}\n{stderr}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&stdout).with_context(|| format!("the JSON report: {stdout}"))?;
    let mailbox = &report["mailboxes"][0];
    if mailbox["status"] != "success" {
        bail!("the sync did not succeed: {report}");
    }
    let number = |key: &str| mailbox[key].as_u64().unwrap_or_default();
    Ok(SyncFigures {
        process_seconds,
        in_process_ms: mailbox["duration_ms"].as_f64().unwrap_or_default(),
        messages: number("new") + number("moved"),
        folders: number("folders"),
        new: number("new"),
        changed: number("changed"),
        removed: number("removed"),
        imap_commands: number("imap_commands"),
        bytes_received: number("bytes_received"),
        bytes_sent: number("bytes_sent"),
        peak_rss_bytes: peak_kb * 1024,
        // USER_HZ is 100 on Linux.
        cpu_seconds: cpu_ticks as f64 / 100.0,
        phases_ms: mailbox["phases_ms"].clone(),
    })
}

/// The machine and versions, for the JSON report.
fn machine() -> serde_json::Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory = read("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let version = |program: &str, argument: &str| {
        Command::new(program)
            .arg(argument)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    serde_json::json!({
        "cpu": cpu,
        "cores": cores,
        "memory": memory,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "rustc": version("rustc", "--version"),
        "dovecot": version("dovecot", "--version"),
        "postgres": test_support_postgres_version(),
    })
}

fn test_support_postgres_version() -> String {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .max()
        })
        .map(|major| format!("PostgreSQL {major}"))
        .unwrap_or_default()
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        0.0
    } else {
        sorted[sorted.len() / 2]
    };
    (
        median,
        sorted.first().copied().unwrap_or_default(),
        sorted.last().copied().unwrap_or_default(),
    )
}

fn print_table(report: &Report, backends: &[Backend]) {
    println!(
        "\n{} messages, mean {:.1} KB; median (min–max) of {} run(s)",
        report.messages,
        report.mean_message_bytes as f64 / 1024.0,
        report.runs.len() / backends.len().max(1)
    );
    let row = |label: &str, values: Vec<f64>, unit: &str, digits: usize| {
        let (median, min, max) = spread(&values);
        println!("  {label:<44} {median:>10.digits$} {unit:<6} ({min:.digits$}–{max:.digits$})");
    };
    for backend in backends {
        let runs: Vec<&RunFigures> = report
            .runs
            .iter()
            .filter(|r| r.backend == *backend)
            .collect();
        let each = |f: &dyn Fn(&RunFigures) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let mb = |bytes: u64| bytes as f64 / 1e6;
        println!("\n{backend:?}");
        row(
            "raw limit: UID FETCH 1:* BODY.PEEK[]",
            each(&|r| r.raw_seconds),
            "s",
            2,
        );
        row(
            "raw limit throughput",
            each(&|r| mb(r.raw_bytes) / r.raw_seconds),
            "MB/s",
            1,
        );
        row(
            "initial sync: process wall time",
            each(&|r| r.initial.process_seconds),
            "s",
            2,
        );
        row(
            "initial sync: messages/s",
            each(&|r| r.initial.new as f64 / r.initial.process_seconds),
            "msg/s",
            0,
        );
        row(
            "initial sync: MB/s (wire bytes)",
            each(&|r| mb(r.initial.bytes_received) / r.initial.process_seconds),
            "MB/s",
            1,
        );
        row(
            "initial sync / raw limit (target ≤ 4)",
            each(&|r| r.initial.process_seconds / r.raw_seconds),
            "×",
            2,
        );
        row(
            "initial sync: CPU of imap-sync / wall time",
            each(&|r| r.initial.cpu_seconds / r.initial.process_seconds * 100.0),
            "%",
            0,
        );
        row(
            "initial sync: peak RSS",
            each(&|r| mb(r.initial.peak_rss_bytes)),
            "MB",
            1,
        );
        row(
            "no-change sync: in process per folder (≤ 20)",
            each(&|r| r.no_change.in_process_ms / r.no_change.folders.max(1) as f64),
            "ms",
            1,
        );
        row(
            "raw client: connect + LOGIN + SELECT",
            each(&|r| r.raw_select_seconds * 1000.0),
            "ms",
            1,
        );
        row(
            "no-change sync: process wall time",
            each(&|r| r.no_change.process_seconds * 1000.0),
            "ms",
            0,
        );
        row(
            "no-change sync: IMAP commands",
            each(&|r| r.no_change.imap_commands as f64),
            "",
            0,
        );
        row(
            "no-change sync: bytes received",
            each(&|r| r.no_change.bytes_received as f64),
            "B",
            0,
        );
        row(
            "incremental (300 changes): in process (≤ 100)",
            each(&|r| r.incremental.in_process_ms),
            "ms",
            1,
        );
        row(
            "incremental: process wall time",
            each(&|r| r.incremental.process_seconds * 1000.0),
            "ms",
            0,
        );
        for r in &runs {
            println!(
                "  run {}: incremental new/changed/removed {}/{}/{}; initial phases (ms) {}",
                r.run,
                r.incremental.new,
                r.incremental.changed,
                r.incremental.removed,
                r.initial.phases_ms
            );
        }
    }
}
