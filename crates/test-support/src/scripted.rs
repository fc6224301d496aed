//! A scripted IMAP server on loopback for what a real server will not do on demand: throttling
//! replies, a LOGIN refused for a reason other than the password, no STARTTLS, Gmail's X-GM-*
//! items, an empty FETCH, a connection dropped mid-command.
//!
//! A script is a greeting followed by steps: each step expects one client command (the tag
//! stripped; literals inlined after CRLF) and answers with lines in which `{tag}` stands for the
//! client's tag. The server accepts one connection, plays the script and reports the first
//! difference as a [`ScriptError`].

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How a step recognises the command it waits for.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The command after the tag, exactly (ASCII case-insensitive).
    Exactly(String),
    /// The command after the tag starts with this (ASCII case-insensitive).
    StartsWith(String),
    /// The whole line, tag included: for lines without a tag, such as a SASL response.
    WholeLine(String),
    /// Any command.
    Anything,
}

impl Expect {
    fn matches(&self, command: &str, line: &str) -> bool {
        match self {
            Self::WholeLine(expected) => line == expected,
            Self::Exactly(expected) => command.eq_ignore_ascii_case(expected),
            Self::StartsWith(prefix) => command
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
            Self::Anything => true,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Exchange {
        expect: Expect,
        replies: Vec<String>,
    },
    /// Closes the connection without a word, as a crashed or throttling server does.
    Hangup,
}

/// What the server will say and expect, in order.
#[derive(Debug, Clone)]
pub struct Script {
    greeting: String,
    steps: Vec<Step>,
}

impl Script {
    /// A script that opens with `greeting` (sent as written, CRLF appended).
    pub fn greeting(greeting: &str) -> Self {
        Self {
            greeting: greeting.to_owned(),
            steps: Vec::new(),
        }
    }

    /// Expects exactly `command` and answers with `replies`.
    pub fn expect(self, command: &str, replies: &[&str]) -> Self {
        self.step(Expect::Exactly(command.to_owned()), replies)
    }

    /// Expects a command starting with `prefix` and answers with `replies`.
    pub fn expect_prefix(self, prefix: &str, replies: &[&str]) -> Self {
        self.step(Expect::StartsWith(prefix.to_owned()), replies)
    }

    /// Expects exactly this line, tag included (a SASL response, an empty line), and answers
    /// with `replies`, in which `{tag}` is the tag of the last tagged command.
    pub fn expect_line(self, line: &str, replies: &[&str]) -> Self {
        self.step(Expect::WholeLine(line.to_owned()), replies)
    }

    /// Expects a command as described by `expect` and answers with `replies`.
    pub fn step(mut self, expect: Expect, replies: &[&str]) -> Self {
        self.steps.push(Step::Exchange {
            expect,
            replies: replies.iter().map(|r| (*r).to_owned()).collect(),
        });
        self
    }

    /// Closes the connection at this point.
    pub fn hangup(mut self) -> Self {
        self.steps.push(Step::Hangup);
        self
    }
}

/// Where the played script departed from what the client did.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("step {step}: expected {expected:?}, the client sent {got:?}")]
    Unexpected {
        step: usize,
        expected: Expect,
        got: String,
    },
    #[error("step {step}: the client closed the connection while {expected:?} was expected")]
    ClientGone { step: usize, expected: Expect },
    #[error("no client connected within {0:?}")]
    NoClient(Duration),
    #[error("the script did not finish within {0:?}")]
    Timeout(Duration),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The commands the client sent, tags stripped, in order.
pub type Transcript = Vec<String>;

/// A running scripted server.
#[derive(Debug)]
pub struct ScriptedImapServer {
    addr: SocketAddr,
    task: JoinHandle<Result<Transcript, ScriptError>>,
}

/// How long a script may take as a whole.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);

impl ScriptedImapServer {
    /// Listens on a free loopback port and plays `script` to the first client.
    pub async fn start(script: Script) -> Result<Self, ScriptError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let (socket, _) = tokio::time::timeout(SCRIPT_LIMIT, listener.accept())
                .await
                .map_err(|_| ScriptError::NoClient(SCRIPT_LIMIT))??;
            tokio::time::timeout(SCRIPT_LIMIT, play(socket, script))
                .await
                .map_err(|_| ScriptError::Timeout(SCRIPT_LIMIT))?
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the script to end; `Ok` holds what the client sent.
    pub async fn finish(self) -> Result<Transcript, ScriptError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(ScriptError::Io(std::io::Error::other(join.to_string()))),
        }
    }
}

async fn play(socket: tokio::net::TcpStream, script: Script) -> Result<Transcript, ScriptError> {
    let mut stream = BufReader::new(socket);
    let mut transcript = Vec::new();
    let mut last_tag = String::new();
    write_line(&mut stream, &script.greeting).await?;
    for (index, step) in script.steps.into_iter().enumerate() {
        let step_number = index + 1;
        let (expect, replies) = match step {
            Step::Hangup => {
                stream.get_mut().shutdown().await?;
                return Ok(transcript);
            }
            Step::Exchange { expect, replies } => (expect, replies),
        };
        let Some(line) = read_command(&mut stream).await? else {
            return Err(ScriptError::ClientGone {
                step: step_number,
                expected: expect,
            });
        };
        // A line without a space carries no tag: continuation data such as a SASL response.
        let command = match line.split_once(' ') {
            Some((tag, rest)) => {
                last_tag = tag.to_owned();
                rest.to_owned()
            }
            None => line.clone(),
        };
        transcript.push(command.clone());
        if !expect.matches(&command, &line) {
            return Err(ScriptError::Unexpected {
                step: step_number,
                expected: expect,
                got: line,
            });
        }
        for reply in replies {
            write_line(&mut stream, &reply.replace("{tag}", &last_tag)).await?;
        }
    }
    Ok(transcript)
}

async fn write_line(
    stream: &mut BufReader<tokio::net::TcpStream>,
    line: &str,
) -> Result<(), std::io::Error> {
    let socket = stream.get_mut();
    socket.write_all(line.as_bytes()).await?;
    socket.write_all(b"\r\n").await?;
    socket.flush().await
}

/// Reads one command line with its literals (answering `{n}` with a continuation); `None` at
/// EOF.
async fn read_command(
    stream: &mut BufReader<tokio::net::TcpStream>,
) -> Result<Option<String>, std::io::Error> {
    let mut command = String::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        command.push_str(line);
        let Some((synchronizing, length)) = trailing_literal(line) else {
            break;
        };
        if synchronizing {
            write_line(stream, "+ go ahead").await?;
        }
        let mut literal = vec![0; length];
        stream.read_exact(&mut literal).await?;
        command.push_str("\r\n");
        command.push_str(&String::from_utf8_lossy(&literal));
    }
    Ok(Some(command))
}

/// `(synchronizing, length)` of a literal announced at the end of a line.
fn trailing_literal(line: &str) -> Option<(bool, usize)> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let digits = &inner[open + 1..];
    match digits.strip_suffix('+') {
        Some(digits) => Some((false, digits.parse().ok()?)),
        None => Some((true, digits.parse().ok()?)),
    }
}
