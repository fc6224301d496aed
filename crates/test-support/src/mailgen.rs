//! One deterministic generator of realistic mail, shared by the tests, the demo and the
//! benchmarks: sizes 2–60 KB (mean about 15 KB), plain, alternative and mixed multipart
//! messages, attachments (some with RFC 2231 names), RFC 2047 encoded words, threads and dates
//! spread over a given period. The same seed gives the same bytes on every machine and every
//! Rust version: the random source is our own SplitMix64, not a library's.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};

/// What to generate.
#[derive(Debug, Clone)]
pub struct MailGeneratorConfig {
    pub seed: u64,
    /// Dates fall in `[period_start, period_end]`.
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Domain of the Message-IDs and of the generated addresses.
    pub domain: String,
}

impl MailGeneratorConfig {
    /// Dates over the `days` days before `end`.
    pub fn over_days_before(seed: u64, end: DateTime<Utc>, days: i64) -> Self {
        Self {
            seed,
            period_start: end - Duration::days(days),
            period_end: end,
            domain: "example.test".to_owned(),
        }
    }
}

/// One generated message.
#[derive(Debug, Clone)]
pub struct GeneratedMessage {
    /// The RFC 5322 bytes, CRLF line ends.
    pub raw: Vec<u8>,
    /// With angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// The subject as a reader sees it (decoded).
    pub subject: String,
    /// The `Date:` header.
    pub date: DateTime<Utc>,
    /// When the server received it: a little after `date`.
    pub internal_date: DateTime<Utc>,
    /// IMAP system flags to append it with.
    pub flags: Vec<&'static str>,
    /// File names of the attachments, decoded.
    pub attachment_names: Vec<String>,
}

/// An endless, deterministic stream of messages.
#[derive(Debug)]
pub struct MailGenerator {
    config: MailGeneratorConfig,
    random: SplitMix64,
    index: u64,
    /// Recent messages that a new one may answer; bounded so memory stays flat.
    recent: Vec<ThreadEntry>,
}

#[derive(Debug, Clone)]
struct ThreadEntry {
    message_id: String,
    references: String,
    subject: String,
    date: DateTime<Utc>,
}

const RECENT_LIMIT: usize = 64;
const MIN_SIZE: usize = 2 * 1024;
const MAX_SIZE: usize = 60 * 1024;

const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice"),
    ("Bob Dupont", "bob"),
    ("Jürgen Müller", "juergen"),
    ("Zoë Ångström", "zoe"),
    ("Ольга Петрова", "olga"),
    ("李雷", "li.lei"),
    ("Carlos Núñez", "carlos"),
    ("Support Team", "support"),
    ("Fatima Zahra", "fatima"),
    ("Dmitri O'Neil", "dmitri"),
];

const WORDS: &[&str] = &[
    "invoice",
    "meeting",
    "project",
    "deadline",
    "review",
    "budget",
    "customer",
    "report",
    "quarterly",
    "update",
    "schedule",
    "contract",
    "proposal",
    "feedback",
    "shipment",
    "order",
    "account",
    "renewal",
    "support",
    "ticket",
    "release",
    "roadmap",
    "agenda",
    "minutes",
    "the",
    "a",
    "we",
    "please",
    "find",
    "attached",
    "regarding",
    "our",
    "your",
    "next",
    "week",
    "thanks",
    "for",
    "and",
    "to",
    "of",
    "in",
    "on",
    "with",
    "by",
    "from",
    "about",
    "is",
    "are",
    "will",
    "can",
    "should",
    "have",
    "been",
    "this",
    "that",
    "it",
    "as",
    "at",
    "be",
    "not",
];

const ACCENTED_WORDS: &[&str] = &[
    "Grüße",
    "café",
    "résumé",
    "Überweisung",
    "счёт",
    "会议",
    "niño",
];

const ATTACHMENTS: &[(&str, &str)] = &[
    ("report.pdf", "application/pdf"),
    ("photo.jpg", "image/jpeg"),
    ("data.csv", "text/csv"),
    (
        "slides.pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("résumé.pdf", "application/pdf"),
    (
        "Übersicht 2026.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
];

impl MailGenerator {
    pub fn new(config: MailGeneratorConfig) -> Self {
        let random = SplitMix64(config.seed);
        Self {
            config,
            random,
            index: 0,
            recent: Vec::new(),
        }
    }

    /// The next message.
    pub fn next_message(&mut self) -> GeneratedMessage {
        self.index += 1;
        let message_id = format!(
            "<gen-{:x}-{}@{}>",
            self.config.seed, self.index, self.config.domain
        );
        let parent = (!self.recent.is_empty() && self.random.chance(0.3)).then(|| {
            let pick = self.random.below(self.recent.len() as u64) as usize;
            self.recent[pick].clone()
        });
        let date = match &parent {
            Some(parent) => {
                let later =
                    parent.date + Duration::minutes(5 + self.random.below(3 * 24 * 60) as i64);
                later.min(self.config.period_end)
            }
            None => self.random_date(),
        };
        let subject = match &parent {
            Some(parent) if parent.subject.starts_with("Re: ") => parent.subject.clone(),
            Some(parent) => format!("Re: {}", parent.subject),
            None => self.subject(),
        };
        let (in_reply_to, references) = match &parent {
            Some(parent) => (
                Some(parent.message_id.clone()),
                format!("{} {}", parent.references, parent.message_id)
                    .trim()
                    .to_owned(),
            ),
            None => (None, String::new()),
        };
        let target_size = self.target_size();
        let from = self.person();
        let to = self.person();
        let mut headers = Vec::new();
        headers.push(format!("From: {}", self.address(from)));
        headers.push(format!("To: {}", self.address(to)));
        if self.random.chance(0.2) {
            let cc = self.person();
            headers.push(format!("Cc: {}", self.address(cc)));
        }
        headers.push(format!("Subject: {}", encode_header_text(&subject)));
        headers.push(format!(
            "Date: {}",
            date.format("%a, %d %b %Y %H:%M:%S +0000")
        ));
        headers.push(format!("Message-ID: {message_id}"));
        if let Some(parent_id) = &in_reply_to {
            headers.push(format!("In-Reply-To: {parent_id}"));
            headers.push(format!("References: {references}"));
        }
        headers.push("MIME-Version: 1.0".to_owned());

        // What the body may take so that the whole message lands near the target size.
        let budget =
            target_size.saturating_sub(headers.iter().map(|h| h.len() + 2).sum::<usize>() + 60);
        let shape = self.random.below(100);
        let mut attachment_names = Vec::new();
        let body = if shape < 40 {
            let text = self.text(budget);
            headers.push("Content-Type: text/plain; charset=utf-8".to_owned());
            headers.push("Content-Transfer-Encoding: quoted-printable".to_owned());
            quoted_printable(&text)
        } else if shape < 75 {
            let (content_type, body) = self.alternative(budget.saturating_sub(400) / 2);
            headers.push(content_type);
            body
        } else {
            let boundary = format!("mixed-{:x}", self.random.next_u64());
            let text_budget = (budget / 5).max(600);
            let (inner_type, inner_body) = self.alternative(text_budget / 2);
            let mut body = format!(
                "This is a multi-part message in MIME format.\r\n--{boundary}\r\n{inner_type}\r\n\r\n{inner_body}\r\n"
            );
            let count = 1 + self.random.below(2) as usize;
            let attachment_budget = budget.saturating_sub(text_budget + 700) / count;
            for _ in 0..count {
                let (name, content_type) =
                    ATTACHMENTS[self.random.below(ATTACHMENTS.len() as u64) as usize];
                attachment_names.push(name.to_owned());
                body.push_str(&format!("--{boundary}\r\n"));
                body.push_str(&attachment_headers(name, content_type));
                body.push_str("\r\n");
                // base64 grows data by a third, and its 76-column lines add 2 bytes in 78: size
                // the raw bytes so the encoded part fits the budget.
                let raw_len = (attachment_budget * 3 * 76 / (4 * 78)).max(64);
                body.push_str(&base64_lines(&self.random.bytes(raw_len)));
            }
            body.push_str(&format!("--{boundary}--\r\n"));
            headers.push(format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\""
            ));
            body
        };

        let mut raw = headers.join("\r\n").into_bytes();
        raw.extend_from_slice(b"\r\n\r\n");
        raw.extend_from_slice(body.as_bytes());

        let internal_date = (date + Duration::seconds(1 + self.random.below(300) as i64))
            .min(self.config.period_end);
        let mut flags = Vec::new();
        if self.random.chance(0.7) {
            flags.push("\\Seen");
        }
        if self.random.chance(0.1) {
            flags.push("\\Flagged");
        }
        if in_reply_to.is_none() && self.random.chance(0.05) {
            flags.push("\\Answered");
        }

        let entry = ThreadEntry {
            message_id: message_id.clone(),
            references,
            subject: subject.clone(),
            date,
        };
        if self.recent.len() == RECENT_LIMIT {
            let evict = self.random.below(RECENT_LIMIT as u64) as usize;
            self.recent[evict] = entry;
        } else {
            self.recent.push(entry);
        }

        GeneratedMessage {
            raw,
            message_id,
            in_reply_to,
            subject,
            date,
            internal_date,
            flags,
            attachment_names,
        }
    }

    fn random_date(&mut self) -> DateTime<Utc> {
        let span = (self.config.period_end - self.config.period_start)
            .num_seconds()
            .max(1);
        self.config.period_start + Duration::seconds(self.random.below(span as u64) as i64)
    }

    /// Sizes from 2 to 60 KB, most of them small: `u^3.5` has mean 1/4.5, so the mean is
    /// about 2 + 58/4.5 ≈ 15 KB. The target keeps clear of both ends by the few KB that MIME
    /// overhead and quoted-printable add or take.
    fn target_size(&mut self) -> usize {
        let (low, high) = (MIN_SIZE + 200, MAX_SIZE - 4608);
        let u = self.random.unit();
        low + ((high - low) as f64 * u.powf(3.5)) as usize
    }

    fn person(&mut self) -> (&'static str, &'static str) {
        PEOPLE[self.random.below(PEOPLE.len() as u64) as usize]
    }

    fn address(&self, (name, local): (&str, &str)) -> String {
        format!(
            "{} <{local}@{}>",
            encode_display_name(name),
            self.config.domain
        )
    }

    fn subject(&mut self) -> String {
        let count = 3 + self.random.below(6) as usize;
        let mut words: Vec<&str> = (0..count)
            .map(|_| WORDS[self.random.below(24) as usize])
            .collect();
        if self.random.chance(0.3) {
            let accented = ACCENTED_WORDS[self.random.below(ACCENTED_WORDS.len() as u64) as usize];
            words.insert(self.random.below(words.len() as u64) as usize, accented);
        }
        let mut subject = words.join(" ");
        if let Some(first) = subject.get(..1) {
            subject = first.to_uppercase() + &subject[1..];
        }
        subject
    }

    /// Roughly `size` bytes of paragraphs, lines of at most 72 characters.
    fn text(&mut self, size: usize) -> String {
        let size = size.max(100);
        let mut text = String::with_capacity(size + 80);
        let mut line_len = 0;
        while text.len() < size {
            let word = if self.random.chance(0.03) {
                ACCENTED_WORDS[self.random.below(ACCENTED_WORDS.len() as u64) as usize]
            } else {
                WORDS[self.random.below(WORDS.len() as u64) as usize]
            };
            if line_len + word.len() + 1 > 72 {
                text.push_str("\r\n");
                line_len = 0;
                if self.random.chance(0.15) {
                    text.push_str("\r\n");
                }
            } else if line_len > 0 {
                text.push(' ');
                line_len += 1;
            }
            text.push_str(word);
            line_len += word.chars().count();
        }
        text.push_str("\r\n");
        text
    }

    /// A multipart/alternative of text and HTML of about `size` bytes each.
    fn alternative(&mut self, size: usize) -> (String, String) {
        let boundary = format!("alt-{:x}", self.random.next_u64());
        let text = self.text(size);
        let html = format!(
            "<html><body><p>{}</p></body></html>\r\n",
            text.replace("&", "&amp;")
                .replace("<", "&lt;")
                .replace("\r\n\r\n", "</p><p>")
        );
        let body = format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n--{boundary}--\r\n",
            quoted_printable(&text),
            quoted_printable(&html),
        );
        (
            format!("Content-Type: multipart/alternative; boundary=\"{boundary}\""),
            body,
        )
    }
}

impl Iterator for MailGenerator {
    type Item = GeneratedMessage;

    fn next(&mut self) -> Option<GeneratedMessage> {
        Some(self.next_message())
    }
}

fn attachment_headers(name: &str, content_type: &str) -> String {
    let disposition = if name.is_ascii() {
        format!("attachment; filename=\"{name}\"")
    } else {
        // RFC 2231: percent-encoded UTF-8.
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("attachment; filename*=UTF-8''{encoded}")
    };
    format!(
        "Content-Type: {content_type}; name=\"{}\"\r\nContent-Disposition: {disposition}\r\nContent-Transfer-Encoding: base64\r\n",
        encode_header_text(name)
    )
}

/// RFC 2047 `B` encoding when the text is not plain ASCII.
fn encode_header_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }
}

fn encode_display_name(name: &str) -> String {
    if name.is_ascii() {
        format!("\"{}\"", name.replace('"', "\\\""))
    } else {
        encode_header_text(name)
    }
}

fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045) of CRLF-separated text, lines kept under 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split("\r\n") {
        let mut width = 0;
        for byte in line.bytes() {
            let piece = if byte == b'=' || !(32..=126).contains(&byte) {
                format!("={byte:02X}")
            } else {
                (byte as char).to_string()
            };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out.truncate(out.len() - 2);
    out
}

/// SplitMix64: tiny, fast, and fixed forever, so generated mail (and generated test scenarios)
/// never change under us.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (0 for a bound of 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn generator(seed: u64) -> MailGenerator {
        let end = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        MailGenerator::new(MailGeneratorConfig::over_days_before(seed, end, 300))
    }

    #[test]
    fn same_seed_gives_the_same_bytes() {
        let first: Vec<Vec<u8>> = generator(7).take(50).map(|m| m.raw).collect();
        let second: Vec<Vec<u8>> = generator(7).take(50).map(|m| m.raw).collect();
        assert_eq!(first, second);
        let other: Vec<Vec<u8>> = generator(8).take(50).map(|m| m.raw).collect();
        assert_ne!(first, other);
    }

    #[test]
    fn sizes_dates_and_shapes_are_realistic() {
        let config = generator(1).config.clone();
        let messages: Vec<GeneratedMessage> = generator(1).take(2000).collect();
        let sizes: Vec<usize> = messages.iter().map(|m| m.raw.len()).collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!(
            sizes.iter().all(|s| (MIN_SIZE..=MAX_SIZE).contains(s)),
            "sizes {:?}",
            sizes.iter().minmax()
        );
        assert!((12 * 1024..=18 * 1024).contains(&mean), "mean size {mean}");
        assert!(
            messages
                .iter()
                .all(|m| m.date >= config.period_start && m.internal_date <= config.period_end)
        );
        let replies = messages.iter().filter(|m| m.in_reply_to.is_some()).count();
        let with_attachments = messages
            .iter()
            .filter(|m| !m.attachment_names.is_empty())
            .count();
        let encoded = messages
            .iter()
            .filter(|m| m.raw.windows(10).any(|w| w == b"=?UTF-8?B?"))
            .count();
        assert!(
            replies > 300 && with_attachments > 300 && encoded > 300,
            "{replies} {with_attachments} {encoded}"
        );
        let ids: std::collections::HashSet<&str> =
            messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids.len(), messages.len());
    }

    #[test]
    fn quoted_printable_escapes_and_wraps() {
        let encoded = quoted_printable(&format!("a=b café {}", "x".repeat(100)));
        assert!(encoded.starts_with("a=3Db caf=C3=A9 "));
        assert!(encoded.split("\r\n").all(|line| line.len() <= 76));
    }

    trait MinMax {
        fn minmax(self) -> (usize, usize);
    }
    impl<'a, I: Iterator<Item = &'a usize>> MinMax for I {
        fn minmax(self) -> (usize, usize) {
            self.fold((usize::MAX, 0), |(lo, hi), s| (lo.min(*s), hi.max(*s)))
        }
    }
}
