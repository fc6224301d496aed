//! The byte stream under the IMAP session: wire byte counters at the bottom, TLS and DEFLATE
//! in between, and on top a tap that records the name of every command sent.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Any stream an IMAP session can run over.
pub(crate) trait SessionStream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> SessionStream for T {}

pub(crate) type BoxedStream = Box<dyn SessionStream>;

/// Bytes sent and received on the wire (after TLS and compression).
#[derive(Debug, Default)]
pub struct ByteCounters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl ByteCounters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Counts the bytes that pass through.
#[derive(Debug)]
pub(crate) struct Counting<S> {
    inner: S,
    counters: Arc<ByteCounters>,
}

impl<S> Counting<S> {
    pub(crate) fn new(inner: S, counters: Arc<ByteCounters>) -> Self {
        Self { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.counters
            .received
            .fetch_add(read as u64, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            self.counters
                .sent
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One command as sent: its name (`SELECT`, `UID FETCH`, …) and the extension keywords in it
/// (`CONDSTORE`, `CHANGEDSINCE`, …). Never its arguments: names of folders and secrets stay out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCommand {
    pub name: String,
    pub extensions: Vec<&'static str>,
}

/// Keywords that show a command relied on an extension.
const EXTENSION_KEYWORDS: &[&str] = &[
    "CONDSTORE",
    "QRESYNC",
    "CHANGEDSINCE",
    "UNCHANGEDSINCE",
    "VANISHED",
    "MODSEQ",
    "RETURN",
    "X-GM-MSGID",
    "X-GM-THRID",
    "X-GM-LABELS",
    "X-GM-RAW",
    "EMAILID",
    "THREADID",
    "CHARSET",
    "STATUS",
    "SPECIAL-USE",
];

/// The commands a connection sent, in order.
#[derive(Debug, Default)]
pub(crate) struct CommandLog {
    commands: Mutex<Vec<SentCommand>>,
}

impl CommandLog {
    pub(crate) fn count(&self) -> u64 {
        let commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        commands.len() as u64
    }

    pub(crate) fn commands(&self) -> Vec<SentCommand> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let (Some(_tag), Some(first)) = (words.next(), words.next()) else {
            return;
        };
        let first = first.to_ascii_uppercase();
        if !first.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return;
        }
        let name = if first == "UID" {
            match words.next() {
                Some(second) => format!("UID {}", second.to_ascii_uppercase()),
                None => first,
            }
        } else {
            first
        };
        // Arguments of LOGIN and AUTHENTICATE are never looked at.
        let extensions = if name == "LOGIN" || name == "AUTHENTICATE" {
            Vec::new()
        } else {
            let upper = text.to_ascii_uppercase();
            let mut found: Vec<&'static str> = upper
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter_map(|word| EXTENSION_KEYWORDS.iter().copied().find(|k| *k == word))
                // The command's own name is not an extension it relies on (STATUS).
                .filter(|keyword| !name.split(' ').any(|part| part == *keyword))
                .collect();
            found.dedup();
            found
        };
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SentCommand { name, extensions });
    }
}

/// Watches outgoing bytes and records each command's first line in a [`CommandLog`].
/// Literals are skipped; lines without a tag (SASL responses, `DONE`) are not commands.
#[derive(Debug)]
pub(crate) struct CommandTap<S> {
    inner: S,
    log: Arc<CommandLog>,
    /// Cleared when a compression layer goes on top: this tap would then see deflated bytes.
    active: Arc<AtomicBool>,
    line: Vec<u8>,
    literal_left: usize,
    /// The current line continues a command after a literal.
    continuation: bool,
}

/// Longest command line kept for the log; the rest is not needed to name a command.
const MAX_LOGGED_LINE: usize = 4096;

impl<S> CommandTap<S> {
    pub(crate) fn new(inner: S, log: Arc<CommandLog>, active: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            log,
            active,
            line: Vec::new(),
            literal_left: 0,
            continuation: false,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.literal_left > 0 {
                let skip = self.literal_left.min(bytes.len());
                self.literal_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            match bytes.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    self.push_line_bytes(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if !self.continuation {
                        self.log.record(line);
                    }
                    match literal_length(line) {
                        Some(length) => {
                            self.literal_left = length;
                            self.continuation = true;
                        }
                        None => self.continuation = false,
                    }
                }
                None => {
                    self.push_line_bytes(bytes);
                    bytes = &[];
                }
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        let room = MAX_LOGGED_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// `{n}` or `{n+}` at the end of a line.
pub(crate) fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl<S: AsyncRead + Unpin> AsyncRead for CommandTap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CommandTap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result
            && self.active.load(Ordering::Relaxed)
        {
            self.observe(&buf[..written]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap() -> (CommandTap<tokio::io::Sink>, Arc<CommandLog>) {
        let log = Arc::new(CommandLog::default());
        let tap = CommandTap::new(
            tokio::io::sink(),
            log.clone(),
            Arc::new(AtomicBool::new(true)),
        );
        (tap, log)
    }

    #[test]
    fn names_and_extensions_are_logged_but_not_arguments_or_literals() {
        let (mut tap, log) = tap();
        tap.observe(b"a1 LOGIN \"user\" \"CONDSTORE-secret\"\r\n");
        tap.observe(
            b"a2 SELECT \"INBOX\" (CONDSTORE)\r\na3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4)\r\n",
        );
        tap.observe(b"a4 APPEND INBOX {11+}\r\nx1 NOOP\r\nab\r\n");
        tap.observe(b"a5 AUTHENTICATE XOAUTH2\r\ndXNlcj1h\r\n");
        let names: Vec<(String, Vec<&str>)> = log
            .commands()
            .into_iter()
            .map(|c| (c.name, c.extensions))
            .collect();
        assert_eq!(
            names,
            [
                ("LOGIN".to_owned(), vec![]),
                ("SELECT".to_owned(), vec!["CONDSTORE"]),
                ("UID FETCH".to_owned(), vec!["CHANGEDSINCE"]),
                ("APPEND".to_owned(), vec![]),
                ("AUTHENTICATE".to_owned(), vec![]),
            ]
        );
    }

    #[test]
    fn a_command_split_across_writes_is_logged_once() {
        let (mut tap, log) = tap();
        tap.observe(b"a1 CAPA");
        tap.observe(b"BILITY\r");
        tap.observe(b"\n");
        assert_eq!(log.commands().len(), 1);
        assert_eq!(log.commands()[0].name, "CAPABILITY");
    }
}
