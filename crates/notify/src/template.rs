//! The texts of the notices, from `templates/`, with their parameters filled in.

use chrono::{DateTime, Utc};

const SUBJECT: &str = include_str!("../templates/credential-failure.subject.txt");
const BODY: &str = include_str!("../templates/credential-failure.body.txt");

/// A notice's subject and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

/// The credential-failure notice for one mailbox.
pub fn render_credential_failure(
    mailbox_email: &str,
    imap_user: &str,
    imap_host: &str,
    reason: &str,
    opened_at: DateTime<Utc>,
) -> Rendered {
    let opened_at = opened_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let values = [
        ("mailbox_email", mailbox_email),
        ("imap_user", imap_user),
        ("imap_host", imap_host),
        ("reason", reason),
        ("opened_at", opened_at.as_str()),
    ];
    Rendered {
        subject: fill(SUBJECT, &values).trim().to_owned(),
        body: fill(BODY, &values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_parameter_is_filled() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 9, 5, 0).unwrap();
        let rendered =
            render_credential_failure("box@x", "login-x", "imap.x", "[AUTHENTICATIONFAILED]", at);
        assert_eq!(
            rendered.subject,
            "Mail sync stopped for box@x: the server refused its login"
        );
        assert!(rendered.body.contains(
            "since 2026-11-30 09:05 UTC the mail server imap.x refuses the login of login-x"
        ));
        assert!(rendered.body.contains("[AUTHENTICATIONFAILED]"));
        assert!(!rendered.body.contains('{'), "{}", rendered.body);
    }
}
