//! One sandbox: a federation of real tongban nodes running in this process on
//! loopback, the way the tests, the bench and `tongban dev` all need it.
//!
//! A [`Builder`] takes a federation directory (by default
//! `examples/federation.toml`) and a root directory (by default a new temp
//! dir); [`Builder::build`] binds one listener per county up front (port 0,
//! or fixed ports from a base), rewrites the directory's endpoints to them,
//! creates or reuses a CA and the node certificates under `certs/`, and
//! writes one node config per county, all as a user would lay them out. The
//! [`Sandbox`] then starts, stops and restarts nodes with
//! `tongban_node::run_with(cfg, listeners, shutdown)` on the
//! held sockets, or hands them to `tongban node` processes of their own
//! ([`Sandbox::hand_over`], [`Passed`]), and opens mTLS channels as any
//! principal.
//!
//! It owns the layout and the lifecycle; it does not own what is done with
//! the nodes (cases, sample data, assertions), which stays with its callers.
//! Nothing in the core, ledger or pki crates depends on it.
#![warn(missing_docs)]

mod builder;
mod certs;
pub mod directory;
mod error;
mod passed;
mod sandbox;
mod socket;

pub use builder::{Builder, Ports};
pub use certs::{Pki, Provisioned, provision};
pub use error::SandboxError;
pub use passed::Passed;
pub use sandbox::{Sandbox, channel, connect};

use tongban_core::CountyCode;
use tongban_pki::Principal;

/// The trust domain of the example federation.
pub const TRUST_DOMAIN: &str = "shaanxi.tongban";
/// 汉台区, a window county of the example federation.
pub const HANTAI: &str = "610702";
/// 雁塔区, the home authority of the example's agreements.
pub const YANTA: &str = "610113";
/// 商州区, the third county of the example federation.
pub const SHANGZHOU: &str = "611002";

/// A county code that is known to be valid.
///
/// # Panics
/// If `code` is not a valid county code: these helpers are for constants.
pub fn county(code: &str) -> CountyCode {
    code.parse()
        .unwrap_or_else(|e| panic!("county code {code:?}: {e}"))
}

/// The node of county `code`.
pub fn node(code: &str) -> Principal {
    Principal::Node {
        county: county(code),
    }
}

/// Clerk `name` at the window of county `code`.
pub fn clerk(code: &str, name: &str) -> Principal {
    Principal::Clerk {
        county: county(code),
        name: name.into(),
    }
}

/// Reviewer `name` of county `code`.
pub fn reviewer(code: &str, name: &str) -> Principal {
    Principal::Reviewer {
        county: county(code),
        name: name.into(),
    }
}

/// Auditor `name`, of county `code` or of the province (`None`).
pub fn auditor(code: Option<&str>, name: &str) -> Principal {
    Principal::Auditor {
        county: code.map(county),
        name: name.into(),
    }
}
