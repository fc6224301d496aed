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
