use std::path::PathBuf;

/// Why the rig could not give a test what it asked for. Every variant says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error("{program} is not installed: {fix}")]
    Missing {
        program: &'static str,
        fix: &'static str,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{server} did not become ready within {seconds} s; the end of its log {log}:\n{tail}")]
    NotReady {
        server: &'static str,
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("PostgreSQL: {context}: {source}")]
    Postgres {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migrations in {dir}: {message}")]
    Migrations { dir: PathBuf, message: String },
    #[error(
        "{variable} is set but unusable ({message}); unset it to let the rig start its own server"
    )]
    BadEnvironment {
        variable: &'static str,
        message: String,
    },
    #[error("{0}")]
    Shared(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("IMAP: {0}")]
    Imap(String),
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
}

impl RigError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    pub(crate) fn postgres(
        context: impl Into<String>,
    ) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let context = context.into();
        move |source| Self::Postgres { context, source }
    }
}

/// One-line fixes printed when a server program is missing.
pub(crate) const FIX_DOVECOT: &str = "run the suite with `cargo xtask test` (as root it installs what is missing), \
     or `apt-get install dovecot-imapd`";
pub(crate) const FIX_POSTGRES: &str = "run the suite with `cargo xtask test` (as root it installs what is missing), \
     or `apt-get install postgresql`";
