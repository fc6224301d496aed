//! Command arguments checked before they are written.
//!
//! Whatever a caller passes — a flag from an API, a folder name a server listed, search text a
//! user typed — it becomes one argument of one command or the command is refused here. Two
//! layers: the builders ([`quoted`], [`flag_list`]) refuse values that have no safe form, and
//! [`check_command_line`], run on every command just before it is written, refuses any line
//! whose CR, LF or NUL would end the command early (so a reuser's hand-built criteria cannot
//! splice a second command either).

use crate::error::{ConnectorError, Result};

/// Longest flag or keyword we send. RFC 9051 sets no limit; servers do (Dovecot: 255), and a
/// host application has no use for longer ones.
pub const MAX_FLAG_LEN: usize = 128;

/// The system flags a client may store (`\Recent` is the server's own).
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// Bytes an atom may not hold (RFC 9051 `atom-specials`, plus `\` and `]`, which keywords
/// cannot carry either).
const ATOM_SPECIALS: &[u8] = b"(){ %*\"\\]";

fn refused(argument: &str, value: &str, reason: &str) -> ConnectorError {
    ConnectorError::InvalidArgument {
        argument: argument.to_owned(),
        value: value.chars().take(80).collect(),
        reason: reason.to_owned(),
    }
}

fn is_atom_byte(byte: u8) -> bool {
    (0x21..0x7f).contains(&byte) && !ATOM_SPECIALS.contains(&byte)
}

/// Why `flag` cannot be stored, or `None` when it is a system flag or a keyword atom.
pub fn flag_problem(flag: &str) -> Option<&'static str> {
    if flag.is_empty() {
        return Some("a flag cannot be empty");
    }
    if flag.len() > MAX_FLAG_LEN {
        return Some("a flag is at most 128 bytes");
    }
    if let Some(system) = flag.strip_prefix('\\') {
        return if SYSTEM_FLAGS
            .iter()
            .any(|known| known[1..].eq_ignore_ascii_case(system))
        {
            None
        } else {
            Some(
                "the only system flags a client may set are \\Seen, \\Answered, \\Flagged, \\Deleted and \\Draft",
            )
        };
    }
    if flag.bytes().all(is_atom_byte) {
        None
    } else {
        Some("a keyword is printable ASCII without space, ( ) { } % * \" \\ or ]")
    }
}

/// `(flag flag …)` for STORE, or an error naming the first flag that is not a flag.
pub(crate) fn flag_list(flags: &[&str]) -> Result<String> {
    for flag in flags {
        if let Some(reason) = flag_problem(flag) {
            return Err(refused("flag", flag, reason));
        }
    }
    Ok(format!("({})", flags.join(" ")))
}

/// An IMAP quoted string (RFC 9051 `quoted`): refused when it holds a byte a quoted string
/// cannot carry (NUL, CR, LF, or 8-bit text, which needs a literal).
pub(crate) fn quoted(argument: &str, text: &str) -> Result<String> {
    if let Some(bad) = text
        .bytes()
        .find(|b| matches!(b, 0 | b'\r' | b'\n') || *b > 0x7f)
    {
        let reason = match bad {
            0 => "it contains a NUL byte",
            b'\r' | b'\n' => "it contains a line break",
            _ => "it is not ASCII",
        };
        return Err(refused(argument, text, reason));
    }
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A folder's decoded full name as a command argument: modified UTF-7, quoted. Refused when it
/// holds a control character: no real folder has one, and servers echo the decoded name in their
/// answers (Dovecot's `NO Mailbox doesn't exist: <name>`), where a line break would end the
/// answer early and desynchronise the session.
pub(crate) fn folder(full_name: &str) -> Result<String> {
    if full_name.chars().any(char::is_control) {
        return Err(refused(
            "folder",
            full_name,
            "a folder name cannot contain control characters",
        ));
    }
    quoted("folder", &crate::utf7::encode(full_name))
}

/// Refuses a command line that the server would not read as exactly one command: a NUL
/// anywhere, a CR or LF outside a non-synchronizing literal (`{n+}` CRLF and n bytes), an
/// unterminated quoted string, or a backslash in a quoted string that escapes anything but `"`
/// and `\`.
pub(crate) fn check_command_line(command: &str) -> Result<()> {
    let bytes = command.as_bytes();
    let bad = |reason: &str| Err(refused("command", command, reason));
    let mut index = 0;
    let mut in_quote = false;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == 0 {
            return bad("it contains a NUL byte");
        }
        if in_quote {
            match byte {
                b'"' => in_quote = false,
                b'\\' => match bytes.get(index + 1) {
                    Some(b'"' | b'\\') => index += 1,
                    _ => return bad("a quoted string escapes a character other than \" or \\"),
                },
                b'\r' | b'\n' => return bad("a quoted string contains a line break"),
                _ => {}
            }
            index += 1;
            continue;
        }
        match byte {
            b'"' => in_quote = true,
            b'\r' | b'\n' => match literal_length(&bytes[..index]) {
                Some(length) if bytes[index..].starts_with(b"\r\n") => {
                    let start = index + 2;
                    let Some(end) = start.checked_add(length).filter(|end| *end <= bytes.len())
                    else {
                        return bad("a literal is longer than what follows it");
                    };
                    if bytes[start..end].contains(&0) {
                        return bad("a literal contains a NUL byte");
                    }
                    index = end;
                    continue;
                }
                _ => return bad("it contains a line break outside a literal"),
            },
            _ => {}
        }
        index += 1;
    }
    if in_quote {
        return bad("a quoted string is not closed");
    }
    Ok(())
}

/// The length announced by a `{n+}` that ends `before`.
fn literal_length(before: &[u8]) -> Option<usize> {
    let inner = before.strip_suffix(b"+}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The server's view of a quoted string: the text it stands for.
    fn unquote(token: &str) -> String {
        let inner = &token[1..token.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn the_injection_payload_is_refused_as_a_flag_and_as_a_line() {
        let payload = "\\Flagged)\r\nX1 DELETE Victim\r\nX2 NOOP (\\Seen";
        assert!(flag_list(&[payload]).is_err());
        let spliced = format!("UID STORE 1 +FLAGS.SILENT ({payload})");
        assert!(check_command_line(&spliced).is_err());
    }

    #[test]
    fn flags_follow_the_grammar() {
        for good in [
            "\\Seen",
            "\\flagged",
            "$Important",
            "NonJunk",
            "a.b-c_d",
            "$label1",
        ] {
            assert_eq!(flag_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "\\Recent",
            "\\*",
            "\\Bogus",
            "two words",
            "a(b",
            "x]",
            "é",
            "a\"b",
            "a\\b",
            "tab\there",
            "%",
            "*",
        ] {
            assert!(flag_problem(bad).is_some(), "{bad:?}");
        }
        assert!(flag_problem(&"k".repeat(MAX_FLAG_LEN)).is_none());
        assert!(flag_problem(&"k".repeat(MAX_FLAG_LEN + 1)).is_some());
    }

    #[test]
    fn literals_are_skipped_and_must_fit() {
        assert!(check_command_line("UID SEARCH CHARSET UTF-8 TEXT {4+}\r\nab\r\n").is_ok());
        assert!(check_command_line("UID SEARCH TEXT {9+}\r\nab").is_err());
        assert!(check_command_line("UID SEARCH TEXT {4}\r\nabcd").is_err());
        assert!(check_command_line("SELECT \"a {3+}\r\nabc\"").is_err());
        assert!(check_command_line("SELECT \"open").is_err());
        assert!(check_command_line("SELECT \"a\\x\"").is_err());
    }

    proptest! {
        #[test]
        fn any_accepted_flag_is_one_atom_in_one_command(flag in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            if let Ok(list) = flag_list(&[&flag]) {
                let command = format!("UID STORE 1:5 +FLAGS.SILENT {list}");
                prop_assert!(check_command_line(&command).is_ok());
                prop_assert!(!command.contains(['\r', '\n', '\0']));
                prop_assert_eq!(command.matches('(').count(), 1);
                prop_assert_eq!(command.matches(')').count(), 1);
            }
        }

        #[test]
        fn any_accepted_quoted_string_stands_for_itself(text in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            if let Ok(token) = quoted("folder", &text) {
                let command = format!("SELECT {token}");
                prop_assert!(check_command_line(&command).is_ok());
                prop_assert_eq!(unquote(&token), text);
            } else {
                prop_assert!(text.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n') || b > 0x7f));
            }
        }

        #[test]
        fn an_accepted_line_has_no_line_break_outside_its_literals(line in "[ -~\\r\\n\\x00{}+0-9\"\\\\]{0,60}") {
            if check_command_line(&line).is_ok() {
                // Strip every announced literal; what remains is one line.
                let mut rest = line.as_str();
                let mut outside = String::new();
                while let Some(at) = rest.find("\r\n") {
                    let length = literal_length(&rest.as_bytes()[..at]);
                    prop_assert!(length.is_some());
                    outside.push_str(&rest[..at]);
                    rest = &rest[at + 2 + length.unwrap_or_default()..];
                }
                outside.push_str(rest);
                prop_assert!(!outside.contains(['\r', '\n', '\0']));
            }
        }
    }
}
