//! Waiting for changes: IDLE where the server has it, a NOOP poll where it does not.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;

use crate::changes::{MailboxEvent, any_event};
use crate::connector::ImapConnector;
use crate::error::{ConnectorError, Result};
use crate::session::with_timeout;

/// RFC 2177: clients should re-issue IDLE at least every 29 minutes.
pub const MAX_IDLE: Duration = Duration::from_secs(29 * 60);

/// How the changes were learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitedVia {
    Idle,
    Poll,
}

/// What a wait returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    /// Empty when the wait ended by timeout or interrupt.
    pub events: Vec<MailboxEvent>,
    pub via: WaitedVia,
    pub interrupted: bool,
}

impl ImapConnector {
    /// Waits on the selected folder until the server reports a change, `timeout` passes (capped
    /// at 29 minutes), or `stop` completes. Uses IDLE when offered; otherwise sends NOOP every
    /// `poll_interval`.
    pub async fn wait_for_changes(
        &mut self,
        timeout: Duration,
        poll_interval: Duration,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<WaitOutcome> {
        let pending = self.take_events();
        if !pending.is_empty() {
            return Ok(WaitOutcome {
                events: pending,
                via: WaitedVia::Poll,
                interrupted: false,
            });
        }
        if self.has("IDLE").await? {
            self.idle(timeout.min(MAX_IDLE), stop).await
        } else {
            self.poll(timeout, poll_interval, stop).await
        }
    }

    async fn idle(
        &mut self,
        timeout: Duration,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<WaitOutcome> {
        let limit = self.config.command_timeout;
        let address = self.address.clone();
        let mut established = self
            .connection
            .take()
            .ok_or_else(|| ConnectorError::Protocol("not connected".into()))?;
        let mut handle = established.session.idle();
        let result: Result<(Vec<MailboxEvent>, bool)> = async {
            with_timeout(limit, "IDLE", handle.init())
                .await?
                .map_err(|e| crate::error::from_imap(e, &address, false))?;
            let (wait, interrupt) = handle.wait_with_timeout(timeout);
            tokio::pin!(wait);
            tokio::pin!(stop);
            let mut interrupt = Some(interrupt);
            let mut interrupted = false;
            let response = loop {
                tokio::select! {
                    response = &mut wait => break response,
                    () = &mut stop, if interrupt.is_some() => {
                        interrupted = true;
                        drop(interrupt.take());
                    }
                }
            };
            let events = match response.map_err(|e| crate::error::from_imap(e, &address, false))? {
                IdleResponse::NewData(data) => any_event(data.parsed()).into_iter().collect(),
                IdleResponse::Timeout | IdleResponse::ManualInterrupt => Vec::new(),
            };
            Ok((events, interrupted))
        }
        .await;
        let done = with_timeout(limit, "DONE", handle.done()).await;
        match done {
            Ok(Ok(session)) => {
                established.session = session;
                self.connection = Some(established);
            }
            // The session went with the failure; the next call reconnects.
            _ => self.selected = None,
        }
        let (events, interrupted) = result?;
        Ok(WaitOutcome {
            events,
            via: WaitedVia::Idle,
            interrupted,
        })
    }

    async fn poll(
        &mut self,
        timeout: Duration,
        poll_interval: Duration,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<WaitOutcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::pin!(stop);
        loop {
            let mut events = Vec::new();
            self.run("NOOP", |response| {
                events.extend(any_event(response));
                Ok(())
            })
            .await?;
            // `run` kept EXISTS/EXPUNGE/VANISHED as events too: take them once.
            self.take_events();
            if !events.is_empty() {
                return Ok(WaitOutcome {
                    events,
                    via: WaitedVia::Poll,
                    interrupted: false,
                });
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(WaitOutcome {
                    events,
                    via: WaitedVia::Poll,
                    interrupted: false,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(poll_interval.min(deadline - now)) => {}
                () = &mut stop => return Ok(WaitOutcome { events, via: WaitedVia::Poll, interrupted: true }),
            }
        }
    }
}
