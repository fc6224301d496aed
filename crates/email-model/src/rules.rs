//! What the model accepts from a user, an API or a configuration file: flag names and the bounds
//! of every number a mailbox carries. Checked where values enter the store, so no caller can
//! write a value the sync would later choke on (docs/schema.md lists the rules).

use std::ops::RangeInclusive;

use crate::error::{Result, StoreError};

/// Days of mail a first sync takes: one day to a hundred years (beyond that date arithmetic
/// leaves the calendar, and no server holds older mail).
pub const FIRST_SYNC_DAYS: RangeInclusive<i32> = 1..=36_500;

/// Longest flag name the mirror stores (the connector sends nothing longer either).
pub const MAX_FLAG_LEN: usize = 128;

/// The system flags a client may set or clear, in their canonical spelling.
const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// Bytes a keyword (an IMAP atom) cannot hold besides controls, space and 8-bit bytes.
const KEYWORD_SPECIALS: &str = "(){%*\"\\]";

/// `value` if it lies in `range`, else [`StoreError::Invalid`] naming `field` and the range.
pub fn in_range<T>(field: &str, value: T, range: &RangeInclusive<T>) -> Result<T>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(StoreError::Invalid {
            field: field.to_owned(),
            reason: format!(
                "{value} is out of range: use {} to {}",
                range.start(),
                range.end()
            ),
        })
    }
}

/// Connection settings a connector can use: a host name or address (no spaces, controls or
/// URL punctuation, at most 253 bytes), a port other than 0, a login without line breaks.
pub fn imap_settings(imap: &crate::ImapSettings) -> Result<()> {
    let invalid = |field: &str, reason: &str| StoreError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let host_ok = !imap.host.is_empty()
        && imap.host.len() <= 253
        && imap
            .host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !host_ok {
        return Err(invalid(
            "host",
            "a host is a DNS name or an IP address (at most 253 characters, no spaces or punctuation)",
        ));
    }
    if imap.port == 0 {
        return Err(invalid(
            "port",
            "a port is 1 to 65535 (143 for STARTTLS, 993 for TLS)",
        ));
    }
    if imap.user.is_empty() || imap.user.len() > 512 || imap.user.chars().any(char::is_control) {
        return Err(invalid(
            "user",
            "a login has 1 to 512 characters and no control characters",
        ));
    }
    Ok(())
}

/// A certificate's SHA-256 fingerprint as a user writes it (`AB:CD:…` or 64 hex digits, any
/// case), in the stored spelling `AB:CD:…`.
pub fn tls_pin(text: &str) -> Result<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_uppercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid {
            field: "tls_pin".to_owned(),
            reason: "a SHA-256 fingerprint is 64 hex digits, with or without colons (the TLS error shows the server's)".to_owned(),
        });
    }
    Ok(hex
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// A flag as the host application may ask for it: a system flag (`\Seen`, any case; returned in
/// its canonical spelling) or a keyword atom (`$Important`, `NonJunk`).
pub fn flag_name(flag: &str) -> Result<String> {
    let invalid = |reason: &str| StoreError::Invalid {
        field: "flag".to_owned(),
        reason: format!("{:?}: {reason}", flag.chars().take(80).collect::<String>()),
    };
    if flag.is_empty() || flag.len() > MAX_FLAG_LEN {
        return Err(invalid("a flag has 1 to 128 bytes"));
    }
    if flag.starts_with('\\') {
        return SYSTEM_FLAGS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(flag))
            .map(|known| (*known).to_owned())
            .ok_or_else(|| {
                invalid("not a system flag a client may set (\\Seen, \\Answered, \\Flagged, \\Deleted, \\Draft)")
            });
    }
    let keyword = flag
        .chars()
        .all(|c| c.is_ascii_graphic() && !KEYWORD_SPECIALS.contains(c));
    if keyword {
        Ok(flag.to_owned())
    } else {
        Err(invalid(
            "a keyword is printable ASCII without spaces or any of ( ) { % * \" \\ ]",
        ))
    }
}

/// Makes every text of a message storable on both backends: PostgreSQL refuses NUL in text
/// (SQLite takes it), so each NUL becomes U+FFFD and the message gets a parse problem naming
/// the fields. Idempotent; the store runs it on every batch, so both backends hold the same rows
/// whoever built the message.
pub fn make_storable(email: &mut crate::NewEmail) {
    let mut touched: Vec<&'static str> = Vec::new();
    let mut clean = |field: &'static str, text: &mut String| {
        if text.contains('\0') {
            *text = text.replace('\0', "\u{FFFD}");
            if !touched.contains(&field) {
                touched.push(field);
            }
        }
    };
    let addresses = [
        ("from", email.from.iter_mut().collect::<Vec<_>>()),
        ("sender", email.sender.iter_mut().collect()),
        ("to", email.to.iter_mut().collect()),
        ("cc", email.cc.iter_mut().collect()),
        ("bcc", email.bcc.iter_mut().collect()),
        ("reply_to", email.reply_to.iter_mut().collect()),
    ];
    for (field, list) in addresses {
        for address in list {
            for part in [&mut address.name, &mut address.email]
                .into_iter()
                .flatten()
            {
                clean(field, part);
            }
        }
    }
    let texts = [
        ("message_id", &mut email.message_id),
        ("subject", &mut email.subject),
        ("in_reply_to", &mut email.in_reply_to),
        ("email_id", &mut email.email_id),
        ("body_text", &mut email.body_text),
        ("body_html", &mut email.body_html),
    ];
    for (field, text) in texts {
        if let Some(text) = text {
            clean(field, text);
        }
    }
    for reference in &mut email.references {
        clean("references", reference);
    }
    for flag in &mut email.flags {
        clean("flags", flag);
    }
    for problem in &mut email.parse_problems {
        clean("parse_problems", problem);
    }
    for attachment in &mut email.attachments {
        clean("attachments", &mut attachment.content_type);
        for text in [&mut attachment.name, &mut attachment.content_id]
            .into_iter()
            .flatten()
        {
            clean("attachments", text);
        }
    }
    if !touched.is_empty() {
        email.parse_problems.push(format!(
            "NUL bytes replaced with U+FFFD in {}",
            touched.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_and_system_flags_spelled_canonically() {
        assert_eq!(flag_name("\\seen").ok().as_deref(), Some("\\Seen"));
        assert_eq!(flag_name("$Important").ok().as_deref(), Some("$Important"));
        for bad in [
            "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen",
            "",
            "\\Recent",
            "a b",
            "ü",
            "a]",
        ] {
            assert!(
                matches!(flag_name(bad), Err(StoreError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nul_bytes_become_replacement_characters_once() {
        let mut email = crate::NewEmail {
            subject: Some("a\0b".into()),
            body_text: Some("\0".into()),
            ..crate::NewEmail::default()
        };
        make_storable(&mut email);
        make_storable(&mut email);
        assert_eq!(email.subject.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(
            email.parse_problems,
            ["NUL bytes replaced with U+FFFD in subject, body_text"]
        );
    }

    #[test]
    fn ranges_name_the_field() {
        let error = in_range("first_sync_days", 2_147_483_647, &FIRST_SYNC_DAYS).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("first_sync_days: 2147483647 is out of range: use 1 to 36500")
        );
    }
}
