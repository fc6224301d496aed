//! A fetched message, typed: the IMAP items, the headers imap-sync keeps, and on request the
//! parsed body. Broken mail yields what could be read plus a list of problems.

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};

/// A mailbox address as written in a header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Importance {
    Low,
    #[default]
    Normal,
    High,
}

/// The headers imap-sync keeps. Message ids are without angle brackets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub sender: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
    /// The `Date:` header, when it could be read.
    pub date: Option<DateTime<Utc>>,
    pub importance: Importance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    pub content_id: Option<String>,
    pub inline: bool,
    pub content: Vec<u8>,
}

/// What was downloaded of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Only the headers were asked for.
    HeadersOnly,
    /// Over the configured maximum: its headers were fetched, its body was not downloaded.
    TooLarge { size: u64, limit: u64 },
    Parsed {
        text: Option<String>,
        html: Option<String>,
        attachments: Vec<Attachment>,
    },
}

/// Something wrong with a message that did not stop it from being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseProblem {
    MissingMessageId,
    /// The `Date:` header as written, unreadable.
    BadDate(String),
    MissingDate,
    /// A part whose charset or transfer encoding could not be decoded.
    Undecodable {
        part: String,
    },
    /// A text part in a charset nobody knows; its bytes were read as UTF-8 or Latin-1.
    UnknownCharset {
        part: String,
        charset: String,
    },
    /// A multipart whose closing boundary never comes.
    UnterminatedMultipart {
        boundary: String,
    },
    /// Nothing could be parsed at all.
    Unparsable,
}

/// Gmail's own ids, when the server has X-GM-EXT-1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GmailIds {
    pub message_id: Option<u64>,
    pub thread_id: Option<u64>,
    pub labels: Vec<String>,
}

/// One message as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
    pub internal_date: Option<DateTime<Utc>>,
    /// RFC822.SIZE: the size on the server.
    pub size: Option<u64>,
    pub gmail: GmailIds,
    /// RFC 8474 EMAILID and THREADID, when the server has OBJECTID.
    pub email_id: Option<String>,
    pub thread_id: Option<String>,
    pub headers: Headers,
    pub body: Body,
    pub problems: Vec<ParseProblem>,
    /// What tells this message's bytes from another's (identity is built from it).
    pub content: crate::ContentKey,
}

/// Parses `raw` (a whole message, or only its header) into headers and, when `with_body`,
/// the text, HTML and attachments.
pub(crate) fn parse(raw: &[u8], with_body: bool) -> (Headers, Option<Body>, Vec<ParseProblem>) {
    let mut problems = Vec::new();
    let Some(message) = MessageParser::default().parse(raw) else {
        problems.push(ParseProblem::Unparsable);
        let body = with_body.then(|| Body::Parsed {
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            html: None,
            attachments: Vec::new(),
        });
        return (Headers::default(), body, problems);
    };

    let message_id = message.message_id().map(str::to_owned);
    if message_id.is_none() {
        problems.push(ParseProblem::MissingMessageId);
    }
    let date = message
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
    if date.is_none() {
        match message.header_raw("Date") {
            Some(raw_date) => problems.push(ParseProblem::BadDate(raw_date.trim().to_owned())),
            None => problems.push(ParseProblem::MissingDate),
        }
    }
    let headers = Headers {
        message_id,
        in_reply_to: text_list(message.in_reply_to()).into_iter().next(),
        references: text_list(message.references()),
        subject: message.subject().map(str::to_owned),
        from: addresses(message.from()),
        sender: addresses(message.sender()).into_iter().next(),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        bcc: addresses(message.bcc()),
        reply_to: addresses(message.reply_to()),
        date,
        importance: importance(
            message.header_raw("Importance"),
            message.header_raw("X-Priority"),
        ),
    };

    for (index, part) in message.parts.iter().enumerate() {
        if let Some(charset) = part
            .content_type()
            .filter(|ct| ct.ctype().eq_ignore_ascii_case("text"))
            .and_then(|ct| ct.attribute("charset"))
            && !known_charset(charset)
        {
            problems.push(ParseProblem::UnknownCharset {
                part: format!("part {index} ({})", content_type_of(part)),
                charset: charset.to_owned(),
            });
        }
        if part.is_encoding_problem {
            problems.push(ParseProblem::Undecodable {
                part: format!("part {index} ({})", content_type_of(part)),
            });
        }
        if let Some(boundary) = part
            .content_type()
            .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
            .and_then(|ct| ct.attribute("boundary"))
        {
            let closing = format!("--{boundary}--");
            let region = raw.get(part.offset_body as usize..).unwrap_or_default();
            if with_body && !contains(region, closing.as_bytes()) {
                problems.push(ParseProblem::UnterminatedMultipart {
                    boundary: boundary.to_owned(),
                });
            }
        }
    }

    let body = with_body.then(|| Body::Parsed {
        text: message.body_text(0).map(|t| t.into_owned()),
        html: html_body(&message),
        attachments: message
            .attachments()
            .map(|part| Attachment {
                name: part.attachment_name().map(str::to_owned),
                content_type: content_type_of(part),
                size: part.contents().len() as u64,
                content_id: part
                    .content_id()
                    .map(|id| id.trim_matches(['<', '>']).to_owned()),
                inline: part.content_disposition().is_some_and(|d| d.is_inline()),
                content: part.contents().to_vec(),
            })
            .collect(),
    });
    (headers, body, problems)
}

/// The HTML body, only when the message has one. mail-parser would otherwise build one from
/// the plain text: time and storage spent on nothing a reader lacks.
fn html_body(message: &mail_parser::Message<'_>) -> Option<String> {
    let has_html = message
        .html_body
        .first()
        .and_then(|&id| message.part(id))
        .is_some_and(|part| matches!(part.body, mail_parser::PartType::Html(_)));
    if has_html {
        message.body_html(0).map(|t| t.into_owned())
    } else {
        None
    }
}

fn known_charset(charset: &str) -> bool {
    let lower = charset.trim().to_ascii_lowercase();
    matches!(lower.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii")
        || mail_parser::decoders::charsets::map::charset_decoder(lower.as_bytes()).is_some()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "text/plain".to_owned(),
    }
}

fn text_list(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(text) => vec![text.to_string()],
        mail_parser::HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn addresses(value: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    value
        .map(|address| {
            address
                .iter()
                .map(|a| Address {
                    name: a.name().map(str::to_owned),
                    email: a.address().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Importance: high|low`, else `X-Priority: 1–2` (high) or `4–5` (low).
fn importance(importance: Option<&str>, priority: Option<&str>) -> Importance {
    if let Some(value) = importance {
        match value.trim().to_ascii_lowercase().as_str() {
            "high" => return Importance::High,
            "low" => return Importance::Low,
            _ => {}
        }
    }
    match priority.and_then(|p| p.trim().chars().next()) {
        Some('1' | '2') => Importance::High,
        Some('4' | '5') => Importance::Low,
        _ => Importance::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_id_or_valid_date_is_read_with_problems() {
        let raw = b"From: a@example.test\r\nDate: someday soon\r\nSubject: hi\r\n\r\nbody\r\n";
        let (headers, body, problems) = parse(raw, true);
        assert_eq!(headers.subject.as_deref(), Some("hi"));
        assert_eq!(headers.from[0].email.as_deref(), Some("a@example.test"));
        assert!(problems.contains(&ParseProblem::MissingMessageId));
        assert!(problems.contains(&ParseProblem::BadDate("someday soon".into())));
        assert!(matches!(body, Some(Body::Parsed { text: Some(t), .. }) if t.contains("body")));
    }

    #[test]
    fn importance_comes_from_either_header() {
        assert_eq!(importance(Some("High"), None), Importance::High);
        assert_eq!(importance(None, Some("5 (Lowest)")), Importance::Low);
        assert_eq!(importance(None, None), Importance::Normal);
    }
}
