//! Checks of a node's TLS files before it starts (`tongban node --check`
//! and every start): the CA parses, the certificate chains to it, carries
//! the node identity expected, is valid now and not about to expire, and
//! the key matches it and is not readable by others. Every problem is
//! reported, not just the first; the caller decides what is fatal.

use std::path::Path;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::issue::pem_to_der;
use crate::tls::TlsMaterial;
use crate::{Identity, NodeSigner, TrustAnchor};

/// Certificates expiring sooner than this are warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// Which of the three files a [`Finding`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The federation CA certificate.
    Ca,
    /// The node's certificate.
    Cert,
    /// The node's key.
    Key,
}

/// One problem with a node's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file it is about.
    pub part: Part,
    /// A warning (the node can run) rather than an error (it cannot).
    pub warning: bool,
    /// What is wrong, e.g. `expired on 2026-01-01`.
    pub message: String,
}

impl Finding {
    fn error(part: Part, message: impl Into<String>) -> Self {
        Self {
            part,
            warning: false,
            message: message.into(),
        }
    }

    fn warning(part: Part, message: impl Into<String>) -> Self {
        Self {
            part,
            warning: true,
            message: message.into(),
        }
    }
}

/// Checks `tls` as the files of the node `expected` at time `now`; with
/// `key_path`, also that the key file is not readable by group or others.
pub fn node_files(
    tls: &TlsMaterial,
    key_path: Option<&Path>,
    expected: &Identity,
    now: SystemTime,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let anchor = match TrustAnchor::from_pem(&tls.ca_pem) {
        Ok(a) => {
            if let Some(f) = expiry(Part::Ca, "the CA", a.ca_der(), now) {
                out.push(f);
            }
            Some(a)
        }
        Err(e) => {
            out.push(Finding::error(Part::Ca, e.to_string()));
            None
        }
    };
    let cert_der = match pem_to_der(&tls.cert_pem, "node certificate") {
        Ok(der) => der,
        Err(e) => {
            out.push(Finding::error(Part::Cert, e.to_string()));
            return out;
        }
    };
    let (not_before, not_after) = match X509Certificate::from_der(&cert_der) {
        Ok((_, cert)) => (
            cert.validity().not_before.to_datetime(),
            cert.validity().not_after.to_datetime(),
        ),
        Err(e) => {
            out.push(Finding::error(
                Part::Cert,
                format!("not an X.509 certificate: {e}"),
            ));
            return out;
        }
    };
    let now_dt = OffsetDateTime::from(now);
    if not_after < now_dt {
        out.push(Finding::error(
            Part::Cert,
            format!("expired on {}", not_after.date()),
        ));
    } else if not_before > now_dt {
        out.push(Finding::error(
            Part::Cert,
            format!("not valid before {}", not_before.date()),
        ));
    } else if let Some(f) = expiry(Part::Cert, "the certificate", &cert_der, now) {
        out.push(f);
    }
    match Identity::from_cert_der(&cert_der) {
        Ok(identity) if identity != *expected => out.push(Finding::error(
            Part::Cert,
            format!("certificate is {identity}, expected {expected}"),
        )),
        Ok(_) => {}
        Err(e) => out.push(Finding::error(Part::Cert, e.to_string())),
    }
    if let Some(anchor) = anchor {
        // The chain at a time the certificate is valid, so that an expired
        // certificate from another CA is reported as both.
        let at = now.clamp(
            SystemTime::from(not_before),
            SystemTime::from(not_after) - Duration::from_secs(1),
        );
        if let Err(e) = anchor.verify_cert(&cert_der, at) {
            out.push(Finding::error(
                Part::Cert,
                format!("does not chain to the CA: {e}"),
            ));
        }
    }
    if let Err(e) = NodeSigner::from_pem(&tls.cert_pem, &tls.key_pem) {
        out.push(Finding::error(Part::Key, e.to_string()));
    }
    if let Some(path) = key_path {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(Finding::warning(
                    Part::Key,
                    format!(
                        "{} is readable by group or others (mode {mode:o}); chmod 600 it",
                        path.display()
                    ),
                ));
            }
        }
    }
    out
}

/// A warning if the certificate `der` expires within [`EXPIRY_WARNING`].
fn expiry(part: Part, what: &str, der: &[u8], now: SystemTime) -> Option<Finding> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let not_after = cert.validity().not_after.to_datetime();
    let left = not_after - OffsetDateTime::from(now);
    (left.is_positive() && left < EXPIRY_WARNING).then(|| {
        Finding::warning(
            part,
            format!(
                "{what} expires in {} days, on {}",
                left.whole_days(),
                not_after.date()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Principal;
    use crate::issue::{Ca, LeafSpec};
    use time::Duration as TimeDuration;

    const TD: &str = "test.tongban";

    fn node(code: &str) -> Principal {
        Principal::Node {
            county: code.parse().unwrap(),
        }
    }

    fn material(ca: &Ca, pair: crate::issue::PemPair) -> TlsMaterial {
        TlsMaterial {
            ca_pem: ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    }

    #[test]
    fn a_good_node_certificate_has_no_findings() {
        crate::install_crypto_provider();
        let ca = Ca::generate(TD, 365).unwrap();
        let tls = material(&ca, ca.issue(node("610702"), &["n".into()], 90).unwrap());
        let expected = Identity::new(TD, node("610702")).unwrap();
        assert_eq!(node_files(&tls, None, &expected, SystemTime::now()), []);
    }

    #[test]
    fn every_problem_is_reported() {
        crate::install_crypto_provider();
        let ca = Ca::generate(TD, 365).unwrap();
        let other = Ca::generate(TD, 365).unwrap();
        let now = OffsetDateTime::now_utc();
        // Another county's node, expired, from another CA, with a key of its own.
        let expired = other
            .issue_leaf(&LeafSpec {
                uris: vec![Identity::new(TD, node("611002")).unwrap().spiffe_id()],
                hosts: vec!["n".into()],
                not_before: now - TimeDuration::days(20),
                not_after: now - TimeDuration::days(10),
                server: true,
            })
            .unwrap();
        let mut tls = material(&ca, expired);
        tls.key_pem = ca.issue(node("610702"), &["n".into()], 90).unwrap().key_pem;
        let expected = Identity::new(TD, node("610702")).unwrap();
        let found = node_files(&tls, None, &expected, SystemTime::now());
        let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert!(found.iter().all(|f| !f.warning), "{messages:?}");
        assert!(
            messages.iter().any(|m| m.starts_with("expired on")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("county/611002/node, expected")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("does not chain to the CA")),
            "{messages:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.part == Part::Key && f.message.contains("does not match")),
            "{messages:?}"
        );
    }

    #[test]
    fn a_certificate_expiring_soon_is_a_warning() {
        crate::install_crypto_provider();
        let ca = Ca::generate(TD, 365).unwrap();
        let tls = material(&ca, ca.issue(node("610702"), &["n".into()], 10).unwrap());
        let expected = Identity::new(TD, node("610702")).unwrap();
        let found = node_files(&tls, None, &expected, SystemTime::now());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].warning && found[0].message.contains("expires in 9 days"),
            "{found:?}"
        );
    }
}
