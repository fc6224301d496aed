//! Helpers shared by the workspace's integration tests and the rig's crash probe.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

/// A tiny migrations folder that only the rig's own tests use, so that they do not depend on
/// the real schema.
pub fn rig_fixture_migrations(backend: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rig-migrations")
        .join(backend)
}

/// What the crash probe reports before it fails: the processes it started (directly or not)
/// and the directory all its rig directories live in.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ProbeReport {
    pub descendant_pids: Vec<u32>,
    pub rig_dirs: Vec<PathBuf>,
}

/// Every live descendant of `root`, from `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((pid, parent));
        }
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let current = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == current)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

/// The rig's servers listen on loopback, which the default connect policy refuses.
pub fn rig_connect_policy() -> imap_connector::ConnectPolicy {
    imap_connector::ConnectPolicy::parse(&["127.0.0.0/8".to_owned(), "::1".to_owned()], &[])
        .expect("loopback networks parse")
}

/// Connector settings for a fresh mailbox on a rig Dovecot, trusting the rig's CA.
pub fn connector_config(
    endpoint: &test_support::DovecotEndpoint,
    security: imap_connector::Security,
    user: &str,
) -> imap_connector::ImapConfig {
    let mut config = imap_connector::ImapConfig::new(
        endpoint.host.clone(),
        user,
        imap_connector::Credentials::Password(endpoint.password.clone().into()),
    );
    config.security = security;
    config.port = match security {
        imap_connector::Security::Tls => endpoint.tls_port,
        _ => endpoint.plain_port,
    };
    config.tls.extra_ca_file = Some(endpoint.ca_file.clone());
    config.connect_policy = rig_connect_policy();
    config.connect_timeout = std::time::Duration::from_secs(10);
    config.command_timeout = std::time::Duration::from_secs(30);
    config
}

/// The message corpus under `tests/data/corpus`, sorted by file name.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("a corpus file"))
        })
        .collect();
    files.sort();
    files
}
