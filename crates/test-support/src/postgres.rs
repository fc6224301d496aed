//! A hermetic PostgreSQL: `initdb` in a temporary directory (as the `postgres` user when run
//! as root), trust authentication, a free loopback port and a socket in the temporary
//! directory. Each test gets a database cloned from a template migrated once per run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::dirs::{
    chown, create_server_dir, find_program, free_port, running_as_root, set_mode, system_user,
    unique_name,
};
use crate::error::{FIX_POSTGRES, RigError};
use crate::process::{Lifetime, ServerCommand, Supervised, WaitFailure, log_tail, wait_until};

/// The environment variable through which `cargo xtask` hands a running server to tests: an
/// administrator URL such as `postgres://postgres@127.0.0.1:5433/postgres`.
pub const DATABASE_URL_VAR: &str = "TEST_DATABASE_URL";

/// A PostgreSQL server started by this process.
#[derive(Debug)]
pub struct PostgresServer {
    admin_url: String,
    supervised: Supervised,
}

impl PostgresServer {
    /// Runs `initdb` and starts `postgres` itself (not `pg_ctl`), under a watchdog; without
    /// fsync (test data is thrown away).
    pub fn start(lifetime: Lifetime) -> Result<Self, RigError> {
        Self::start_with(lifetime, false)
    }

    /// [`Self::start`] with PostgreSQL's default durability (fsync, synchronous commit), for
    /// benchmarks that claim durably committed data; with `pg_stat_statements` loaded.
    pub fn start_durable(lifetime: Lifetime) -> Result<Self, RigError> {
        Self::start_with(lifetime, true)
    }

    fn start_with(lifetime: Lifetime, durable: bool) -> Result<Self, RigError> {
        let bin = postgres_bin_dir().ok_or(RigError::Missing {
            program: "PostgreSQL (initdb, postgres)",
            fix: FIX_POSTGRES,
        })?;
        // Another run may take the port between our probe and the server's bind: try again
        // from scratch on another port.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::start_once(&bin, lifetime, durable) {
                Ok(server) => return Ok(server),
                Err(
                    error @ RigError::NotReady {
                        server: "postgres", ..
                    },
                ) => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    fn start_once(bin: &Path, lifetime: Lifetime, durable: bool) -> Result<Self, RigError> {
        let dir = create_server_dir("pg")?;
        let (data, socket) = (dir.join("data"), dir.join("socket"));
        let mut argv = init_cluster(bin, &dir).inspect_err(|_| {
            // Nothing supervises the directory yet: remove it here.
            let _ = std::fs::remove_dir_all(&dir);
        })?;

        let port = free_port()?;
        argv.push(bin.join("postgres").display().to_string());
        argv.extend(["-D".into(), data.display().to_string()]);
        argv.extend(["-p".into(), port.to_string()]);
        argv.extend(["-k".into(), socket.display().to_string()]);
        let mut settings = vec!["listen_addresses=127.0.0.1", "max_connections=300"];
        if durable {
            // Benchmarks read which statements took the database's time.
            settings.extend([
                "shared_preload_libraries=pg_stat_statements",
                "pg_stat_statements.track=all",
            ]);
        } else {
            // Test data is thrown away: durability buys nothing here.
            settings.extend([
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]);
        }
        for setting in settings {
            argv.extend(["-c".into(), setting.into()]);
        }
        let log = dir.join("server.log");
        let supervised = Supervised::spawn(
            ServerCommand {
                dir: &dir,
                log: &log,
                // SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients.
                stop_signal: "INT",
                argv,
            },
            lifetime,
        )?;
        let ready = wait_until(Duration::from_secs(30), &supervised, || {
            log_tail(&log).contains("ready to accept connections")
        });
        match ready {
            Ok(()) => Ok(Self {
                admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                supervised,
            }),
            Err(failure) => {
                let tail = log_tail(&log);
                drop(supervised);
                Err(RigError::NotReady {
                    server: "postgres",
                    seconds: if failure == WaitFailure::TimedOut {
                        30
                    } else {
                        0
                    },
                    log,
                    tail,
                })
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    pub fn into_supervised(self) -> Supervised {
        self.supervised
    }

    pub fn supervised(&self) -> &Supervised {
        &self.supervised
    }
}

/// Creates the data and socket directories in `dir` and runs `initdb`; returns the command
/// prefix that runs a PostgreSQL program as the right user (empty unless we are root).
fn init_cluster(bin: &Path, dir: &Path) -> Result<Vec<String>, RigError> {
    let (data, socket) = (dir.join("data"), dir.join("socket"));
    for sub in [&data, &socket] {
        std::fs::create_dir(sub).map_err(RigError::io(format!("creating {}", sub.display())))?;
    }
    set_mode(&data, 0o700)?;
    // initdb and postgres refuse to run as root.
    let mut argv: Vec<String> = Vec::new();
    if running_as_root() {
        let postgres = system_user("postgres").ok_or(RigError::Missing {
            program: "the system user postgres",
            fix: FIX_POSTGRES,
        })?;
        for sub in [&data, &socket] {
            chown(sub, &postgres)?;
        }
        argv.extend(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]
            .map(String::from),
        );
    }

    let initdb_log = dir.join("initdb.log");
    let mut initdb_argv = argv.clone();
    initdb_argv.push(bin.join("initdb").display().to_string());
    initdb_argv.extend(
        [
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--pgdata",
        ]
        .map(String::from),
    );
    initdb_argv.push(data.display().to_string());
    let initdb_out = std::fs::File::create(&initdb_log)
        .map_err(RigError::io(format!("creating {}", initdb_log.display())))?;
    let status = std::process::Command::new(&initdb_argv[0])
        .args(&initdb_argv[1..])
        .stdout(initdb_out.try_clone().map_err(RigError::io("initdb log"))?)
        .stderr(initdb_out)
        .status()
        .map_err(RigError::io("running initdb"));
    if !matches!(status, Ok(s) if s.success()) {
        let tail = log_tail(&initdb_log);
        status?;
        return Err(RigError::NotReady {
            server: "initdb",
            seconds: 0,
            log: initdb_log,
            tail,
        });
    }

    Ok(argv)
}

/// `/usr/lib/postgresql/<newest>/bin`, or the directory of `initdb` on `PATH`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let initdb = find_program("initdb", &[])?;
    let bin = std::fs::canonicalize(initdb).ok()?.parent()?.to_path_buf();
    bin.join("postgres").is_file().then_some(bin)
}
/// The administrator URL tests should use: [`DATABASE_URL_VAR`] when `cargo xtask` set it, else
/// a server started once for this process.
pub fn shared_postgres_url() -> Result<&'static str, RigError> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    static OWN: OnceLock<PostgresServer> = OnceLock::new();
    let url = URL.get_or_init(|| {
        if let Ok(url) = std::env::var(DATABASE_URL_VAR) {
            return Ok(url);
        }
        let server = PostgresServer::start(Lifetime::OwningProcess).map_err(|e| e.to_string())?;
        let url = server.admin_url().to_owned();
        // Kept for the life of the process; the watchdog stops it when the process exits.
        let _ = OWN.set(server);
        Ok(url)
    });
    url.as_deref()
        .map_err(|message| RigError::Shared(message.clone()))
}

/// A database of its own for one test, cloned from a template that holds the migrations of a
/// given folder; dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A fresh database holding the migrations in `migrations_dir`.
    pub async fn new(migrations_dir: &Path) -> Result<Self, RigError> {
        Self::new_on(shared_postgres_url()?, migrations_dir).await
    }

    /// [`Self::new`] on the server of `admin_url`.
    pub async fn new_on(admin_url: &str, migrations_dir: &Path) -> Result<Self, RigError> {
        let admin_url = admin_url.to_owned();
        let template = ensure_template(&admin_url, migrations_dir).await?;
        let name = unique_name("test").replace('-', "_");
        let admin = connect(&admin_url).await?;
        admin
            .batch_execute(&format!(
                r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#
            ))
            .await
            .map_err(RigError::postgres(format!(
                "cloning {template} into {name}"
            )))?;
        Ok(Self {
            url: database_url(&admin_url, &name),
            name,
            admin_url,
        })
    }

    /// URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be the one calling us: use a thread
        // with a runtime of its own. Without this each test would leave ~8 MB behind.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(admin) = connect(&admin_url).await {
                        let _ = admin
                            .batch_execute(&format!(
                                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                            ))
                            .await;
                    }
                });
            }
        });
        let _ = dropper.join();
    }
}

/// Replaces the database name at the end of a URL.
fn database_url(admin_url: &str, database: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => format!("{admin_url}/{database}"),
    }
}

/// Connects and drives the connection on the current runtime.
pub(crate) async fn connect(url: &str) -> Result<tokio_postgres::Client, RigError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(RigError::postgres(format!("connecting to {url}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Name of the template holding `migrations_dir`'s current contents; built once, under an
/// advisory lock so that concurrent test processes build it only once.
async fn ensure_template(admin_url: &str, migrations_dir: &Path) -> Result<String, RigError> {
    let fingerprint = crate::migrations::fingerprint(migrations_dir)?;
    let template = format!("tmpl_{fingerprint:016x}");
    let admin = connect(admin_url).await?;
    // The lock is held by this session and released when it ends, also if we crash.
    let lock_key = (fingerprint >> 1) as i64;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await
        .map_err(RigError::postgres("taking the template lock"))?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .map_err(RigError::postgres("looking up the template"))?
        .is_some();
    if !exists {
        let building = format!("{template}_build");
        // A process that crashed while building left this behind; two statements, since a
        // multi-statement string runs as one transaction and DROP DATABASE refuses that.
        admin
            .batch_execute(&format!(
                r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
            ))
            .await
            .map_err(RigError::postgres(format!("dropping {building}")))?;
        admin
            .batch_execute(&format!(r#"CREATE DATABASE "{building}""#))
            .await
            .map_err(RigError::postgres(format!("creating {building}")))?;
        let url = database_url(admin_url, &building);
        let dir = migrations_dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::migrations::run_postgres(&url, &dir))
            .await
            .map_err(|e| RigError::Migrations {
                dir: migrations_dir.to_path_buf(),
                message: e.to_string(),
            })??;
        // Only a fully migrated template gets the name clones are made from.
        admin
            .batch_execute(&format!(
                r#"ALTER DATABASE "{building}" RENAME TO "{template}""#
            ))
            .await
            .map_err(RigError::postgres(format!("renaming {building}")))?;
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await
        .map_err(RigError::postgres("releasing the template lock"))?;
    Ok(template)
}
