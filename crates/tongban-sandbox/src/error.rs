//! What can go wrong while laying out or running a sandbox.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tongban_node::{ConfigError, NodeError};
use tongban_pki::PkiError;

/// Why a sandbox could not be built, a node started or stopped, or a
/// channel opened.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A fixed port the sandbox was asked to use is taken.
    #[error("port {port} is already in use")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Fixed ports from `base` run past 65535 (or start at 0).
    #[error("ports from {base} for {count} nodes do not fit below 65536")]
    PortRange {
        /// The first port.
        base: u16,
        /// How many nodes.
        count: usize,
    },
    /// A socket could not be bound, duplicated or handed to a node.
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`failed to write`).
        action: &'static str,
        /// To which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The federation directory is not TOML, or lacks a county asked for.
    #[error("federation directory {path}: {reason}")]
    Directory {
        /// The directory file (or `<template>` before it is written).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA found under `certs/` is for another trust domain.
    #[error("the CA in {path} is for {found:?}, not {expected:?}")]
    TrustDomain {
        /// The certificate directory.
        path: PathBuf,
        /// The CA's trust domain.
        found: String,
        /// The directory's trust domain.
        expected: String,
    },
    /// A certificate could not be made, read or checked.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A node config does not load (most often a directory someone edited).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A channel could not be set up.
    #[error("failed to connect: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The county is not one of the sandbox's.
    #[error("county {0} is not in the sandbox")]
    UnknownCounty(String),
    /// The county's sockets are served by a process of its own.
    #[error("county {0}'s sockets are handed over to a process of its own")]
    HandedOver(String),
    /// The county's sockets were asked for, but a node of this process serves them.
    #[error("county {0}'s sockets are not handed over to a process")]
    NotHandedOver(String),
    /// A node stopped with an error.
    #[error("node {county} stopped: {source}")]
    Node {
        /// The node's county.
        county: String,
        /// Why it stopped.
        source: NodeError,
    },
    /// Stopping every node failed: one line per node that failed or did
    /// not stop in time.
    #[error("{}", .0.join("; "))]
    Stop(Vec<String>),
    /// There is no tokio runtime to run the nodes on.
    #[error("the sandbox needs a tokio runtime: build it inside one or pass Builder::runtime")]
    NoRuntime,
}

impl SandboxError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
