//! Sockets bound up front and held for the sandbox's whole life. A node is
//! given a duplicate of its socket when it starts (in this process, or a
//! `tongban node` process passed one as an fd); while an in-process node is
//! down a task accepts and drops connections on the held one, so peers see
//! a node that is down, no one else can take the port, and a restart gets
//! the same port back without a race (nothing is ever unbound and bound
//! again).

use std::net::{SocketAddr, TcpListener};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::SandboxError;

/// A listening socket held by the sandbox.
pub(crate) struct Held {
    socket: TcpListener,
    addr: SocketAddr,
    /// While no node serves it: the task refusing connections.
    refuser: Option<JoinHandle<()>>,
}

impl Held {
    /// Binds `addr` now; a fixed port that is taken is
    /// [`SandboxError::PortInUse`].
    pub(crate) fn bind(addr: SocketAddr) -> Result<Self, SandboxError> {
        let socket = TcpListener::bind(addr).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 {
                SandboxError::PortInUse { port: addr.port() }
            } else {
                SandboxError::Listen { addr, source }
            }
        })?;
        let addr = socket
            .local_addr()
            .map_err(|source| SandboxError::Listen { addr, source })?;
        Ok(Self {
            socket,
            addr,
            refuser: None,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A duplicate of the socket (the same port, the same accept queue),
    /// non-blocking, to be registered with the runtime that serves it.
    pub(crate) fn duplicate(&self) -> Result<TcpListener, SandboxError> {
        let listen = |source| SandboxError::Listen {
            addr: self.addr,
            source,
        };
        let dup = self.socket.try_clone().map_err(listen)?;
        dup.set_nonblocking(true).map_err(listen)?;
        Ok(dup)
    }

    /// A duplicate of the socket as it is (blocking), for a process of its own.
    pub(crate) fn fd(&self) -> Result<std::os::fd::OwnedFd, SandboxError> {
        let dup = self
            .socket
            .try_clone()
            .map_err(|source| SandboxError::Listen {
                addr: self.addr,
                source,
            })?;
        Ok(dup.into())
    }

    /// Starts refusing connections (accepting and dropping them) on `rt`.
    pub(crate) fn refuse(&mut self, rt: &Handle) -> Result<(), SandboxError> {
        if self.refuser.is_some() {
            return Ok(());
        }
        let dup = self.duplicate()?;
        self.refuser = Some(rt.spawn(async move {
            // Registered here, with the reactor of the runtime that polls it.
            let Ok(listener) = tokio::net::TcpListener::from_std(dup) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
        Ok(())
    }

    /// Stops refusing, once no refuser can take a connection any more.
    pub(crate) async fn stop_refusing(&mut self) {
        if let Some(refuser) = self.refuser.take() {
            refuser.abort();
            let _ = refuser.await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(refuser) = self.refuser.take() {
            refuser.abort();
        }
    }
}
