//! The error type of this crate.
//!
//! A variant that wraps a lower-level error says it in its own message and
//! does not also return it from `source()`, so that a `{:#}` chain or a log
//! line shows each cause once.

use std::path::PathBuf;

/// What went wrong with a certificate, key, identity or signature.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What was being done ("failed to read", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not the `source()` chain).
        cause: std::io::Error,
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
    Generate(rcgen::Error),
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

/// Not `#[from]`, which would also make rcgen's error the `source()`.
impl From<rcgen::Error> for PkiError {
    fn from(cause: rcgen::Error) -> Self {
        Self::Generate(cause)
    }
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        cause: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_cause_is_in_the_message_and_not_the_chain_again() {
        use std::error::Error as _;
        let err = PkiError::io(
            "failed to read",
            "/x/ca.crt",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(
            err.to_string(),
            "failed to read /x/ca.crt: entity not found"
        );
        assert!(err.source().is_none());
    }
}
