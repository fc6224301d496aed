//! TLS trust: the webpki roots plus an optional CA file; one exact certificate more when a
//! mailbox pins its SHA-256 fingerprint; any certificate only by explicit choice, and then with
//! a warning on every connection. A refused certificate's fingerprint is kept for the error, so
//! the user can check it and pin it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::TlsOptions;
use crate::error::{ConnectorError, Result};

/// The fingerprint of the certificate the server presented, when verification refused it.
pub(crate) type RefusedFingerprint = Arc<std::sync::Mutex<Option<String>>>;

pub(crate) fn tls_connector(
    options: &TlsOptions,
) -> Result<(tokio_rustls::TlsConnector, RefusedFingerprint)> {
    let refused = RefusedFingerprint::default();
    let config = rustls_config_noting(options, Some(refused.clone()))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), refused))
}

/// SHA-256 of a certificate, uppercase hex pairs joined by colons.
pub(crate) fn fingerprint(certificate: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(certificate)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fingerprint as written by a user (`AB:CD:…`, `abcd…`), normalized; `None` when it is not
/// 32 bytes of hex.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_uppercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| {
        hex.as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// The rustls configuration for these options (ring provider, webpki roots, extra CA).
pub(crate) fn rustls_config(options: &TlsOptions) -> Result<rustls::ClientConfig> {
    rustls_config_noting(options, None)
}

fn rustls_config_noting(
    options: &TlsOptions,
    refused: Option<RefusedFingerprint>,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Tls(e.to_string()))?;
    if options.accept_invalid_certs {
        tracing::warn!(
            "TLS certificate verification is switched off for this mailbox (accept_invalid_certs)"
        );
    }
    let config = {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &options.extra_ca_file {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                ConnectorError::Tls(format!("reading CA file {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert
                    .map_err(|e| ConnectorError::Tls(format!("CA file {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ConnectorError::Tls(format!("CA file {}: {e}", path.display())))?;
            }
        }
        let pin = match &options.pinned_sha256 {
            Some(pin) => Some(normalize_fingerprint(pin).ok_or_else(|| {
                ConnectorError::Tls(format!(
                    "the pinned fingerprint {pin:?} is not a SHA-256 fingerprint (64 hex digits)"
                ))
            })?),
            None => None,
        };
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| ConnectorError::Tls(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinningVerifier {
                webpki,
                pin,
                accept_any: options.accept_invalid_certs,
                refused,
            }))
            .with_no_client_auth()
    };
    Ok(config)
}

/// The usual verification, plus exactly one certificate more when a fingerprint is pinned
/// (the certificate itself, whatever its issuer or names), or any certificate with
/// `accept_any`; a refused certificate's fingerprint is noted for the error. Signatures are
/// always checked.
#[derive(Debug)]
struct PinningVerifier {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pin: Option<String>,
    accept_any: bool,
    refused: Option<RefusedFingerprint>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity.as_ref());
        if self.accept_any || self.pin.as_deref() == Some(presented.as_str()) {
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if verdict.is_err()
            && let Some(slot) = &self.refused
        {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(presented);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A failed TLS handshake in words: what is wrong with the certificate and what to do.
pub(crate) fn explain_handshake_failure(
    host: &str,
    error: &std::io::Error,
    refused_fingerprint: Option<String>,
) -> String {
    use rustls::CertificateError as C;
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|error| match error {
            rustls::Error::InvalidCertificate(certificate) => Some(certificate),
            _ => None,
        });
    let why = match certificate {
        Some(C::UnknownIssuer) => "its certificate is self-signed or from an unknown issuer; add the issuing CA with imap_extra_ca_file".to_owned(),
        Some(C::Other(other)) if other.to_string().contains("CaUsedAsEndEntity") => {
            "it presents a CA certificate as its own (typical of a self-signed one); add it with imap_extra_ca_file".to_owned()
        }
        Some(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("its certificate is not valid for the name {host}; use the name the certificate was issued for")
        }
        Some(C::Expired | C::ExpiredContext { .. }) => "its certificate has expired".to_owned(),
        Some(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "its certificate is not valid yet (check this machine's clock)".to_owned()
        }
        Some(C::Revoked) => "its certificate was revoked".to_owned(),
        Some(other) => format!("its certificate was refused ({other})"),
        None => error.to_string(),
    };
    match refused_fingerprint {
        Some(fingerprint) => format!(
            "the TLS handshake with {host} failed: {why}; the certificate's SHA-256 fingerprint is {fingerprint} — if it is the server's, pin it (mailbox update --tls-pin {fingerprint})"
        ),
        None => format!("the TLS handshake with {host} failed: {why}"),
    }
}
