//! `cargo xtask tidy`: ARCHITECTURE.md's invariants, checked mechanically.
//!
//! - Layering: which crate of ours may depend on which (over `cargo metadata`).
//! - Every member uses the workspace lints.
//! - Every crate root opens with a `//!` doc saying what it owns and must not depend on.
//! - No test is skipped with an ignore attribute or hidden behind `should_panic`.
//! - Only imap-connector speaks IMAP: sync-core's code holds no IMAP command text, no IMAP date
//!   format, no capability name and builds no connector error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Which of our crates each crate may use in normal and build dependencies. Every crate may
/// also use the crates it is allowed here, and `test-support`, in its dev-dependencies.
/// `None` means any crate of ours (the integration tests see everything).
const LAYERS: &[(&str, Option<&[&str]>)] = &[
    ("imap-connector", Some(&[])),
    ("email-model", Some(&[])),
    ("notify", Some(&["email-model"])),
    (
        "sync-core",
        Some(&["imap-connector", "email-model", "notify"]),
    ),
    (
        "sync-bin",
        Some(&["sync-core", "imap-connector", "email-model", "notify"]),
    ),
    ("test-support", Some(&[])),
    ("xtask", Some(&["test-support", "email-model"])),
    ("integration-tests", None),
];

const DEV_ONLY: &str = "test-support";

#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Target {
    kind: Vec<String>,
    src_path: PathBuf,
}

pub(crate) fn run(workspace: &Path) -> anyhow::Result<()> {
    let metadata = metadata(workspace)?;
    let mut problems = layering_violations(&metadata);
    problems.extend(convention_violations(&metadata, workspace)?);
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("tidy: {problem}");
    }
    bail!("tidy found {} problem(s)", problems.len())
}

fn metadata(workspace: &Path) -> anyhow::Result<Metadata> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing cargo metadata")
}

/// Dependencies between our crates that ARCHITECTURE.md forbids.
pub(crate) fn layering_violations(metadata: &Metadata) -> Vec<String> {
    let ours: BTreeSet<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
    let mut problems = Vec::new();
    for package in &metadata.packages {
        let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == package.name) else {
            problems.push(format!(
                "crate {} has no layer: add it to LAYERS in xtask/src/tidy.rs and to ARCHITECTURE.md",
                package.name
            ));
            continue;
        };
        let Some(allowed) = allowed else { continue };
        for dependency in &package.dependencies {
            if !ours.contains(dependency.name.as_str())
                || allowed.contains(&dependency.name.as_str())
            {
                continue;
            }
            let dev = dependency.kind.as_deref() == Some("dev");
            if dev && dependency.name == DEV_ONLY {
                continue;
            }
            problems.push(format!(
                "{} must not depend on {}{} (ARCHITECTURE.md, layering); allowed: {}",
                package.name,
                dependency.name,
                if dev {
                    " (even as a dev-dependency)"
                } else {
                    ""
                },
                if allowed.is_empty() {
                    "none of ours".to_owned()
                } else {
                    allowed.join(", ")
                }
            ));
        }
    }
    problems
}

fn convention_violations(metadata: &Metadata, workspace: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for package in &metadata.packages {
        let manifest = std::fs::read_to_string(&package.manifest_path)
            .with_context(|| format!("reading {}", package.manifest_path.display()))?;
        let uses_workspace_lints = manifest
            .split("[lints]")
            .nth(1)
            .is_some_and(|rest| rest.trim_start().starts_with("workspace = true"));
        if !uses_workspace_lints {
            problems.push(format!(
                "{}: add `[lints] workspace = true`",
                package.manifest_path.display()
            ));
        }
        for target in &package.targets {
            let is_root = target.kind.iter().any(|k| k == "lib" || k == "bin");
            if !is_root {
                continue;
            }
            let source = std::fs::read_to_string(&target.src_path)
                .with_context(|| format!("reading {}", target.src_path.display()))?;
            if !source.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{}: open with a `//!` doc saying what the crate owns and must not depend on",
                    target.src_path.display()
                ));
            }
        }
    }
    let forbidden = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    for file in rust_files(workspace)? {
        let source = std::fs::read_to_string(&file)?;
        for attribute in forbidden {
            if source.contains(attribute) {
                problems.push(format!(
                    "{}: {attribute}] — a test either runs and asserts, or does not exist",
                    file.display()
                ));
            }
        }
    }
    for file in rust_files(&workspace.join("crates/sync-core/src"))? {
        let source = std::fs::read_to_string(&file)?;
        for problem in imap_grammar_in(&source) {
            problems.push(format!(
                "{}: {problem} — only imap-connector speaks IMAP (ARCHITECTURE.md): use a typed MailServer call",
                file.display()
            ));
        }
    }
    Ok(problems)
}

/// IMAP spoken in code outside the connector: string literals that start like a command or a
/// search key, IMAP's date format, capability names, connector errors built by hand.
fn imap_grammar_in(source: &str) -> Vec<String> {
    const COMMAND_STARTS: [&str; 16] = [
        "UID ",
        "SELECT ",
        "EXAMINE ",
        "FETCH ",
        "STORE ",
        "SEARCH ",
        "SINCE ",
        "SENTSINCE ",
        "BEFORE ",
        "ENABLE ",
        "IDLE",
        "NOOP",
        "EXPUNGE",
        "LIST ",
        "STATUS ",
        "LOGIN ",
    ];
    const CAPABILITIES: [&str; 7] = [
        "CONDSTORE",
        "QRESYNC",
        "IDLE",
        "MOVE",
        "UIDPLUS",
        "OBJECTID",
        "X-GM-EXT-1",
    ];
    let mut problems = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        // The odd pieces of a split on quotes are the string literals (escaped quotes aside).
        for literal in code.split('"').skip(1).step_by(2) {
            if COMMAND_STARTS
                .iter()
                .any(|start| literal.starts_with(start))
                || CAPABILITIES.contains(&literal)
                || literal.contains("%-d-%b-%Y")
            {
                problems.push(format!("line {}: {literal:?}", number + 1));
            }
        }
        if code.contains("ConnectorError::")
            && ["format!(", ".to_owned()", ".into()", "String::"]
                .iter()
                .any(|built| code.contains(built))
        {
            problems.push(format!("line {}: a connector error built here", number + 1));
        }
    }
    problems
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_workspace() -> Metadata {
        metadata(&crate::workspace_root()).unwrap()
    }

    fn add_dependency(metadata: &mut Metadata, from: &str, to: &str, kind: Option<&str>) {
        let package = metadata
            .packages
            .iter_mut()
            .find(|p| p.name == from)
            .unwrap();
        package.dependencies.push(Dependency {
            name: to.to_owned(),
            kind: kind.map(str::to_owned),
        });
    }

    #[test]
    fn this_workspace_respects_its_layers_and_conventions() {
        let metadata = this_workspace();
        assert_eq!(layering_violations(&metadata), Vec::<String>::new());
        assert_eq!(
            convention_violations(&metadata, &crate::workspace_root()).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_bottom_crates_may_not_use_each_other_or_anything_above() {
        for (from, to) in [
            ("imap-connector", "email-model"),
            ("email-model", "imap-connector"),
            ("email-model", "sync-core"),
            ("notify", "sync-core"),
            ("sync-core", "sync-bin"),
            ("test-support", "email-model"),
        ] {
            let mut metadata = this_workspace();
            add_dependency(&mut metadata, from, to, None);
            let problems = layering_violations(&metadata);
            assert_eq!(problems.len(), 1, "{from} -> {to}: {problems:?}");
            assert!(problems[0].starts_with(&format!("{from} must not depend on {to}")));
        }
    }

    #[test]
    fn imap_text_outside_the_connector_is_found() {
        let found = imap_grammar_in(
            "let a = format!(\"UID {}:*\", n);\n\
             // SELECT in a comment is fine\n\
             let b = caps.contains(\"CONDSTORE\");\n\
             let c = date.format(\"%-d-%b-%Y\");\n\
             let d = ConnectorError::Protocol(format!(\"x\"));\n\
             let e = \"the server changed the message (UNCHANGEDSINCE)\";\n",
        );
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("line 1"));
        assert!(
            found
                .iter()
                .all(|p| !p.starts_with("line 2") && !p.starts_with("line 6"))
        );
    }

    #[test]
    fn test_support_is_allowed_only_as_a_dev_dependency() {
        let mut metadata = this_workspace();
        add_dependency(&mut metadata, "email-model", "test-support", Some("dev"));
        assert_eq!(layering_violations(&metadata), Vec::<String>::new());
        add_dependency(&mut metadata, "email-model", "test-support", None);
        assert_eq!(layering_violations(&metadata).len(), 1);
        add_dependency(&mut metadata, "imap-connector", "sync-core", Some("dev"));
        assert_eq!(layering_violations(&metadata).len(), 2);
    }
}
