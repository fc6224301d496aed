//! What tells two messages' bytes apart, read from the bytes the server sent: a digest of the
//! header fields (without those servers add or rewrite on their own), the body's size, and,
//! when the body was downloaded, a digest of it. The model builds identities from it; a
//! headers-only fetch (a UIDVALIDITY re-key) yields the same header digest and body size as a
//! whole-message fetch of the same message, only no body digest.

use sha2::{Digest, Sha256};

/// Header fields a server or a local delivery agent adds or rewrites by itself (mbox and
/// Dovecot bookkeeping, mail clients' status lines): left out, so that one message stays one.
pub const VOLATILE_HEADERS: &[&str] = &[
    "x-uid",
    "status",
    "x-status",
    "x-keywords",
    "x-imapbase",
    "x-imap",
    "content-length",
    "lines",
    "x-mozilla-status",
    "x-mozilla-status2",
    "x-mozilla-keys",
];

/// The content of one message, as far as identity needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentKey {
    /// SHA-256 (first 12 bytes, hex) of the header fields in order, CRs dropped and each
    /// line's trailing space trimmed, without [`VOLATILE_HEADERS`].
    pub header_digest: String,
    /// Bytes after the header block.
    pub body_size: u64,
    /// SHA-256 (first 16 bytes, hex) of the bytes after the header block; `None` when only
    /// the header was fetched.
    pub body_digest: Option<String>,
}

/// The content key of `raw`: a whole message when `whole`, else its header block only, with
/// `size` (RFC822.SIZE) telling the body's size.
pub(crate) fn content_key(raw: &[u8], whole: bool, size: Option<u64>) -> ContentKey {
    let header_len = header_block_len(raw);
    let header = &raw[..header_len];
    let mut hasher = Sha256::new();
    for field in fields(header) {
        let name_end = memchr::memchr(b':', field).unwrap_or(field.len());
        let name = String::from_utf8_lossy(&field[..name_end])
            .trim()
            .to_ascii_lowercase();
        if VOLATILE_HEADERS.contains(&name.as_str()) {
            continue;
        }
        for line in field.split(|b| *b == b'\n') {
            let line: Vec<u8> = line.iter().copied().filter(|b| *b != b'\r').collect();
            let end = line
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(0, |last| last + 1);
            hasher.update(&line[..end]);
            hasher.update(b"\n");
        }
        hasher.update([0x1e]);
    }
    let header_digest = hex(&hasher.finalize()[..12]);
    let header_len = header_len as u64;
    if whole {
        let body = &raw[header.len()..];
        ContentKey {
            header_digest,
            body_size: body.len() as u64,
            body_digest: Some(hex(&Sha256::digest(body)[..16])),
        }
    } else {
        ContentKey {
            header_digest,
            body_size: size.unwrap_or(header_len).saturating_sub(header_len),
            body_digest: None,
        }
    }
}

/// Length of the header block including the empty line that ends it (CRLF or bare LF); the
/// whole input when there is none.
fn header_block_len(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    let mut from = 0;
    while let Some(offset) = memchr::memchr(b'\n', &raw[from..]) {
        let next = from + offset + 1;
        if raw[next..].starts_with(b"\r\n") {
            return next + 2;
        }
        if raw[next..].starts_with(b"\n") {
            return next + 1;
        }
        from = next;
    }
    raw.len()
}

/// The header fields of a header block: each with its folded continuation lines.
fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < header.len() {
        let line_end =
            memchr::memchr(b'\n', &header[index..]).map_or(header.len(), |o| index + o + 1);
        let continues = header
            .get(line_end)
            .is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continues {
            let field = &header[start..line_end];
            if field.iter().any(|b| !b.is_ascii_whitespace()) {
                fields.push(field);
            }
            start = line_end;
        }
        index = line_end;
    }
    fields
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: a@x\r\nSubject: one\r\n two\r\n\r\nbody\r\n";

    #[test]
    fn a_headers_only_fetch_gives_the_same_key_without_the_body_digest() {
        let whole = content_key(MESSAGE, true, Some(MESSAGE.len() as u64));
        let header_end = MESSAGE.len() - b"body\r\n".len();
        let headers = content_key(&MESSAGE[..header_end], false, Some(MESSAGE.len() as u64));
        assert_eq!(whole.header_digest, headers.header_digest);
        assert_eq!((whole.body_size, headers.body_size), (6, 6));
        assert!(whole.body_digest.is_some() && headers.body_digest.is_none());
    }

    #[test]
    fn bodies_and_headers_tell_messages_apart_but_volatile_headers_do_not() {
        let key = |raw: &[u8]| content_key(raw, true, None);
        let base = key(MESSAGE);
        assert_ne!(
            base,
            key(b"From: a@x\r\nSubject: one\r\n two\r\n\r\nbodY\r\n")
        );
        assert_ne!(base, key(b"From: a@x\r\nSubject: one two\r\n\r\nbody\r\n"));
        assert_eq!(
            base,
            key(b"From: a@x\r\nX-UID: 7\r\nSubject: one\r\n two\r\nStatus: RO\r\n\r\nbody\r\n")
        );
        assert_eq!(
            base.header_digest,
            key(b"From: a@x\nSubject: one\n two\n\nbody\r\n").header_digest
        );
        // Messages without any header differ by their bodies.
        assert_ne!(key(b"\r\nfirst"), key(b"\r\nsecond"));
        assert_eq!(key(b"no header at all").body_size, 0);
    }
}
