//! A hermetic Dovecot: its own configuration, mail store, state and logs in a temporary
//! directory, listening on free loopback ports. It never reads `/etc/dovecot` and never touches
//! a system instance.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dirs::{
    SystemUser, chown, create_server_dir, current_user, find_program, free_port, running_as_root,
    set_mode, system_user, unique_name,
};
use crate::error::{FIX_DOVECOT, RigError};
use crate::process::{Lifetime, ServerCommand, Supervised, WaitFailure, log_tail, wait_until};
use crate::tls::ServerIdentity;

/// The password every user of the rig's Dovecot logs in with; any other is refused.
pub const PASSWORD: &str = "rig-password";

/// Which Dovecot a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DovecotVariant {
    /// CONDSTORE, QRESYNC, IDLE, SPECIAL-USE, COMPRESS=DEFLATE, MOVE, UIDPLUS, ESEARCH, …
    Full,
    /// Advertises only `IMAP4rev1 LITERAL+` after login, and its folders carry no special-use
    /// attributes. Dovecot can hide an extension but not refuse it, so tests on this variant
    /// must check from the client's command log that no hidden extension was used.
    Minimal,
}

impl DovecotVariant {
    /// The environment variable through which `cargo xtask` hands a running server to tests.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Full => "IMAP_SYNC_TEST_DOVECOT",
            Self::Minimal => "IMAP_SYNC_TEST_DOVECOT_MINIMAL",
        }
    }
}

/// How to reach a running rig Dovecot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DovecotEndpoint {
    pub variant: DovecotVariant,
    pub host: String,
    /// Plain IMAP, with STARTTLS offered.
    pub plain_port: u16,
    /// Implicit TLS.
    pub tls_port: u16,
    /// PEM file of the CA that signed the server's certificate.
    pub ca_file: PathBuf,
    pub password: String,
    /// The server's configuration, for `doveadm` (what a test cannot do over IMAP).
    pub config_file: PathBuf,
}

impl DovecotEndpoint {
    /// A user name no other test uses: logging in with it gives a fresh, empty mailbox.
    pub fn fresh_user(&self, purpose: &str) -> String {
        unique_name(purpose)
    }

    /// Gives `folder` of `user` this UIDVALIDITY (`doveadm mailbox update`): what no IMAP
    /// command can do, and what servers do that hand out one UIDVALIDITY to two folders.
    pub fn set_uid_validity(
        &self,
        user: &str,
        folder: &str,
        uid_validity: u32,
    ) -> Result<(), RigError> {
        let program = find_program("doveadm", &[PathBuf::from("/usr/bin/doveadm")]).ok_or(
            RigError::Missing {
                program: "doveadm",
                fix: FIX_DOVECOT,
            },
        )?;
        let output = std::process::Command::new(&program)
            .arg("-c")
            .arg(&self.config_file)
            .args(["mailbox", "update", "-u", user, "--uid-validity"])
            .arg(uid_validity.to_string())
            .arg(folder)
            .output()
            .map_err(RigError::io(format!("running {}", program.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(RigError::Failed {
                what: format!("doveadm mailbox update of {folder}"),
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// The endpoint as one environment value.
    pub fn to_env_value(&self) -> String {
        serde_json::to_string(self).expect("an endpoint serializes")
    }
}

/// A Dovecot started by this process.
#[derive(Debug)]
pub struct DovecotServer {
    endpoint: DovecotEndpoint,
    supervised: Supervised,
}

impl DovecotServer {
    /// Starts a new hermetic Dovecot.
    pub fn start(variant: DovecotVariant, lifetime: Lifetime) -> Result<Self, RigError> {
        let program = find_program("dovecot", &[PathBuf::from("/usr/sbin/dovecot")]).ok_or(
            RigError::Missing {
                program: "dovecot",
                fix: FIX_DOVECOT,
            },
        )?;
        if variant == DovecotVariant::Full && !Path::new(IMAP_ZLIB_PLUGIN).exists() {
            return Err(RigError::Missing {
                program: "Dovecot's imap_zlib plugin",
                fix: FIX_DOVECOT,
            });
        }
        // Another run may take a port between our probe and Dovecot's bind: try fresh ports.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::start_once(&program, variant, lifetime) {
                Ok(server) => return Ok(server),
                Err(error @ RigError::NotReady { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    fn start_once(
        program: &Path,
        variant: DovecotVariant,
        lifetime: Lifetime,
    ) -> Result<Self, RigError> {
        // Short names: Dovecot's unix sockets live under this directory, and a socket path
        // may not exceed 107 bytes.
        let dir = create_server_dir(match variant {
            DovecotVariant::Full => "dc",
            DovecotVariant::Minimal => "dcmin",
        })?;
        let (layout, plain_port, tls_port) = prepare(&dir, variant).inspect_err(|_| {
            // Nothing supervises the directory yet: remove it here.
            let _ = std::fs::remove_dir_all(&dir);
        })?;

        let server_log = dir.join("server.log");
        let supervised = Supervised::spawn(
            ServerCommand {
                dir: &dir,
                log: &server_log,
                stop_signal: "TERM",
                argv: vec![
                    program.display().to_string(),
                    "-F".into(),
                    "-c".into(),
                    layout.config.display().to_string(),
                ],
            },
            lifetime,
        )?;
        let endpoint = DovecotEndpoint {
            variant,
            host: "127.0.0.1".into(),
            plain_port,
            tls_port,
            ca_file: layout.ca.clone(),
            config_file: layout.config.clone(),
            password: PASSWORD.into(),
        };
        let mut ready = wait_until(Duration::from_secs(20), &supervised, || {
            greets(plain_port) && greets(tls_port)
        });
        // Ports that another run took between our probe and Dovecot's bind also accept
        // connections; Dovecot itself then exits at once, which a second look catches.
        std::thread::sleep(Duration::from_millis(100));
        if ready.is_ok() && !supervised.server_running() {
            ready = Err(WaitFailure::Exited);
        }
        match ready {
            Ok(()) => Ok(Self {
                endpoint,
                supervised,
            }),
            Err(failure) => {
                let tail = format!(
                    "{}\n{}",
                    log_tail(&server_log),
                    log_tail(&layout.logs.join("dovecot.log"))
                );
                drop(supervised);
                Err(RigError::NotReady {
                    server: "dovecot",
                    seconds: if failure == WaitFailure::TimedOut {
                        20
                    } else {
                        0
                    },
                    log: server_log,
                    tail,
                })
            }
        }
    }

    pub fn endpoint(&self) -> &DovecotEndpoint {
        &self.endpoint
    }

    /// The process that stops the server and deletes its directory.
    pub fn into_supervised(self) -> Supervised {
        self.supervised
    }

    pub fn supervised(&self) -> &Supervised {
        &self.supervised
    }
}

/// The Dovecot a test should use: the one `cargo xtask` started (found through
/// [`DovecotVariant::env_var`]), else one started once for this process.
pub fn shared_dovecot(variant: DovecotVariant) -> Result<&'static DovecotEndpoint, RigError> {
    static FULL: OnceLock<Result<DovecotEndpoint, String>> = OnceLock::new();
    static MINIMAL: OnceLock<Result<DovecotEndpoint, String>> = OnceLock::new();
    static OWN: std::sync::Mutex<Vec<DovecotServer>> = std::sync::Mutex::new(Vec::new());
    let cell = match variant {
        DovecotVariant::Full => &FULL,
        DovecotVariant::Minimal => &MINIMAL,
    };
    let result = cell.get_or_init(|| {
        if let Some(value) = std::env::var_os(variant.env_var()) {
            let value = value.to_string_lossy();
            let endpoint: DovecotEndpoint = serde_json::from_str(&value).map_err(|e| {
                RigError::BadEnvironment {
                    variable: variant.env_var(),
                    message: e.to_string(),
                }
                .to_string()
            })?;
            return Ok(endpoint);
        }
        let server =
            DovecotServer::start(variant, Lifetime::OwningProcess).map_err(|e| e.to_string())?;
        let endpoint = server.endpoint().clone();
        // Kept for the life of the process: statics are never dropped, and the watchdog stops
        // the server when the process exits.
        OWN.lock().unwrap_or_else(|p| p.into_inner()).push(server);
        Ok(endpoint)
    });
    result
        .as_ref()
        .map_err(|message| RigError::Shared(message.clone()))
}

/// Writes the configuration, certificates and store of a new server into `dir`; returns the
/// layout and the plain and TLS ports.
fn prepare(dir: &Path, variant: DovecotVariant) -> Result<(Layout, u16, u16), RigError> {
    let layout = Layout::new(dir);
    for sub in [&layout.run, &layout.state, &layout.logs, &layout.mail] {
        std::fs::create_dir(sub).map_err(RigError::io(format!("creating {}", sub.display())))?;
    }
    let identity = ServerIdentity::generate()?;
    write(&layout.ca, &identity.ca_pem)?;
    write(&layout.cert, &identity.chain_pem)?;
    write(&layout.key, &identity.key_pem)?;
    set_mode(&layout.key, 0o600)?;

    let mail_user = mail_user()?;
    chown(&layout.mail, &mail_user)?;
    let (plain_port, tls_port) = (free_port()?, free_port()?);
    let config = render_config(&ConfigInput {
        layout: &layout,
        variant,
        plain_port,
        tls_port,
        mail_user: &mail_user,
        instance: dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("imap-sync-rig"),
    });
    write(&layout.config, &config)?;

    Ok((layout, plain_port, tls_port))
}

const IMAP_ZLIB_PLUGIN: &str = "/usr/lib/dovecot/modules/lib30_imap_zlib_plugin.so";

struct Layout {
    config: PathBuf,
    run: PathBuf,
    state: PathBuf,
    logs: PathBuf,
    mail: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Self {
        Self {
            config: dir.join("dovecot.conf"),
            run: dir.join("run"),
            state: dir.join("state"),
            logs: dir.join("logs"),
            mail: dir.join("mail"),
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

struct ConfigInput<'a> {
    layout: &'a Layout,
    variant: DovecotVariant,
    plain_port: u16,
    tls_port: u16,
    mail_user: &'a SystemUser,
    instance: &'a str,
}

/// The user that owns the mail store. Dovecot refuses to store mail as root.
fn mail_user() -> Result<SystemUser, RigError> {
    if running_as_root() {
        system_user("nobody").ok_or(RigError::Missing {
            program: "the system user nobody",
            fix: "add it to /etc/passwd",
        })
    } else {
        Ok(current_user())
    }
}

fn render_config(input: &ConfigInput<'_>) -> String {
    let layout = input.layout;
    let mut config = format!(
        r#"# Generated by the imap-sync test rig; nothing here reads /etc/dovecot.
instance_name = {instance}
base_dir = {run}
state_dir = {state}
log_path = {logs}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 200
first_valid_uid = {uid}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
# Tests share one server from one address: a refused login in one test must not slow the
# logins of every other test (Dovecot's per-IP auth penalty). The 2 s delay of the refusal
# itself stays, as on a real server.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls}
    ssl = yes
  }}
}}
"#,
        instance = input.instance,
        run = layout.run.display(),
        state = layout.state.display(),
        logs = layout.logs.display(),
        cert = layout.cert.display(),
        key = layout.key.display(),
        mail = layout.mail.display(),
        uid = input.mail_user.uid,
        gid = input.mail_user.gid,
        password = PASSWORD,
        plain = input.plain_port,
        tls = input.tls_port,
    );
    if !running_as_root() {
        let user = current_user().name;
        config.push_str(&format!(
            "default_internal_user = {user}\ndefault_login_user = {user}\n"
        ));
    }
    config.push_str("namespace inbox {\n  inbox = yes\n  separator = /\n");
    for (folder, special_use) in [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        config.push_str(&format!("  mailbox {folder} {{\n    auto = create\n"));
        if input.variant == DovecotVariant::Full {
            config.push_str(&format!("    special_use = {special_use}\n"));
        }
        config.push_str("  }\n");
    }
    config.push_str("}\n");
    config.push_str(match input.variant {
        DovecotVariant::Full => "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n",
        DovecotVariant::Minimal => "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+\n}\n",
    });
    config
}

fn write(path: &Path, contents: &str) -> Result<(), RigError> {
    std::fs::write(path, contents).map_err(RigError::io(format!("writing {}", path.display())))
}

/// True once a TCP connection to the port is accepted (TLS or plain: we only look for a peer).
fn greets(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}
