//! Raw commands on an async-imap session, with what async-imap leaves out: a timeout on every
//! read and a tagged NO or BAD that is never taken for success.

use std::time::Duration;

use async_imap::imap_proto::{Response, Status};

use crate::error::{ConnectorError, Result, classify_refusal};
use crate::stream::BoxedStream;

pub(crate) type ImapSession = async_imap::Session<BoxedStream>;

/// Sends `command` and hands every response to `each`, the tagged OK last (so that its
/// response code, such as COPYUID or MODIFIED, can be read); `Ok` only when the tagged status is
/// OK. `limit` bounds each wait for the next response, so a long FETCH may
/// take longer in all as long as the server keeps talking.
pub(crate) async fn execute<F>(
    session: &mut ImapSession,
    command: &str,
    limit: Duration,
    address: &str,
    mut each: F,
) -> Result<()>
where
    F: FnMut(&Response<'_>) -> Result<()>,
{
    let operation = command_name(command);
    crate::command::check_command_line(command)?;
    tracing::trace!(command = %operation, "IMAP command");
    let tag = with_timeout(limit, &operation, session.run_command(command))
        .await?
        .map_err(|e| crate::error::from_imap(e, address, false))?;
    loop {
        let response = with_timeout(limit, &operation, session.read_response())
            .await?
            .map_err(|source| ConnectorError::Connection {
                address: address.to_owned(),
                source,
            })?
            .ok_or_else(|| ConnectorError::Connection {
                address: address.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    format!("connection closed during {operation}"),
                ),
            })?;
        if let Response::Done {
            tag: done_tag,
            status,
            outcome,
        } = response.parsed()
            && *done_tag == tag
        {
            let text = outcome_text(outcome);
            return match status {
                Status::Ok => each(response.parsed()),
                Status::No => Err(classify_refusal(&format!("{operation}: {text}"), false)),
                _ => Err(ConnectorError::Protocol(format!(
                    "{operation}: {status:?} {text}"
                ))),
            };
        }
        each(response.parsed())?;
    }
}

/// The response code (as the server wrote it, when imap-proto knows it) and text.
pub(crate) fn outcome_text(outcome: &async_imap::imap_proto::Outcome<'_>) -> String {
    let code = outcome
        .code
        .as_ref()
        .map(|c| format!("[{c:?}] "))
        .unwrap_or_default();
    format!("{code}{}", outcome.information.as_deref().unwrap_or(""))
}

/// Runs `future` with a time limit named after `operation`.
pub(crate) async fn with_timeout<T>(
    limit: Duration,
    operation: &str,
    future: impl Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| ConnectorError::Timeout {
            operation: operation.to_owned(),
            limit,
        })
}

/// `UID FETCH`, `SELECT`, … — never the arguments.
pub(crate) fn command_name(command: &str) -> String {
    let mut words = command.split_ascii_whitespace();
    match words.next() {
        Some(first) if first.eq_ignore_ascii_case("UID") => {
            format!(
                "UID {}",
                words.next().unwrap_or_default().to_ascii_uppercase()
            )
        }
        Some(first) => first.to_ascii_uppercase(),
        None => String::new(),
    }
}
