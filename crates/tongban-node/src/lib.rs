//! A tongban county node: the gRPC services (federation, window, review,
//! audit), the identity gate in front of them, the outbox worker that hands
//! cases to partner nodes, and the configuration that ties them together.
//!
//! Entry point: [`run`] takes a loaded [`NodeConfig`], an already bound
//! listener and a shutdown future, so tests bind `127.0.0.1:0` and stop the
//! node with a oneshot.

#![warn(missing_docs)]

mod admin;
pub mod auth;
mod carrier;
mod change;
pub mod clock;
pub mod config;
mod courier;
mod ctx;
pub mod dial;
mod error;
mod flow;
mod ingest;
mod locks;
pub mod merkle;
mod metrics;
pub mod operator;
mod pidlock;
pub mod protocol;
pub mod receipt;
mod recount;
mod requests;
mod server;
mod service;
mod validate;
mod view;

pub use clock::Clock;
pub use config::{ConfigError, NodeConfig};
pub use error::NodeError;
pub use pidlock::{PidLock, PidLockError};
pub use server::{Listeners, run, run_with, run_with_carrier};
