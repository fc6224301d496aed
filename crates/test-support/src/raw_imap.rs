//! A raw IMAP client for the rig's own checks and for seeding mailboxes: it sends commands as
//! written and returns the server's lines as received. The real client is `imap-connector`.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::dovecot::DovecotEndpoint;
use crate::error::RigError;
use crate::tls::{client_config_trusting, server_name};

trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// The server's answer to one command.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Untagged lines, literals inlined.
    pub untagged: Vec<String>,
    pub status: Status,
    /// The tagged line after the status word.
    pub text: String,
}

impl Reply {
    /// Fails unless the command ended in OK.
    pub fn ok(self) -> Result<Self, RigError> {
        match self.status {
            Status::Ok => Ok(self),
            _ => Err(RigError::Imap(format!("{:?} {}", self.status, self.text))),
        }
    }
}

/// Per-read timeout: a silent server fails a test instead of hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection, with the greeting already read.
pub struct RawImap {
    stream: BufReader<Box<dyn Transport>>,
    next_tag: u32,
    greeting: String,
}

impl std::fmt::Debug for RawImap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawImap")
            .field("greeting", &self.greeting)
            .finish_non_exhaustive()
    }
}

/// One message of [`RawImap::append_many`]: flags, internal date, RFC 5322 bytes.
pub type AppendItem<'a> = (&'a [&'a str], Option<DateTime<Utc>>, &'a [u8]);

impl RawImap {
    /// Plain TCP to `host:port`.
    pub async fn connect_plain(host: &str, port: u16) -> Result<Self, RigError> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(RigError::io(format!("connecting to {host}:{port}")))?;
        Self::with_greeting(Box::new(tcp)).await
    }

    /// Implicit TLS to `host:port`, trusting only the CA in `ca_file`.
    pub async fn connect_tls(host: &str, port: u16, ca_file: &Path) -> Result<Self, RigError> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(RigError::io(format!("connecting to {host}:{port}")))?;
        let tls = handshake(tcp, host, ca_file).await?;
        Self::with_greeting(Box::new(tls)).await
    }

    /// Plain connection to the endpoint's plain port.
    pub async fn connect(endpoint: &DovecotEndpoint) -> Result<Self, RigError> {
        Self::connect_plain(&endpoint.host, endpoint.plain_port).await
    }

    /// Connects to the endpoint and logs in as `user`.
    pub async fn login_to(endpoint: &DovecotEndpoint, user: &str) -> Result<Self, RigError> {
        let mut client = Self::connect(endpoint).await?;
        client.login(user, &endpoint.password).await?.ok()?;
        Ok(client)
    }

    async fn with_greeting(stream: Box<dyn Transport>) -> Result<Self, RigError> {
        let mut client = Self {
            stream: BufReader::new(stream),
            next_tag: 1,
            greeting: String::new(),
        };
        client.greeting = client.read_response_line().await?;
        if !client.greeting.starts_with("* OK") && !client.greeting.starts_with("* PREAUTH") {
            return Err(RigError::Imap(format!(
                "unexpected greeting {:?}",
                client.greeting
            )));
        }
        Ok(client)
    }

    /// The server's greeting line.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Sends STARTTLS and upgrades the connection, trusting only the CA in `ca_file`.
    pub async fn starttls(mut self, host: &str, ca_file: &Path) -> Result<Self, RigError> {
        self.command("STARTTLS").await?.ok()?;
        let plain = self.stream.into_inner();
        let tls = handshake(plain, host, ca_file).await?;
        // No greeting follows STARTTLS.
        Ok(Self {
            stream: BufReader::new(Box::new(tls)),
            next_tag: self.next_tag,
            greeting: self.greeting,
        })
    }

    /// Sends one command line (without tag) and reads until its tagged response.
    pub async fn command(&mut self, command: &str) -> Result<Reply, RigError> {
        let tag = self.send(command.as_bytes(), &[]).await?;
        self.read_reply(&tag).await
    }

    /// `LOGIN` with both arguments quoted.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Reply, RigError> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await
    }

    /// The capabilities the server lists now (they change at login).
    pub async fn capabilities(&mut self) -> Result<Vec<String>, RigError> {
        let reply = self.command("CAPABILITY").await?.ok()?;
        Ok(reply
            .untagged
            .iter()
            .filter_map(|line| line.strip_prefix("* CAPABILITY "))
            .flat_map(|caps| caps.split_whitespace().map(str::to_owned))
            .collect())
    }

    /// Every folder as the server lists it: the untagged lines of `LIST "" "*"`.
    pub async fn list_all(&mut self) -> Result<Vec<String>, RigError> {
        Ok(self.command(r#"LIST "" "*""#).await?.ok()?.untagged)
    }

    /// Creates a folder (with its parents, as Dovecot does).
    pub async fn create_folder(&mut self, name: &str) -> Result<(), RigError> {
        self.command(&format!("CREATE {}", quote(name)))
            .await?
            .ok()?;
        Ok(())
    }

    /// Appends a message with flags and an internal date; returns the APPENDUID UID when the
    /// server reports one. Uses a non-synchronizing literal (LITERAL+, which both rig servers
    /// offer).
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        internal_date: Option<DateTime<Utc>>,
        message: &[u8],
    ) -> Result<Option<u32>, RigError> {
        let mut command = format!("APPEND {} ({})", quote(folder), flags.join(" "));
        if let Some(date) = internal_date {
            command.push_str(&format!(" \"{}\"", date.format("%d-%b-%Y %H:%M:%S +0000")));
        }
        command.push_str(&format!(" {{{}+}}", message.len()));
        let tag = self.send(command.as_bytes(), message).await?;
        let reply = self.read_reply(&tag).await?.ok()?;
        Ok(parse_append_uid(&reply.text))
    }

    /// Appends several messages in one command (MULTIAPPEND, RFC 3502): the server stores them
    /// in one transaction, far faster than one APPEND each for large seeds.
    pub async fn append_many(
        &mut self,
        folder: &str,
        messages: &[AppendItem<'_>],
    ) -> Result<(), RigError> {
        fn message_head(flags: &[&str], date: Option<DateTime<Utc>>, size: usize) -> String {
            let mut head = format!("({})", flags.join(" "));
            if let Some(date) = date {
                head.push_str(&format!(" \"{}\"", date.format("%d-%b-%Y %H:%M:%S +0000")));
            }
            head.push_str(&format!(" {{{size}+}}"));
            head
        }
        let Some(((flags, date, first), rest)) = messages.split_first() else {
            return Ok(());
        };
        let line = format!(
            "APPEND {} {}",
            quote(folder),
            message_head(flags, *date, first.len())
        );
        let mut literal = first.to_vec();
        for (flags, date, raw) in rest {
            literal.push(b' ');
            literal.extend_from_slice(message_head(flags, *date, raw.len()).as_bytes());
            literal.extend_from_slice(b"\r\n");
            literal.extend_from_slice(raw);
        }
        let tag = self.send(line.as_bytes(), &literal).await?;
        self.read_reply(&tag).await?.ok()?;
        Ok(())
    }

    /// Sends LOGOUT and reads its answer.
    pub async fn logout(mut self) -> Result<(), RigError> {
        self.command("LOGOUT").await?;
        Ok(())
    }

    async fn send(&mut self, line: &[u8], literal: &[u8]) -> Result<String, RigError> {
        let tag = format!("r{}", self.next_tag);
        self.next_tag += 1;
        let mut bytes = Vec::with_capacity(tag.len() + line.len() + literal.len() + 5);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(b"\r\n");
        if !literal.is_empty() {
            bytes.extend_from_slice(literal);
            bytes.extend_from_slice(b"\r\n");
        }
        let stream = self.stream.get_mut();
        stream
            .write_all(&bytes)
            .await
            .map_err(RigError::io("writing an IMAP command"))?;
        stream.flush().await.map_err(RigError::io("flushing"))?;
        Ok(tag)
    }

    async fn read_reply(&mut self, tag: &str) -> Result<Reply, RigError> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_response_line().await?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let (word, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let status = match word.to_ascii_uppercase().as_str() {
                    "OK" => Status::Ok,
                    "NO" => Status::No,
                    "BAD" => Status::Bad,
                    _ => return Err(RigError::Imap(format!("malformed tagged line {line:?}"))),
                };
                return Ok(Reply {
                    untagged,
                    status,
                    text: text.to_owned(),
                });
            }
            if line.starts_with('+') {
                return Err(RigError::Imap(format!("unexpected continuation {line:?}")));
            }
            untagged.push(line);
        }
    }

    /// One response line with any literals it carries inlined, without the final CRLF.
    async fn read_response_line(&mut self) -> Result<String, RigError> {
        let mut line = Vec::new();
        loop {
            let mut chunk = Vec::new();
            let read =
                tokio::time::timeout(READ_TIMEOUT, self.stream.read_until(b'\n', &mut chunk))
                    .await
                    .map_err(|_| RigError::Imap(format!("no response within {READ_TIMEOUT:?}")))?
                    .map_err(RigError::io("reading an IMAP response"))?;
            if read == 0 {
                return Err(RigError::Imap("the server closed the connection".into()));
            }
            let body = chunk.strip_suffix(b"\r\n").unwrap_or(&chunk);
            line.extend_from_slice(body);
            match literal_length(body) {
                Some(length) => {
                    let mut literal = vec![0; length];
                    tokio::time::timeout(READ_TIMEOUT, self.stream.read_exact(&mut literal))
                        .await
                        .map_err(|_| RigError::Imap("literal not received in time".into()))?
                        .map_err(RigError::io("reading an IMAP literal"))?;
                    line.extend_from_slice(b"\r\n");
                    line.extend_from_slice(&literal);
                }
                None => return Ok(String::from_utf8_lossy(&line).into_owned()),
            }
        }
    }
}

async fn handshake<S>(
    stream: S,
    host: &str,
    ca_file: &Path,
) -> Result<tokio_rustls::client::TlsStream<S>, RigError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(client_config_trusting(ca_file)?);
    connector
        .connect(server_name(host)?, stream)
        .await
        .map_err(|e| RigError::Tls(format!("handshake with {host}: {e}")))
}

/// `{123}` or `{123+}` at the end of a line.
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An IMAP quoted string.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The UID from `[APPENDUID <validity> <uid>] ...`.
fn parse_append_uid(text: &str) -> Option<u32> {
    let rest = text.strip_prefix("[APPENDUID ")?;
    let mut words = rest.split([' ', ']']);
    let _validity = words.next()?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths_are_read_from_line_ends() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_length(b"a APPEND INBOX {7+}"), Some(7));
        assert_eq!(literal_length(b"* OK {not a literal"), None);
        assert_eq!(literal_length(b"* OK done"), None);
    }

    #[test]
    fn append_uid_is_parsed() {
        assert_eq!(
            parse_append_uid("[APPENDUID 1700000000 7] Append completed."),
            Some(7)
        );
        assert_eq!(parse_append_uid("Append completed."), None);
    }

    #[test]
    fn quoting_escapes_backslash_and_quote() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
