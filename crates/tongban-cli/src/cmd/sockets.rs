//! The node's listening sockets: those its parent passed it (systemd
//! socket activation: `LISTEN_FDS`, the sockets from fd 3 on), each used
//! for the config address it is bound to, and the others bound here.
//!
//! A parent that holds the sockets (a `.socket` unit, the bench, the
//! process tests) keeps its ports across restarts of the node, and no other
//! program can take one between the parent's bind and the node's: nothing
//! is unbound and bound again. What the addresses are stays the config's
//! (`listen`, `admin.listen`, `mail.push_listen`); this module does not
//! choose them.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tongban_node::{Listeners, NodeConfig};

use super::BadConfig;

/// The sockets passed in `LISTEN_FDS`, not yet taken.
pub(crate) struct Inherited(listenfd::ListenFd);

impl Inherited {
    /// Reads and clears `LISTEN_FDS` (and `LISTEN_PID`): to be called
    /// before any other thread runs, since it changes the environment.
    pub(crate) fn from_env() -> Self {
        Self(listenfd::ListenFd::from_env())
    }

    /// Each passed socket with the address it is bound to. One that is not
    /// a TCP socket is a configuration error.
    fn take(mut self) -> Result<Vec<(SocketAddr, std::net::TcpListener)>> {
        let mut out = Vec::new();
        for idx in 0..self.0.len() {
            let fd = 3 + idx;
            let socket = self
                .0
                .take_tcp_listener(idx)
                .map_err(|e| BadConfig(format!("LISTEN_FDS: fd {fd}: {e}")))?;
            let Some(socket) = socket else { continue };
            let addr = socket
                .local_addr()
                .map_err(|e| BadConfig(format!("LISTEN_FDS: fd {fd}: {e}")))?;
            out.push((addr, socket));
        }
        Ok(out)
    }

    /// The node's listeners for `config`: for each address it sets, the
    /// passed socket bound to exactly that address, else one bound now. A
    /// passed socket that no address names is a configuration error (a
    /// socket unit and a config that disagree), found before anything is
    /// bound.
    pub(crate) async fn listeners(self, config: &NodeConfig) -> Result<Listeners> {
        let mut passed = self.take()?;
        let mut claim = |addr: Option<SocketAddr>| {
            let at = passed.iter().position(|(a, _)| Some(*a) == addr)?;
            Some(passed.swap_remove(at).1)
        };
        let grpc = claim(Some(config.listen));
        let carrier = claim(config.carrier_listen);
        let admin = claim(config.admin_listen);
        if let Some((addr, _)) = passed.first() {
            return Err(BadConfig(format!(
                "LISTEN_FDS: a socket bound to {addr} was passed, but the config's \
                 listen, admin.listen and mail.push_listen are {}, {} and {}",
                config.listen,
                shown(config.admin_listen),
                shown(config.carrier_listen)
            ))
            .into());
        }
        let grpc = open(grpc, config.listen, || {
            format!(
                "cannot listen on {} (is another node using it?)",
                config.listen
            )
        })
        .await?;
        let carrier = match config.carrier_listen {
            Some(addr) => Some(
                open(carrier, addr, || {
                    format!("cannot listen for carrier pushes on {addr}")
                })
                .await?,
            ),
            None => None,
        };
        let admin = match config.admin_listen {
            Some(addr) => Some(
                open(admin, addr, || {
                    format!("cannot listen for the admin port on {addr}")
                })
                .await?,
            ),
            None => None,
        };
        Ok(Listeners {
            grpc,
            carrier,
            admin,
        })
    }
}

/// The listener for `addr`: the socket passed for it, registered with the
/// runtime, or else one bound now (`failed` says what could not be done).
async fn open(
    passed: Option<std::net::TcpListener>,
    addr: SocketAddr,
    failed: impl FnOnce() -> String,
) -> Result<TcpListener> {
    match passed {
        Some(socket) => socket
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(socket))
            .with_context(|| format!("cannot use the socket passed for {addr}")),
        None => TcpListener::bind(addr).await.with_context(failed),
    }
}

fn shown(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "unset".to_owned(), |a| a.to_string())
}
