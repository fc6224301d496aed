//! What can go wrong talking to an IMAP server, typed so that callers can branch: back-off and
//! credential notifications depend on [`ConnectorError::InvalidCredentials`] being exact.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The server refused the user name and password (or token): `[AUTHENTICATIONFAILED]`,
    /// `[AUTHORIZATIONFAILED]`, `[EXPIRED]`, or a NO to LOGIN without another reason.
    #[error("{message}")]
    InvalidCredentials { message: String },
    /// The server refused the login for a reason that is not the password: `[UNAVAILABLE]`,
    /// `[LIMIT]`, `[INUSE]`, too many connections…
    #[error(
        "the server refused the login for a reason other than the password ([{code}] {message}); imap-sync tries again later"
    )]
    LoginRefused { code: String, message: String },
    /// The server asks us to slow down (Gmail `[THROTTLED]`, Office 365 "Request is throttled").
    #[error("the server asks to slow down ({message}); imap-sync backs off and tries again")]
    Throttled { message: String },
    /// DNS, connection refused or reset, connection lost.
    #[error("could not talk to the IMAP server at {address}: {source}")]
    Connection {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// TLS handshake or certificate failure, or STARTTLS not offered.
    #[error("{0}")]
    Tls(String),
    /// No answer in time.
    #[error("the IMAP server did not answer {operation} within {limit:?}")]
    Timeout { operation: String, limit: Duration },
    /// BAD, a NO where OK was needed, or an answer we cannot parse.
    #[error("the IMAP server answered unexpectedly: {0}")]
    Protocol(String),
    /// The OAuth2 token endpoint failed for a reason that may pass (a refused refresh is
    /// [`ConnectorError::InvalidCredentials`]).
    #[error("the OAuth2 token endpoint failed ({0}); imap-sync tries again later")]
    TokenEndpoint(String),
    /// The connect policy refuses every address the host resolves to (nothing was sent).
    #[error("{0}")]
    Refused(String),
    /// A value that would not be exactly one argument of one command (a flag with a space, a
    /// name with a line break…): nothing was sent.
    #[error("refused to send {argument} {value:?} to the IMAP server: {reason}")]
    InvalidArgument {
        argument: String,
        value: String,
        reason: String,
    },
    #[error("the folder {0} does not exist on the server")]
    FolderNotFound(String),
    #[error("the folder {0} cannot be opened (it only holds other folders)")]
    FolderNotSelectable(String),
}

pub type Result<T> = std::result::Result<T, ConnectorError>;

/// The words of a server's answer: async-imap hands a NO or BAD over as
/// `code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")`; this is the
/// text inside (the response code kept), or the input when it has no such shape.
pub(crate) fn server_words(raw: &str) -> String {
    let Some(start) = raw.find("info: Some(\"") else {
        return raw.trim().to_owned();
    };
    let quoted = &raw[start + "info: Some(\"".len()..];
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.extend(chars.next()),
            '"' => break,
            c => text.push(c),
        }
    }
    text.trim().to_owned()
}

/// Sorts a server's refusal text into the error a caller can act on.
pub(crate) fn classify_refusal(text: &str, during_login: bool) -> ConnectorError {
    let message = server_words(text);
    let upper = message.to_ascii_uppercase();
    if upper.contains("[THROTTLED]") || upper.contains("THROTTLED") {
        return ConnectorError::Throttled { message };
    }
    for code in [
        "UNAVAILABLE",
        "LIMIT",
        "INUSE",
        "CONTACTADMIN",
        "PRIVACYREQUIRED",
    ] {
        if upper.contains(&format!("[{code}]")) {
            return ConnectorError::LoginRefused {
                code: code.to_owned(),
                message,
            };
        }
    }
    if upper.contains("TOO MANY") || upper.contains("MAXIMUM NUMBER OF CONNECTIONS") {
        return ConnectorError::LoginRefused {
            code: "LIMIT".to_owned(),
            message,
        };
    }
    if during_login {
        return ConnectorError::InvalidCredentials {
            message: format!("the server refused the login: {message}"),
        };
    }
    if upper.contains("[NONEXISTENT]")
        || upper.contains("DOESN'T EXIST")
        || upper.contains("NOT EXIST")
        || upper.contains("UNKNOWN MAILBOX")
    {
        return ConnectorError::FolderNotFound(message);
    }
    ConnectorError::Protocol(message)
}

/// Converts an async-imap error, whose NO/BAD text embeds the response code.
pub(crate) fn from_imap(
    error: async_imap::error::Error,
    address: &str,
    during_login: bool,
) -> ConnectorError {
    use async_imap::error::Error;
    match error {
        Error::No(text) => classify_refusal(&text, during_login),
        Error::Bad(text) => ConnectorError::Protocol(format!("BAD {}", server_words(&text))),
        Error::Io(source) => ConnectorError::Connection {
            address: address.to_owned(),
            source,
        },
        Error::ConnectionLost => ConnectorError::Connection {
            address: address.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection lost"),
        },
        other => ConnectorError::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sentences_without_library_debug_text() {
        let refused = classify_refusal(
            "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")",
            true,
        );
        assert_eq!(
            refused.to_string(),
            "the server refused the login: [AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(server_words("plain words"), "plain words");
        assert_eq!(
            server_words("code: None, info: Some(\"a \\\"b\\\"\")"),
            "a \"b\""
        );
    }

    #[test]
    fn refusals_are_sorted_by_their_codes() {
        assert!(matches!(
            classify_refusal(
                "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")",
                true
            ),
            ConnectorError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            classify_refusal("Login failed.", true),
            ConnectorError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            classify_refusal("[UNAVAILABLE] Temporary authentication failure", true),
            ConnectorError::LoginRefused { code, .. } if code == "UNAVAILABLE"
        ));
        assert!(matches!(
            classify_refusal("Too many simultaneous connections", true),
            ConnectorError::LoginRefused { .. }
        ));
        assert!(matches!(
            classify_refusal(
                "[THROTTLED] Account exceeded command or bandwidth limits",
                false
            ),
            ConnectorError::Throttled { .. }
        ));
        assert!(matches!(
            classify_refusal(
                "User is authenticated but not connected. Request is throttled.",
                true
            ),
            ConnectorError::Throttled { .. }
        ));
        assert!(matches!(
            classify_refusal("[NONEXISTENT] Mailbox doesn't exist: Nope", false),
            ConnectorError::FolderNotFound(_)
        ));
    }
}
