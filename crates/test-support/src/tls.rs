//! A certificate authority made for one run, and the client configuration that trusts it.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error::RigError;

/// PEM files of a server identity signed by a CA that exists only for this run.
#[derive(Debug)]
pub struct ServerIdentity {
    pub ca_pem: String,
    /// The server certificate (for `localhost` and `127.0.0.1`) followed by the CA.
    pub chain_pem: String,
    pub key_pem: String,
}

impl ServerIdentity {
    /// Generates a new CA and a server certificate for `localhost` and `127.0.0.1`.
    pub fn generate() -> Result<Self, RigError> {
        let tls = |e: rcgen::Error| RigError::Tls(e.to_string());
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "imap-sync test rig CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(tls)?)
            .map_err(tls)?;

        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(tls)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.use_authority_key_identifier_extension = true;
        let server_key = KeyPair::generate().map_err(tls)?;
        let server_cert = server_params.signed_by(&server_key, &ca).map_err(tls)?;

        Ok(Self {
            ca_pem: ca.pem(),
            chain_pem: format!("{}{}", server_cert.pem(), ca.pem()),
            key_pem: server_key.serialize_pem(),
        })
    }
}

/// A rustls client configuration that trusts exactly the CA in `ca_file`.
pub fn client_config_trusting(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, RigError> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| RigError::Tls(format!("reading {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| RigError::Tls(format!("parsing {}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| RigError::Tls(format!("adding {}: {e}", ca_file.display())))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RigError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS name for a host given as a name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, RigError> {
    ServerName::try_from(host.to_owned()).map_err(|e| RigError::Tls(format!("{host}: {e}")))
}
