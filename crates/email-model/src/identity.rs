//! When two messages are the same email, and which thread an email belongs to.
//!
//! # Identity
//! Within one mailbox an email is identified by, in order of preference:
//! 1. a server-given id: Gmail's X-GM-MSGID (`gm:<id>`), or RFC 8474 EMAILID (`oid:<id>`);
//! 2. its content: `mid:<message-id>#<key>` with a Message-ID, `dig:<key>` without one, where
//!    the key is `h<header digest>.<body size>.<body digest>` — a digest of every header field
//!    but those servers add or rewrite themselves (`X-UID`, `Status`, `X-Keywords`, …), the
//!    body's size, and a digest of the body's bytes (`-` when the body was not downloaded: over
//!    the size limit). Two messages whose bytes differ are two emails; the same message copied
//!    or moved to another folder, or renumbered by a UIDVALIDITY change, is one email.
//!
//! A UIDVALIDITY re-key reads headers and sizes only, so it matches on the **header key** (the
//! identity without its body digest): a UID is re-keyed when its header key names exactly one
//! email and no other UID of the folder has that key; otherwise it is fetched whole and matched
//! by identity. Rows written before content keys existed keep their old identity (a digest of
//! Date, From, To and Subject) as their header key, and a re-key matches them by it.
//!
//! # Threads
//! An email joins the thread of any Message-ID it names (its own, In-Reply-To, References) that
//! is already known in the mailbox (the first in sort order when they are several, a fixed rule); else Gmail's
//! X-GM-THRID when present; else it starts a thread named after its own identity. Every id it
//! names is then recorded under that thread, so a parent that arrives after its reply joins the
//! reply's thread, and no email's thread id ever changes once given.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What tells a message's bytes from another's (computed by the connector from the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentKey {
    pub header_digest: String,
    pub body_size: u64,
    /// `None` when the body was not downloaded.
    pub body_digest: Option<String>,
}

/// The headers identity is made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityInput<'a> {
    pub message_id: Option<&'a str>,
    pub date: Option<DateTime<Utc>>,
    pub from: Option<&'a str>,
    pub to: &'a [&'a str],
    pub subject: Option<&'a str>,
    pub gmail_message_id: Option<u64>,
    pub email_id: Option<&'a str>,
    /// The message's content; without it (rows from before, a host's own code) the digest of
    /// Date, From, To and Subject stands in.
    pub content: Option<&'a ContentKey>,
}

/// The identity of an email within its mailbox (see the module documentation).
pub fn identity(input: &IdentityInput<'_>) -> String {
    keyed(input, true)
}

/// The identity without the body digest: what a headers-only fetch can match on.
pub fn header_key(input: &IdentityInput<'_>) -> String {
    keyed(input, false)
}

/// The identity as it was before content keys: how older rows are known.
pub fn legacy_identity(input: &IdentityInput<'_>) -> String {
    keyed(
        &IdentityInput {
            content: None,
            ..*input
        },
        true,
    )
}

fn keyed(input: &IdentityInput<'_>, with_body: bool) -> String {
    if let Some(id) = input.gmail_message_id {
        return format!("gm:{id}");
    }
    if let Some(id) = input.email_id.filter(|id| !id.is_empty()) {
        return format!("oid:{id}");
    }
    let key = match input.content {
        Some(content) if with_body => format!(
            "h{}.{}.{}",
            content.header_digest,
            content.body_size,
            content.body_digest.as_deref().unwrap_or("-")
        ),
        Some(content) => format!("h{}.{}", content.header_digest, content.body_size),
        None => header_digest(input),
    };
    match input.message_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(message_id) => format!("mid:{}#{key}", normalize_message_id(message_id)),
        None => format!("dig:{key}"),
    }
}

/// A Message-ID without angle brackets or surrounding space.
pub fn normalize_message_id(message_id: &str) -> String {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn header_digest(input: &IdentityInput<'_>) -> String {
    let mut to: Vec<String> = input.to.iter().map(|a| a.trim().to_lowercase()).collect();
    to.sort();
    let mut hasher = Sha256::new();
    let date = input
        .date
        .map(|d| d.timestamp().to_string())
        .unwrap_or_default();
    for part in [
        date.as_str(),
        &input.from.unwrap_or_default().trim().to_lowercase(),
        &to.join(","),
        input.subject.unwrap_or_default().trim(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The Message-IDs an email names, normalized and without duplicates: its own first, then
/// In-Reply-To, then References.
pub fn thread_keys(
    message_id: Option<&str>,
    in_reply_to: Option<&str>,
    references: &[String],
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for id in message_id
        .into_iter()
        .chain(in_reply_to)
        .chain(references.iter().map(String::as_str))
    {
        let id = normalize_message_id(id);
        if !id.is_empty() && !keys.contains(&id) {
            keys.push(id);
        }
    }
    keys
}

/// Chooses the thread of a new email from the threads already known for its keys.
pub fn choose_thread(known: &[String], gmail_thread_id: Option<u64>, identity: &str) -> String {
    if let Some(oldest) = known.iter().min() {
        return oldest.clone();
    }
    match gmail_thread_id {
        Some(id) => format!("gm:{id}"),
        None => format!("t:{identity}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn input<'a>(
        message_id: Option<&'a str>,
        subject: &'a str,
        to: &'a [&'a str],
    ) -> IdentityInput<'a> {
        IdentityInput {
            message_id,
            date: Some(Utc.with_ymd_and_hms(2026, 11, 3, 10, 0, 0).unwrap()),
            from: Some("Alice@Example.test"),
            to,
            subject: Some(subject),
            ..IdentityInput::default()
        }
    }

    #[test]
    fn the_same_message_has_the_same_identity_and_a_reused_message_id_does_not_merge() {
        let a = identity(&input(Some("<m1@x>"), "Report", &["b@x", "c@x"]));
        let same = identity(&input(Some("m1@x"), "Report", &["c@x", "B@x"]));
        let other = identity(&input(Some("<m1@x>"), "Something else", &["b@x", "c@x"]));
        assert_eq!(a, same);
        assert_ne!(a, other);
        assert!(a.starts_with("mid:m1@x#"));
    }

    #[test]
    fn server_ids_win_and_a_missing_message_id_falls_back_to_the_digest() {
        let mut gmail = input(Some("<m1@x>"), "Report", &[]);
        gmail.gmail_message_id = Some(42);
        assert_eq!(identity(&gmail), "gm:42");
        let mut object = input(None, "Report", &[]);
        object.email_id = Some("M6d9");
        assert_eq!(identity(&object), "oid:M6d9");
        assert!(identity(&input(None, "Report", &[])).starts_with("dig:"));
    }

    #[test]
    fn content_keys_tell_bodies_apart_and_header_keys_drop_the_body_digest() {
        let content = |body: &str| ContentKey {
            header_digest: "abc".into(),
            body_size: 4,
            body_digest: Some(body.into()),
        };
        let (one, two) = (content("d1"), content("d2"));
        let with = |content| IdentityInput {
            content: Some(content),
            ..input(None, "Same", &[])
        };
        assert_ne!(identity(&with(&one)), identity(&with(&two)));
        assert_eq!(identity(&with(&one)), "dig:habc.4.d1");
        assert_eq!(header_key(&with(&one)), header_key(&with(&two)));
        assert_eq!(header_key(&with(&one)), "dig:habc.4");
        assert_eq!(
            legacy_identity(&with(&one)),
            identity(&input(None, "Same", &[]))
        );
        let headers_only = ContentKey {
            body_digest: None,
            ..one.clone()
        };
        assert_eq!(identity(&with(&headers_only)), "dig:habc.4.-");
    }

    #[test]
    fn thread_keys_are_normalized_and_threads_prefer_the_oldest_known() {
        let keys = thread_keys(
            Some("<c@x>"),
            Some("<b@x>"),
            &["<a@x>".into(), "<b@x>".into()],
        );
        assert_eq!(keys, ["c@x", "b@x", "a@x"]);
        assert_eq!(
            choose_thread(&["t:2".into(), "t:1".into()], Some(7), "x"),
            "t:1"
        );
        assert_eq!(choose_thread(&[], Some(7), "x"), "gm:7");
        assert_eq!(choose_thread(&[], None, "mid:a#1"), "t:mid:a#1");
    }
}
