//! `imap-connector`: everything imap-sync says to an IMAP server.
//!
//! It owns the connection (plain, STARTTLS, implicit TLS), authentication, capabilities, folders,
//! search and streaming fetch, and the MIME parsing of what it fetches into its own message type.
//! Every workaround for a trap of the underlying IMAP library lives here and nowhere else.
//!
//! Architecture invariant: this crate depends on no other crate of the workspace. It knows no
//! database and no sync policy, so it can be reused alone as an IMAP library.
