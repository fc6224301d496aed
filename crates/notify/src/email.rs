//! The email channel: one message per recipient per episode, over SMTP with lettre.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::template::render_credential_failure;
use crate::{Notifier, NotifyError};

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text: only for a relay on loopback.
    None,
    Starttls,
    Tls,
}

/// SMTP settings; without them the email channel is off.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// The sender, e.g. `imap-sync <noreply@example.com>`.
    pub from: String,
    /// Limit for one delivery: a hung server must not hold the dispatcher.
    pub timeout: Duration,
}

/// Sends credential-failure notices by email.
#[derive(Debug)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailNotifier {
    pub fn new(settings: &SmtpSettings) -> Result<Self, NotifyError> {
        let builder = match settings.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| NotifyError::Delivery(e.to_string()))?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| NotifyError::Delivery(e.to_string()))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let from = settings
            .from
            .parse()
            .map_err(|e| NotifyError::Delivery(format!("sender {:?}: {e}", settings.from)))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl Notifier for EmailNotifier {
    fn channel(&self) -> &'static str {
        "email"
    }

    fn deliver<'a>(
        &'a self,
        entry: &'a email_model::OutboxEntry,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(async move {
            let rendered = render_credential_failure(
                &entry.mailbox_email,
                &entry.imap_user,
                &entry.imap_host,
                &entry.reason,
                entry.opened_at,
            );
            let to: Mailbox = entry.user_email.parse().map_err(|e| {
                NotifyError::Delivery(format!("recipient {:?}: {e}", entry.user_email))
            })?;
            let subject = if entry.reminder {
                format!("Reminder: {}", rendered.subject)
            } else {
                rendered.subject
            };
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(subject)
                .body(rendered.body)
                .map_err(|e| NotifyError::Delivery(e.to_string()))?;
            self.transport
                .send(message)
                .await
                .map_err(|e| NotifyError::Delivery(e.to_string()))?;
            Ok(())
        })
    }
}
