//! Dialling one named node for tonic: TCP, then a TLS handshake that
//! accepts only that node's identity (`tongban_pki::tls::PartnerConnector`),
//! so nothing of a call leaves before the peer is known to be the county
//! meant. The courier dials partners with it, the CLI the node its profile
//! names.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tongban_pki::tls::{PartnerConnector, PartnerStream};
use tonic::codegen::http::Uri;
use tonic::codegen::{Context, Future, Pin, Poll, Service};

use crate::NodeError;

/// Dials a partner for tonic: TCP, then the partner's TLS connector.
#[derive(Clone)]
pub struct Dial {
    addr: String,
    connector: Arc<PartnerConnector>,
}

impl Dial {
    /// Dials `addr` (`host:port`) and hands the stream to `connector`.
    pub fn new(addr: String, connector: PartnerConnector) -> Self {
        Self {
            addr,
            connector: Arc::new(connector),
        }
    }
}

impl Service<Uri> for Dial {
    type Response = TokioIo<PartnerStream>;
    type Error = NodeError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, NodeError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), NodeError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (addr, connector) = (self.addr.clone(), self.connector.clone());
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| NodeError::Unavailable(format!("cannot connect to {addr}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let tls = connector
                .connect(tcp)
                .await
                .map_err(|e| NodeError::Unavailable(format!("{addr}: {e}")))?;
            Ok(TokioIo::new(tls))
        })
    }
}
