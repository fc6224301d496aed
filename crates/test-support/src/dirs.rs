//! Temporary directories of the rig and the system users that must reach them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::RigError;
use crate::process::{Lifetime, ServerCommand, Supervised};

/// Environment variable naming the parent of every directory the rig creates; the system's
/// temporary directory when unset. The leftover test points it at a directory of its own.
pub const RIG_TMPDIR_VAR: &str = "IMAP_SYNC_RIG_TMPDIR";

/// Parent of the rig's directories.
pub fn rig_tmp_root() -> PathBuf {
    std::env::var_os(RIG_TMPDIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// A name no other process or call of this one uses: kind, pid, counter and clock nanoseconds.
pub fn unique_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{kind}-{}-{}-{nanos:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh directory under the rig root, traversable by the service users.
pub(crate) fn create_server_dir(kind: &str) -> Result<PathBuf, RigError> {
    let root = rig_tmp_root();
    std::fs::create_dir_all(&root).map_err(RigError::io(format!("creating {}", root.display())))?;
    let dir = root.join(format!("imap-sync-rig-{}", unique_name(kind)));
    debug_assert!(
        dir.as_os_str().len() < 80,
        "{} is too long for unix sockets",
        dir.display()
    );
    std::fs::create_dir(&dir).map_err(RigError::io(format!("creating {}", dir.display())))?;
    set_mode(&dir, 0o755)?;
    Ok(dir)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), RigError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(RigError::io(format!("chmod {mode:o} {}", path.display())))
}

pub(crate) fn chown(path: &Path, user: &SystemUser) -> Result<(), RigError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(RigError::io(format!(
        "chown {} {}",
        user.name,
        path.display()
    )))
}

/// A scratch directory for this process (SQLite files and the like), deleted by a watchdog
/// when the process exits, however it exits.
pub fn process_scratch_dir() -> Result<&'static Path, RigError> {
    static SCRATCH: OnceLock<Result<Supervised, String>> = OnceLock::new();
    let supervised = SCRATCH.get_or_init(|| {
        let dir = create_server_dir("scratch").map_err(|e| e.to_string())?;
        let log = dir.join("unused.log");
        Supervised::spawn(
            ServerCommand {
                dir: &dir,
                log: &log,
                stop_signal: "TERM",
                argv: Vec::new(),
            },
            Lifetime::OwningProcess,
        )
        .map_err(|e| e.to_string())
    });
    match supervised {
        Ok(supervised) => Ok(supervised.dir()),
        Err(message) => Err(RigError::Io {
            what: "creating the process scratch directory".into(),
            source: std::io::Error::other(message.clone()),
        }),
    }
}

/// A user of `/etc/passwd`.
#[derive(Debug, Clone)]
pub(crate) struct SystemUser {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

pub(crate) fn system_user(name: &str) -> Option<SystemUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == name).then(|| SystemUser {
            name: name.to_owned(),
            uid: fields[2].parse().unwrap_or(u32::MAX),
            gid: fields[3].parse().unwrap_or(u32::MAX),
        })
    })
}

/// The user this process runs as.
pub(crate) fn current_user() -> SystemUser {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let found = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[2].parse() == Ok(uid)).then(|| SystemUser {
            name: fields[0].to_owned(),
            uid,
            gid: fields[3].parse().unwrap_or(u32::MAX),
        })
    });
    found.unwrap_or(SystemUser {
        name: uid.to_string(),
        uid,
        gid: uid,
    })
}

pub(crate) fn running_as_root() -> bool {
    current_user().uid == 0
}

/// Finds an executable: first in `candidates`, then on `PATH`.
pub(crate) fn find_program(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .iter()
        .cloned()
        .chain(on_path)
        .find(|p| p.is_file())
}

/// A port on 127.0.0.1 that was free a moment ago. Servers that then fail to bind it are
/// restarted on another (see the start functions).
pub(crate) fn free_port() -> Result<u16, RigError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(RigError::io("binding a free loopback port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(RigError::io("reading a free loopback port"))
}
