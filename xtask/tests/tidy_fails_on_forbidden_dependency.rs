//! `cargo xtask tidy` run for real on a copy of the workspace in which `imap-connector` has
//! been made to depend on `email-model`: it must fail and name the edge.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let (source, destination) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_tree(&source, &destination);
        } else {
            std::fs::copy(&source, &destination).unwrap();
        }
    }
}

fn tidy(workspace: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["tidy", "--workspace"])
        .arg(workspace)
        .output()
        .unwrap()
}

#[test]
fn tidy_fails_when_a_forbidden_dependency_between_our_crates_is_added() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let copy = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_tree(root, &copy);

    let clean = tidy(&copy);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );

    let manifest = copy.join("crates/imap-connector/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "[dependencies]\n",
            "[dependencies]\nemail-model.workspace = true\n",
        ),
    )
    .unwrap();
    let broken = tidy(&copy);
    let stderr = String::from_utf8_lossy(&broken.stderr).into_owned();
    std::fs::remove_dir_all(&copy).unwrap();
    assert!(
        !broken.status.success(),
        "tidy passed with a forbidden dependency: {stderr}"
    );
    assert!(
        stderr.contains("imap-connector must not depend on email-model"),
        "{stderr}"
    );
}
