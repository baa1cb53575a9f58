//! The connection to one partner and how its failures read.
//!
//! One HTTP/2 connection per partner, used directly: every handoff stream
//! goes from the courier's task to hyper's connection task. (tonic's
//! `Channel` puts a `Buffer` worker task in between, one more task hop on
//! every stream's way out; its reconnecting is not needed here, since a
//! failed attempt drops the link and the next one dials afresh.)

use std::time::Duration;

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tongban_pki::Identity;
use tongban_pki::tls::TlsMaterial;
use tonic::codegen::http::{Request, Response, Uri};
use tonic::codegen::{Context, Future, Pin, Poll, Service};

use super::host_of;
use crate::NodeError;
use crate::dial::Dial;

/// The connection to one partner: dialled by this node (TCP, then TLS that
/// accepts only the partner's node identity), kept while it works and
/// dropped after a failure so that the next attempt dials afresh.
pub(super) struct Link {
    /// The partner's `https` origin, which requests carry.
    origin: Uri,
    keepalive: Duration,
    dial: Dial,
    open: tokio::sync::Mutex<Option<Conn>>,
}

/// An open HTTP/2 connection, as a service tonic's client calls.
#[derive(Clone)]
pub(super) struct Conn {
    send: http2::SendRequest<tonic::body::Body>,
    /// Where requests go (scheme and authority of every request).
    pub(super) origin: Uri,
}

impl Service<Request<tonic::body::Body>> for Conn {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.send.send_request(request))
    }
}

impl Link {
    pub(super) fn new(
        url: &str,
        tls: &TlsMaterial,
        expected: Identity,
        attempt_timeout: Duration,
    ) -> Result<Self, NodeError> {
        let bad = |e: &dyn std::fmt::Display| NodeError::Invalid(format!("endpoint {url}: {e}"));
        let origin: Uri = url.parse().map_err(|e| bad(&e))?;
        let authority = origin.authority().ok_or_else(|| bad(&"no host"))?;
        let addr = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:443"),
        };
        let connector = tls
            .partner_connector(&host_of(url), expected)
            .map_err(|e| bad(&e))?;
        Ok(Self {
            origin,
            // Pings every half attempt timeout, answered within the other
            // half, while a stream is open: a connection that goes dark
            // fails its streams within the attempt timeout, well inside
            // their budgets. (No pings on idle connections: servers may
            // refuse them as abuse.)
            keepalive: attempt_timeout / 2,
            dial: Dial::new(addr, connector),
            open: tokio::sync::Mutex::new(None),
        })
    }

    /// The open connection, or a new one: TCP connect, TLS handshake with
    /// the identity check, HTTP/2 set-up. Nothing of a case is sent before
    /// this returns.
    pub(super) async fn channel(&self) -> Result<Conn, NodeError> {
        let mut open = self.open.lock().await;
        if let Some(conn) = open.as_ref()
            && !conn.send.is_closed()
        {
            return Ok(conn.clone());
        }
        let io = self.dial.clone().call(self.origin.clone()).await?;
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keepalive)
            .keep_alive_timeout(self.keepalive)
            .handshake(io)
            .await
            .map_err(|e| NodeError::Unavailable(format!("HTTP/2 set-up: {}", error_chain(&e))))?;
        // Drives the connection until it fails or every handle is dropped;
        // its streams report a failure themselves.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %error_chain(&e), "partner connection closed");
            }
        });
        let conn = Conn {
            send,
            origin: self.origin.clone(),
        };
        *open = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the connection after a failure: the next attempt dials again.
    pub(super) async fn reset(&self) {
        *self.open.lock().await = None;
    }
}
/// An error with its sources, deduplicated (tonic wraps the dialler's
/// error in layers that each say "transport error").
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
