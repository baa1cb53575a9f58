//! TLS for every port: a TLS 1.3 server that requires a client certificate
//! chaining to the federation CA, the accept loop that feeds tonic, and the
//! client configuration used by the CLI and by nodes calling partners.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::{PkiError, TrustAnchor};

/// How long a peer may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM texts a node or a client needs: the federation CA, its own
/// certificate and its key.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Federation CA certificate, PEM.
    pub ca_pem: String,
    /// Own certificate, PEM.
    pub cert_pem: String,
    /// Own PKCS#8 key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads the three PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, PkiError> {
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| PkiError::io("failed to read", p, e));
        Ok(Self {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }

    /// The federation CA as a verifier.
    pub fn trust_anchor(&self) -> Result<TrustAnchor, PkiError> {
        TrustAnchor::from_pem(&self.ca_pem)
    }

    fn chain(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::malformed("certificate", format!("{e:?}")))?;
        if certs.is_empty() {
            return Err(PkiError::malformed(
                "certificate",
                "no PEM certificate found",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| PkiError::malformed("key", format!("{e:?}")))?;
        Ok((certs, key))
    }

    /// A TLS 1.3 server configuration with mandatory client certificates
    /// chaining to the federation CA, offering HTTP/2.
    pub fn server_acceptor(&self) -> Result<TlsAcceptor, PkiError> {
        let anchor = self.trust_anchor()?;
        let (certs, key) = self.chain()?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| PkiError::Tls(e.to_string()))?
                .with_client_cert_verifier(anchor.client_verifier())
                .with_single_cert(certs, key)
                .map_err(|e| PkiError::Tls(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// A server configuration for the carrier push port: HTTPS with this
    /// node's certificate, no client certificate (carriers are outside the
    /// federation and authenticate each request with an HMAC instead).
    pub fn carrier_acceptor(&self) -> Result<TlsAcceptor, PkiError> {
        let (certs, key) = self.chain()?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| PkiError::Tls(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(|e| PkiError::Tls(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Client TLS for tonic: trusts only the federation CA and presents this
    /// certificate. `domain` is the name (or IP) the server's certificate must carry.
    pub fn client_config(&self, domain: &str) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .domain_name(domain)
    }
}

/// Accepts TCP connections, runs each TLS handshake in its own task (a slow
/// or hostile peer cannot stall the others), and yields finished streams for
/// `tonic::transport::Server::serve_with_incoming`. Refused handshakes are
/// logged with the peer address and the reason. Stops when the receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match handshake(acceptor, tcp, peer).await {
                    Ok(stream) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Err(reason) => tracing::warn!(%peer, %reason, "tls handshake refused"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    _peer: SocketAddr,
) -> Result<TlsStream<TcpStream>, String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no handshake within {HANDSHAKE_TIMEOUT:?}")),
    }
}
