//! Identities and cryptography for tongban: the federation CA, certificate
//! issuance, SPIFFE identities, TLS configurations and node signatures.
//!
//! This is the only crate that names rustls, rcgen, ring or x509-parser; the
//! rest of the workspace sees typed [`Identity`] values, [`NodeSigner`] and
//! ready-made TLS configurations.

#![warn(missing_docs)]

pub mod check;
mod error;
pub mod hmac;
pub mod identity;
pub mod issue;
mod seen;
pub mod sign;
pub mod tls;

pub use error::PkiError;
pub use identity::{Identity, Principal};
pub use issue::{CertFileReport, Issued};
pub use sign::{NodeSigner, TrustAnchor};

/// Installs ring as the process-wide rustls crypto provider.
///
/// Call it first thing in `main` and in test setup: if two providers are
/// compiled in and none is installed, rustls panics on first use. Calling it
/// again is harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
