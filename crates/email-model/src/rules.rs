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
    fn ranges_name_the_field() {
        let error = in_range("first_sync_days", 2_147_483_647, &FIRST_SYNC_DAYS).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("first_sync_days: 2147483647 is out of range: use 1 to 36500")
        );
    }
}
