//! `imap-sync`: the command line of imap-sync.
//!
//! Architecture invariant: the binary only parses the command line, loads the configuration and
//! wires the library crates together; it holds no sync, IMAP or storage logic of its own.

use clap::Parser;

/// Mirror IMAP mailboxes into a relational database.
#[derive(Debug, Parser)]
#[command(name = "imap-sync", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
