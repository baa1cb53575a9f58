//! TLS for every port: a TLS 1.3 server that requires a client certificate
//! chaining to the federation CA, the accept loop that feeds tonic, the
//! client configuration used by the CLI, and the connector a node uses to
//! call one partner, which accepts only that partner's node certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::{Identity, PkiError, TrustAnchor};

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

/// A certificate chain and its key from PEM text.
fn chain(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::malformed("certificate", format!("{e:?}")))?;
    if certs.is_empty() {
        return Err(PkiError::malformed(
            "certificate",
            "no PEM certificate found",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| PkiError::malformed("key", format!("{e:?}")))?;
    Ok((certs, key))
}

/// A plain HTTPS/1.1 server configuration: the given certificate chain and
/// key (PEM), TLS 1.2 or 1.3, no client certificate. For servers whose
/// clients are not federation members: carriers pushing events, and
/// browsers reaching `tongban console` (which names any certificate its
/// operators' browsers trust).
pub fn https_acceptor(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor, PkiError> {
    let (certs, key) = chain(cert_pem, key_pem)?;
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
        chain(&self.cert_pem, &self.key_pem)
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
        https_acceptor(&self.cert_pem, &self.key_pem)
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

    /// A connector to the partner node whose identity is `expected`, at
    /// `host` (the name or IP its certificate must carry): TLS 1.3, this
    /// node's certificate as client certificate, ALPN `h2`, and a server
    /// certificate that must chain to the federation CA **and** carry
    /// exactly `expected` as its SPIFFE ID. The check runs inside the
    /// handshake, before this side sends its certificate or any data.
    pub fn partner_connector(
        &self,
        host: &str,
        expected: Identity,
    ) -> Result<PartnerConnector, PkiError> {
        let anchor = self.trust_anchor()?;
        let (certs, key) = self.chain()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(anchor.ca_der().to_vec()))
            .map_err(|e| PkiError::Tls(format!("ca certificate not usable as a root: {e}")))?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        let verifier = PartnerVerifier {
            webpki,
            expected: expected.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| PkiError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(certs, key)
            .map_err(|e| PkiError::Tls(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| PkiError::Tls(format!("{host:?} is not a server name: {e}")))?;
        Ok(PartnerConnector {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            expected,
        })
    }
}

/// The TLS stream to a partner, once its identity is checked.
pub type PartnerStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects to one partner node and accepts only that partner's identity
/// (see [`TlsMaterial::partner_connector`]).
#[derive(Clone)]
pub struct PartnerConnector {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    expected: Identity,
}

impl std::fmt::Debug for PartnerConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerConnector")
            .field("expected", &self.expected.to_string())
            .finish_non_exhaustive()
    }
}

impl PartnerConnector {
    /// The identity the partner must present.
    pub fn expected(&self) -> &Identity {
        &self.expected
    }

    /// Runs the TLS handshake over `tcp`. A server certificate with another
    /// identity fails with [`PkiError::WrongPeer`], having sent nothing but
    /// the ClientHello and an alert.
    pub async fn connect(&self, tcp: TcpStream) -> Result<PartnerStream, PkiError> {
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|err| match wrong_peer(&err) {
                Some(wrong) => PkiError::WrongPeer {
                    expected: wrong.expected.to_string(),
                    presented: wrong.presented.clone(),
                },
                None => PkiError::Handshake(err.to_string()),
            })
    }
}

/// The partner presented a valid federation certificate, but not the
/// expected one (carried through rustls inside its error).
#[derive(Debug)]
struct WrongPeerCert {
    expected: Identity,
    presented: String,
}

impl std::fmt::Display for WrongPeerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server certificate is {}, expected {}",
            self.presented, self.expected
        )
    }
}

impl std::error::Error for WrongPeerCert {}

/// Finds a [`WrongPeerCert`] inside a handshake's I/O error.
fn wrong_peer(err: &std::io::Error) -> Option<&WrongPeerCert> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<WrongPeerCert>()
        }
        _ => None,
    }
}

/// The webpki chain and name check, then the SPIFFE ID check against the
/// one partner this connection is for.
#[derive(Debug)]
struct PartnerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    expected: Identity,
}

impl ServerCertVerifier for PartnerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let presented = match Identity::from_cert_der(end_entity.as_ref()) {
            Ok(id) if id == self.expected => return Ok(verified),
            Ok(id) => id.to_string(),
            Err(e) => format!("no tongban identity ({e})"),
        };
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(WrongPeerCert {
                expected: self.expected.clone(),
                presented,
            }))),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
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

/// A TLS client connection to `addr` that checks the server against the CA
/// in `ca_pem` for `server_name` and presents no certificate: how a carrier
/// (or a test standing in for one) reaches a node's carrier push port.
pub async fn connect_server_only(
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| PkiError::malformed("ca certificate", format!("{e:?}")))?;
    roots
        .add(ca)
        .map_err(|e| PkiError::malformed("ca certificate", e))?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::malformed("tls versions", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| PkiError::malformed("server name", e))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| PkiError::malformed(format!("connection to {addr}"), e))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| PkiError::malformed(format!("tls handshake with {addr}"), e))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tongban_core::CountyCode;

    use super::*;
    use crate::Principal;
    use crate::issue::Ca;

    fn node(ca: &Ca, county: &str) -> TlsMaterial {
        let county: CountyCode = county.parse().unwrap();
        let pair = ca
            .issue(Principal::Node { county }, &["127.0.0.1".into()], 10)
            .unwrap();
        TlsMaterial {
            ca_pem: ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    }

    fn node_id(county: &str) -> Identity {
        Identity::parse(&format!("spiffe://tongban.test/county/{county}/node")).unwrap()
    }

    /// A server with `tls` that takes one connection and reports whether
    /// its handshake completed and how many application bytes arrived.
    async fn one_connection(
        tls: &TlsMaterial,
    ) -> (SocketAddr, tokio::task::JoinHandle<(bool, usize)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.server_acceptor().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Err(_) => (false, 0),
                Ok(mut stream) => {
                    let mut got = Vec::new();
                    let _ = stream.read_to_end(&mut got).await;
                    (true, got.len())
                }
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_valid_certificate_of_another_node_gets_no_data() {
        crate::install_crypto_provider();
        let ca = Ca::generate("tongban.test", 30).unwrap();
        // 商州's real node certificate, at the address the sender has for 汉台.
        let (addr, impostor) = one_connection(&node(&ca, "611002")).await;
        let sender = node(&ca, "610113")
            .partner_connector("127.0.0.1", node_id("610702"))
            .unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = sender.connect(tcp).await.expect_err("wrong partner");
        assert!(
            matches!(&err, PkiError::WrongPeer { expected, presented }
                if expected == "spiffe://tongban.test/county/610702/node"
                && presented == "spiffe://tongban.test/county/611002/node"),
            "{err}"
        );
        let (handshake_done, bytes) = impostor.await.unwrap();
        assert!(!handshake_done, "the impostor's handshake never completes");
        assert_eq!(bytes, 0);
    }

    #[tokio::test]
    async fn the_named_partner_is_connected() {
        crate::install_crypto_provider();
        let ca = Ca::generate("tongban.test", 30).unwrap();
        let (addr, partner) = one_connection(&node(&ca, "611002")).await;
        let sender = node(&ca, "610113")
            .partner_connector("127.0.0.1", node_id("611002"))
            .unwrap();
        let mut stream = sender
            .connect(TcpStream::connect(addr).await.unwrap())
            .await
            .expect("the partner's identity");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        stream.write_all(b"hello").await.unwrap();
        stream.shutdown().await.unwrap();
        assert_eq!(partner.await.unwrap(), (true, 5));
    }

    #[tokio::test]
    async fn a_certificate_of_another_federation_is_refused_by_the_chain_check() {
        crate::install_crypto_provider();
        let (ours, theirs) = (
            Ca::generate("tongban.test", 30).unwrap(),
            Ca::generate("tongban.test", 30).unwrap(),
        );
        let (addr, stranger) = one_connection(&node(&theirs, "610702")).await;
        let sender = node(&ours, "610113")
            .partner_connector("127.0.0.1", node_id("610702"))
            .unwrap();
        let err = sender
            .connect(TcpStream::connect(addr).await.unwrap())
            .await
            .expect_err("untrusted");
        assert!(matches!(err, PkiError::Handshake(_)), "{err}");
        assert_eq!(stranger.await.unwrap(), (false, 0));
    }
}
