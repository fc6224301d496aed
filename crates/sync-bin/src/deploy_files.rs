//! Checks of `deploy/` and README that need no Docker or systemd: the files parse, every
//! `imap-sync` command in them parses with this command line, the image runs as non-root, the
//! service runs the daemon and the example configuration loads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use crate::cli::Cli;

fn repository_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Parses `imap-sync …` (the program word may be a path) with the real command line.
fn assert_parses(words: &[&str], origin: &str) {
    assert!(
        words.first().is_some_and(|w| w.ends_with("imap-sync")),
        "{origin}: not an imap-sync command: {words:?}"
    );
    if let Err(error) = Cli::try_parse_from(words) {
        panic!("{origin}: `{}` does not parse:\n{error}", words.join(" "));
    }
}

/// A systemd unit as sections of (key, value) lines.
fn systemd_unit(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            sections.entry(name.to_owned()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not `Key=value`: {line}", number + 1));
        let section = current
            .clone()
            .unwrap_or_else(|| panic!("line {}: outside a section", number + 1));
        sections
            .entry(section)
            .or_default()
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    sections
}

fn value<'a>(
    unit: &'a BTreeMap<String, Vec<(String, String)>>,
    section: &str,
    key: &str,
) -> Vec<&'a str> {
    unit.get(section)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_systemd_service_runs_the_daemon_of_this_cli() {
    let service = systemd_unit(&repository_file("deploy/imap-sync.service"));
    let mut commands = value(&service, "Service", "ExecStartPre");
    commands.extend(value(&service, "Service", "ExecStart"));
    assert_eq!(commands.len(), 2);
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_parses(&words, "imap-sync.service");
    }
    assert!(commands[1].ends_with(" run"), "{}", commands[1]);
    assert_eq!(value(&service, "Service", "User"), ["imap-sync"]);
    assert_eq!(value(&service, "Service", "KillSignal"), ["SIGTERM"]);
    assert_eq!(value(&service, "Service", "Restart"), ["on-failure"]);
    assert_eq!(
        value(&service, "Install", "WantedBy"),
        ["multi-user.target"]
    );
}

#[test]
fn the_compose_file_parses_and_its_commands_are_this_cli() {
    let text = repository_file("deploy/docker-compose.yml");
    let documents = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let compose = &documents[0];
    let services = &compose["services"];
    for service in ["postgres", "greenmail", "imap-sync"] {
        assert!(!services[service].is_badvalue(), "service {service}");
    }
    let imap_sync = &services["imap-sync"];
    assert_eq!(
        imap_sync["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert_eq!(
        imap_sync["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    let script = imap_sync["command"][0].as_str().expect("a shell command");
    let mut found = 0;
    for piece in script.split(['&', ';', '|']) {
        let words: Vec<&str> = piece
            .split_whitespace()
            .skip_while(|w| ["while", "true", "do", "done", "exec"].contains(w))
            .collect();
        if words.first() == Some(&"imap-sync") {
            assert_parses(&words, "docker-compose.yml command");
            found += 1;
        }
    }
    assert_eq!(found, 2, "migrate, then the daemon: {script}");
    let environment = &imap_sync["environment"];
    assert!(
        environment["IMAP_SYNC__DATABASE_URL"]
            .as_str()
            .is_some_and(|url| url.starts_with("postgres://"))
    );
    // Listening beyond loopback, so the token must be there (the daemon refuses otherwise).
    let listen = environment["IMAP_SYNC__HTTP__LISTEN"].as_str().unwrap();
    let token = environment["IMAP_SYNC__HTTP__TOKEN"].as_str();
    crate::serve::check_listen(listen, token).expect("the compose file's listen and token");
    // The usage in the header: `docker compose … run --rm [-e X=Y] imap-sync ARGS`.
    let mut usage = 0;
    for line in text.lines().filter(|l| l.contains(" run --rm ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let service = words
            .iter()
            .position(|w| *w == "imap-sync")
            .expect("the service name");
        assert_parses(&words[service..], "docker-compose.yml usage");
        usage += 1;
    }
    assert!(
        usage >= 2,
        "the header shows how to add a user and a mailbox"
    );
}

#[test]
fn the_image_runs_this_cli_as_a_non_root_user() {
    let text = repository_file("deploy/Dockerfile");
    let instruction = |name: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(str::to_owned)
            .collect()
    };
    let stages = instruction("FROM");
    assert_eq!(stages.len(), 2, "a build stage and a slim run stage");
    let toolchain = repository_file("Cargo.toml")
        .lines()
        .find_map(|l| {
            l.strip_prefix("rust-version = ")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap();
    assert!(
        stages[0].starts_with(&format!("rust:{toolchain}")),
        "the build stage uses the workspace's toolchain {toolchain}: {}",
        stages[0]
    );
    let user = instruction("USER");
    assert_eq!(user.len(), 1);
    assert!(
        !["root", "0"].contains(&user[0].as_str()),
        "runs as non-root"
    );
    let json_words = |name: &str| -> Vec<String> {
        let line = instruction(name)
            .pop()
            .unwrap_or_else(|| panic!("no {name}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{name} {line}: {e}"))
    };
    let mut command = json_words("ENTRYPOINT");
    command.extend(json_words("CMD"));
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    assert_parses(&words, "Dockerfile ENTRYPOINT + CMD");
    for copied in instruction("COPY") {
        if let Some(source) = copied.split_whitespace().find(|w| w.starts_with("deploy/")) {
            repository_file(source);
        }
    }
}

#[test]
fn the_example_configuration_loads_and_every_key_is_known() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config.example.toml");
    let settings = crate::settings::Settings::load(Some(&path), None).expect("loads");
    assert!(settings.database_url.starts_with("postgres://"));
    assert_eq!(settings.sync_interval_minutes, 30);
    assert!(settings.smtp.is_some());

    let typo = std::env::temp_dir().join(format!("imap-sync-typo-{}.toml", std::process::id()));
    std::fs::write(&typo, "sync_intervall_minutes = 5\n").unwrap();
    let error = crate::settings::Settings::load(Some(&typo), None).unwrap_err();
    let _ = std::fs::remove_file(&typo);
    assert!(
        format!("{error:#}").contains("sync_intervall_minutes"),
        "the error names the unknown key: {error:#}"
    );
}

#[test]
fn the_readme_commands_parse() {
    let readme = repository_file("README.md");
    let mut checked = 0;
    let mut command = String::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" #").next().unwrap_or(line).trim_end();
        let continued = line.ends_with('\\');
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if continued {
            continue;
        }
        let words: Vec<&str> = command
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .collect();
        if words.first().is_some_and(|w| w.ends_with("imap-sync")) {
            assert_parses(&words, "README.md");
            checked += 1;
        }
        command.clear();
    }
    assert!(
        checked >= 5,
        "README shows the main commands ({checked} found)"
    );
}
