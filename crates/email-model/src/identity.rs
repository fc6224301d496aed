//! When two messages are the same email, and which thread an email belongs to.
//!
//! # Identity
//! Within one mailbox an email is identified by, in order of preference:
//! 1. a server-given id: Gmail's X-GM-MSGID (`gm:<id>`), or RFC 8474 EMAILID (`oid:<id>`);
//! 2. its Message-ID plus a digest of stable headers (`mid:<message-id>#<digest>`), so that two
//!    different messages reusing one Message-ID stay two;
//! 3. without a Message-ID, the digest alone (`dig:<digest>`).
//!
//! The digest is SHA-256 over the Date (as UTC seconds), the From address, the To addresses
//! (sorted) and the Subject, lowercased where case does not matter. The same message copied or
//! moved to another folder has the same headers, hence the same identity: it is one email with
//! two memberships.
//!
//! # Threads
//! An email joins the thread of any Message-ID it names (its own, In-Reply-To, References) that
//! is already known in the mailbox (the first in sort order when they are several, a fixed rule); else Gmail's
//! X-GM-THRID when present; else it starts a thread named after its own identity. Every id it
//! names is then recorded under that thread, so a parent that arrives after its reply joins the
//! reply's thread, and no email's thread id ever changes once given.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

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
}

/// The identity of an email within its mailbox (see the module documentation).
pub fn identity(input: &IdentityInput<'_>) -> String {
    if let Some(id) = input.gmail_message_id {
        return format!("gm:{id}");
    }
    if let Some(id) = input.email_id.filter(|id| !id.is_empty()) {
        return format!("oid:{id}");
    }
    let digest = header_digest(input);
    match input.message_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(message_id) => format!("mid:{}#{digest}", normalize_message_id(message_id)),
        None => format!("dig:{digest}"),
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
