//! The error type of this crate.

use std::path::PathBuf;

/// What went wrong with a certificate, key, identity or signature.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("failed to read", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file exists and `--overwrite` was not given.
    #[error("{path} already exists (pass --overwrite to replace it)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// PEM or DER content that does not parse.
    #[error("{what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A SPIFFE ID, or the certificate's URI SANs, do not name a tongban identity.
    #[error("identity refused: {0}")]
    Identity(String),
    /// A request to issue a certificate that must not be issued.
    #[error("refusing to issue: {0}")]
    Refused(String),
    /// Certificate generation failed inside the library.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A TLS configuration could not be built.
    #[error("tls configuration: {0}")]
    Tls(String),
    /// A certificate does not chain to the federation CA, or is not valid now.
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
    /// A partner's server certificate is valid but names another identity
    /// than the partner this connection is for.
    #[error("wrong partner: server certificate is {presented}, expected {expected}")]
    WrongPeer {
        /// The SPIFFE ID the connection is for.
        expected: String,
        /// What the certificate carries.
        presented: String,
    },
    /// A TLS handshake with a partner failed.
    #[error("tls handshake failed: {0}")]
    Handshake(String),
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    Signature(String),
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
