//! The sandbox's certificates: a CA and the certificates of named principals
//! kept under `certs/` exactly as `tongban certs` writes them (created, or
//! reused and renewed where they are missing or wrong), and certificates
//! made on the spot in memory, odd ones for negative tests included.

use std::path::Path;

use time::OffsetDateTime;
use tongban_pki::Principal;
use tongban_pki::issue::{CA_CERT, Ca, LeafSpec, PemPair, file_stem};
use tongban_pki::tls::TlsMaterial;

use crate::SandboxError;

/// Hosts every certificate made here serves (nodes listen on loopback).
const HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

fn hosts() -> Vec<String> {
    HOSTS.iter().map(|h| (*h).to_owned()).collect()
}

/// A CA and the means to issue from it.
pub struct Pki {
    /// The CA (its key included).
    pub ca: Ca,
}

impl Pki {
    /// A new CA for the example's trust domain, valid for 30 days.
    ///
    /// # Panics
    /// If rcgen cannot make a key pair, which it always can with ring.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self::generate(crate::TRUST_DOMAIN, 30).unwrap_or_else(|e| panic!("generate a CA: {e}"))
    }

    /// A new CA for `trust_domain`, valid for `days`, in memory only.
    pub fn generate(trust_domain: &str, days: u32) -> Result<Self, SandboxError> {
        tongban_pki::install_crypto_provider();
        Ok(Self {
            ca: Ca::generate(trust_domain, days)?,
        })
    }

    fn material(&self, pair: PemPair) -> TlsMaterial {
        TlsMaterial {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    }

    /// A certificate for `principal`, valid for ten days, for loopback.
    pub fn try_issue(&self, principal: Principal) -> Result<TlsMaterial, SandboxError> {
        Ok(self.material(self.ca.issue(principal, &hosts(), 10)?))
    }

    /// Like [`Pki::try_issue`].
    ///
    /// # Panics
    /// If the certificate cannot be made, which for a typed principal is a
    /// bug and not something the environment causes.
    pub fn issue(&self, principal: Principal) -> TlsMaterial {
        self.try_issue(principal)
            .unwrap_or_else(|e| panic!("issue a certificate: {e}"))
    }

    /// A certificate exactly as `spec` says (odd ones for negative tests).
    ///
    /// # Panics
    /// If rcgen cannot sign it.
    pub fn leaf(&self, spec: LeafSpec) -> TlsMaterial {
        let pair = self
            .ca
            .issue_leaf(&spec)
            .unwrap_or_else(|e| panic!("issue a leaf: {e}"));
        self.material(pair)
    }

    /// A client leaf for `uris`, valid from an hour ago for a day.
    pub fn spec(uris: &[&str]) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            uris: uris.iter().map(|u| u.to_string()).collect(),
            hosts: vec!["127.0.0.1".into()],
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(1),
            server: false,
        }
    }
}

/// What [`provision`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Whether it created the CA (else it reused one).
    pub created_ca: bool,
    /// How many certificates it issued (all of them with a new CA).
    pub issued: usize,
}

/// Creates the CA in `certs` if there is none, then issues every
/// certificate of `principals` that is missing, expiring or otherwise wrong
/// (all of them for a new CA). Node certificates serve loopback.
pub fn provision(
    certs: &Path,
    trust_domain: &str,
    principals: &[Principal],
    (ca_days, leaf_days): (u32, u32),
) -> Result<(Pki, Provisioned), SandboxError> {
    tongban_pki::install_crypto_provider();
    let created_ca = !certs.join(CA_CERT).exists();
    let ca = if created_ca {
        let ca = Ca::generate(trust_domain, ca_days)?;
        ca.write(certs, true)?;
        ca
    } else {
        let ca = Ca::load(certs)?;
        if ca.trust_domain() != trust_domain {
            return Err(SandboxError::TrustDomain {
                path: certs.to_owned(),
                found: ca.trust_domain().to_owned(),
                expected: trust_domain.to_owned(),
            });
        }
        ca
    };
    let troubled: Vec<String> = if created_ca {
        Vec::new()
    } else {
        tongban_pki::issue::list(certs)?
            .into_iter()
            .filter(|r| r.file != CA_CERT && !r.problems.is_empty())
            .map(|r| r.file)
            .collect()
    };
    let node_hosts = hosts();
    let mut issued = 0;
    for principal in principals {
        let stem = file_stem(principal);
        let present = certs.join(format!("{stem}.crt")).exists()
            && certs.join(format!("{stem}.key")).exists();
        if created_ca || !present || troubled.contains(&format!("{stem}.crt")) {
            let hosts: &[String] = match principal {
                Principal::Node { .. } => &node_hosts,
                _ => &[],
            };
            ca.issue_to_dir(certs, principal.clone(), hosts, leaf_days, true)?;
            issued += 1;
        }
    }
    Ok((Pki { ca }, Provisioned { created_ca, issued }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_provision_reuses_and_renews_only_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let who = [
            crate::node(crate::HANTAI),
            crate::clerk(crate::HANTAI, "wang"),
        ];
        let (_, first) = provision(&certs, crate::TRUST_DOMAIN, &who, (3650, 365)).unwrap();
        assert_eq!(
            first,
            Provisioned {
                created_ca: true,
                issued: 2
            }
        );
        std::fs::remove_file(certs.join("clerk-610702-wang.crt")).unwrap();
        let (_, second) = provision(&certs, crate::TRUST_DOMAIN, &who, (3650, 365)).unwrap();
        assert_eq!(
            second,
            Provisioned {
                created_ca: false,
                issued: 1
            }
        );
        let err = provision(&certs, "other.tongban", &who, (3650, 365))
            .err()
            .expect("another trust domain is refused");
        assert!(err.to_string().contains("other.tongban"), "{err}");
    }
}
