//! A TLS front on loopback for a plain IMAP port: it presents whatever certificate a test
//! needs (self-signed, a CA certificate used as the server's own, another one at the same
//! address) in front of the rig's real Dovecot, so certificate handling is tested against a
//! real server behind it.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::RigError;

/// A self-signed certificate that says `CA:TRUE` (as many self-hosted servers' do) for
/// `localhost` and `127.0.0.1`, with its key.
#[derive(Debug, Clone)]
pub struct SelfSignedCertificate {
    pub der: Vec<u8>,
    key_der: Vec<u8>,
}

impl SelfSignedCertificate {
    pub fn generate(common_name: &str) -> Result<Self, RigError> {
        let tls = |e: rcgen::Error| RigError::Tls(e.to_string());
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(tls)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().map_err(tls)?;
        let certificate = params.self_signed(&key).map_err(tls)?;
        Ok(Self {
            der: certificate.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// SHA-256 of the certificate, uppercase hex pairs joined by colons (as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A TLS listener on a free loopback port that forwards every connection to `backend`.
#[derive(Debug)]
pub struct TlsFront {
    address: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TlsFront {
    pub async fn start(
        certificate: &SelfSignedCertificate,
        backend: SocketAddr,
    ) -> Result<Self, RigError> {
        Self::start_on(certificate, backend, 0).await
    }

    /// [`Self::start`] on a given port (0: any free one), e.g. the port of a front just stopped,
    /// so another certificate appears at the same address.
    pub async fn start_on(
        certificate: &SelfSignedCertificate,
        backend: SocketAddr,
        port: u16,
    ) -> Result<Self, RigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RigError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(certificate.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificate.key_der.clone())),
            )
            .map_err(|e| RigError::Tls(e.to_string()))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(RigError::io("binding the TLS front"))?;
        let address = listener
            .local_addr()
            .map_err(RigError::io("the TLS front's address"))?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        Ok(Self {
            address,
            task: Some(task),
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Stops listening; the port is free when this returns.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
