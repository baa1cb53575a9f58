//! The connection to one partner and how its failures read.

use std::time::Duration;

use tongban_pki::Identity;
use tongban_pki::tls::TlsMaterial;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use super::host_of;
use crate::NodeError;
use crate::dial::Dial;

/// The connection to one partner: dialled by this node (TCP, then TLS that
/// accepts only the partner's node identity), kept while it works and
/// dropped after a failure so that the next attempt dials afresh.
pub(super) struct Link {
    endpoint: Endpoint,
    dial: Dial,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl Link {
    pub(super) fn new(
        url: &str,
        tls: &TlsMaterial,
        expected: Identity,
        attempt_timeout: Duration,
    ) -> Result<Self, NodeError> {
        // Pings every half attempt timeout, answered within the other half,
        // while a stream is open: a connection that goes dark fails its
        // streams within the attempt timeout, well inside their budgets.
        // (No pings on idle connections: servers may refuse them as abuse.)
        let keepalive = attempt_timeout / 2;
        let bad = |e: &dyn std::fmt::Display| NodeError::Invalid(format!("endpoint {url}: {e}"));
        let uri: Uri = url.parse().map_err(|e| bad(&e))?;
        let authority = uri.authority().ok_or_else(|| bad(&"no host"))?;
        let addr = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:443"),
        };
        let connector = tls
            .partner_connector(&host_of(url), expected)
            .map_err(|e| bad(&e))?;
        // The dialler does TLS itself, so tonic sees a plain `http` address;
        // requests still carry the partner's `https` origin.
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| bad(&e))?
            .origin(uri)
            .http2_keep_alive_interval(keepalive)
            .keep_alive_timeout(keepalive);
        Ok(Self {
            endpoint,
            dial: Dial::new(addr, connector),
            channel: tokio::sync::Mutex::new(None),
        })
    }

    /// The open channel, or a new one: TCP connect, TLS handshake with the
    /// identity check, HTTP/2 set-up. Nothing of a case is sent before
    /// this returns.
    pub(super) async fn channel(&self) -> Result<Channel, NodeError> {
        let mut open = self.channel.lock().await;
        if let Some(channel) = open.as_ref() {
            return Ok(channel.clone());
        }
        let channel = self
            .endpoint
            .connect_with_connector(self.dial.clone())
            .await
            .map_err(|e| NodeError::Unavailable(error_chain(&e)))?;
        *open = Some(channel.clone());
        Ok(channel)
    }

    /// Forgets the channel after a failure: the next attempt dials again.
    pub(super) async fn reset(&self) {
        *self.channel.lock().await = None;
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
