//! TLS trust: the webpki roots plus an optional CA file; any certificate only by explicit
//! choice, and then with a warning on every connection.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::TlsOptions;
use crate::error::{ConnectorError, Result};

pub(crate) fn tls_connector(options: &TlsOptions) -> Result<tokio_rustls::TlsConnector> {
    Ok(tokio_rustls::TlsConnector::from(Arc::new(rustls_config(
        options,
    )?)))
}

/// The rustls configuration for these options (ring provider, webpki roots, extra CA).
pub(crate) fn rustls_config(options: &TlsOptions) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::Tls(e.to_string()))?;
    let config = if options.accept_invalid_certs {
        tracing::warn!(
            "TLS certificate verification is switched off for this mailbox (accept_invalid_certs)"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
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
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A failed TLS handshake in words: what is wrong with the certificate and what to do.
pub(crate) fn explain_handshake_failure(host: &str, error: &std::io::Error) -> String {
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
    format!("the TLS handshake with {host} failed: {why}")
}
