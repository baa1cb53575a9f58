//! SPIFFE identities: the one URI SAN every federation certificate carries,
//! parsed once into a typed [`Identity`] that request handlers read.
//!
//! Forms (docs/cli.md):
//! `spiffe://TD/county/CODE/node`, `spiffe://TD/county/CODE/clerk/NAME`,
//! `spiffe://TD/county/CODE/reviewer/NAME`, `spiffe://TD/auditor/NAME`,
//! `spiffe://TD/county/CODE/auditor/NAME`.

use std::fmt;

use tongban_core::CountyCode;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// Who a certificate belongs to, without the trust domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A county node (server and node-to-node client).
    Node {
        /// The node's county.
        county: CountyCode,
    },
    /// A window clerk of a county.
    Clerk {
        /// The clerk's county.
        county: CountyCode,
        /// The clerk's name (a SPIFFE path segment).
        name: String,
    },
    /// A reviewer at a county's home authority.
    Reviewer {
        /// The reviewer's county.
        county: CountyCode,
        /// The reviewer's name.
        name: String,
    },
    /// An auditor: province-wide when `county` is `None`.
    Auditor {
        /// The county the auditor is limited to, if any.
        county: Option<CountyCode>,
        /// The auditor's name.
        name: String,
    },
}

/// A verified federation identity: trust domain plus principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The SPIFFE trust domain, e.g. `shaanxi.tongban`.
    pub trust_domain: String,
    /// Who it is.
    pub principal: Principal,
}

impl Identity {
    /// Builds an identity after checking the trust domain and name syntax.
    pub fn new(trust_domain: &str, principal: Principal) -> Result<Self, PkiError> {
        check_trust_domain(trust_domain)?;
        match &principal {
            Principal::Node { .. } => {}
            Principal::Clerk { name, .. }
            | Principal::Reviewer { name, .. }
            | Principal::Auditor { name, .. } => check_name(name)?,
        }
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            principal,
        })
    }

    /// The county this identity belongs to (`None` for a province auditor).
    pub fn county(&self) -> Option<&CountyCode> {
        match &self.principal {
            Principal::Node { county }
            | Principal::Clerk { county, .. }
            | Principal::Reviewer { county, .. } => Some(county),
            Principal::Auditor { county, .. } => county.as_ref(),
        }
    }

    /// The SPIFFE ID, e.g. `spiffe://shaanxi.tongban/county/610702/node`.
    pub fn spiffe_id(&self) -> String {
        self.to_string()
    }

    /// Parses a SPIFFE ID.
    pub fn parse(uri: &str) -> Result<Self, PkiError> {
        let bad = |why: &str| PkiError::Identity(format!("{uri:?}: {why}"));
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| bad("not a spiffe:// uri"))?;
        let (td, path) = rest.split_once('/').ok_or_else(|| bad("no path"))?;
        let segments: Vec<&str> = path.split('/').collect();
        let county = |code: &str| -> Result<CountyCode, PkiError> {
            code.parse()
                .map_err(|e| bad(&format!("bad county code: {e}")))
        };
        let principal = match segments.as_slice() {
            ["county", code, "node"] => Principal::Node {
                county: county(code)?,
            },
            ["county", code, "clerk", name] => Principal::Clerk {
                county: county(code)?,
                name: (*name).to_owned(),
            },
            ["county", code, "reviewer", name] => Principal::Reviewer {
                county: county(code)?,
                name: (*name).to_owned(),
            },
            ["county", code, "auditor", name] => Principal::Auditor {
                county: Some(county(code)?),
                name: (*name).to_owned(),
            },
            ["auditor", name] => Principal::Auditor {
                county: None,
                name: (*name).to_owned(),
            },
            _ => return Err(bad("not a tongban node, clerk, reviewer or auditor path")),
        };
        Self::new(td, principal).map_err(|e| bad(&e.to_string()))
    }

    /// Reads the identity from the first certificate of a PEM file, as
    /// [`Identity::from_cert_der`] does.
    pub fn from_cert_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_cert_der(&crate::issue::pem_to_der(pem, "certificate")?)
    }

    /// Reads the identity from a DER certificate: it must carry exactly one
    /// URI SAN, and that URI must be a tongban SPIFFE ID.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::malformed("certificate", e))?;
        Self::from_cert(&cert)
    }

    pub(crate) fn from_cert(cert: &X509Certificate<'_>) -> Result<Self, PkiError> {
        let uris = uri_sans(cert)?;
        match uris.as_slice() {
            [one] => Self::parse(one),
            [] => Err(PkiError::Identity(
                "certificate has no URI SAN (a SPIFFE ID is required)".into(),
            )),
            more => Err(PkiError::Identity(format!(
                "certificate has {} URI SANs; exactly one is allowed",
                more.len()
            ))),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let td = &self.trust_domain;
        match &self.principal {
            Principal::Node { county } => write!(f, "spiffe://{td}/county/{county}/node"),
            Principal::Clerk { county, name } => {
                write!(f, "spiffe://{td}/county/{county}/clerk/{name}")
            }
            Principal::Reviewer { county, name } => {
                write!(f, "spiffe://{td}/county/{county}/reviewer/{name}")
            }
            Principal::Auditor {
                county: Some(county),
                name,
            } => write!(f, "spiffe://{td}/county/{county}/auditor/{name}"),
            Principal::Auditor { county: None, name } => {
                write!(f, "spiffe://{td}/auditor/{name}")
            }
        }
    }
}

/// All URI SANs of a certificate.
pub(crate) fn uri_sans(cert: &X509Certificate<'_>) -> Result<Vec<String>, PkiError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::malformed("subject alternative name", e))?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A trust domain: lowercase letters, digits, dots, dashes (SPIFFE spec).
pub(crate) fn check_trust_domain(td: &str) -> Result<(), PkiError> {
    if td.is_empty()
        || !td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
    {
        return Err(PkiError::Identity(format!(
            "trust domain {td:?} must be lowercase letters, digits, '.', '-' or '_'"
        )));
    }
    Ok(())
}

/// A person's name as a SPIFFE path segment: 1-64 of `[A-Za-z0-9._-]`, not `.`/`..`.
pub(crate) fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(PkiError::Identity(format!(
            "name {name:?} must be 1-64 characters of A-Z a-z 0-9 . - _ (a SPIFFE path segment)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_form() {
        for id in [
            "spiffe://shaanxi.tongban/county/610702/node",
            "spiffe://shaanxi.tongban/county/610702/clerk/wang",
            "spiffe://shaanxi.tongban/county/611002/reviewer/li.na",
            "spiffe://shaanxi.tongban/county/610113/auditor/zhao",
            "spiffe://shaanxi.tongban/auditor/province-1",
        ] {
            assert_eq!(Identity::parse(id).unwrap().to_string(), id);
        }
    }

    #[test]
    fn refuses_malformed_ids() {
        for (id, why) in [
            ("https://shaanxi.tongban/county/610702/node", "spiffe://"),
            ("spiffe://shaanxi.tongban/county/61070/node", "county code"),
            (
                "spiffe://shaanxi.tongban/county/610702/admin/x",
                "not a tongban",
            ),
            ("spiffe://Shaanxi/county/610702/node", "trust domain"),
            ("spiffe://shaanxi.tongban/county/610702/clerk/a b", "name"),
            ("spiffe://shaanxi.tongban/county/610702/clerk/..", "name"),
            ("spiffe://shaanxi.tongban", "no path"),
        ] {
            let err = Identity::parse(id).unwrap_err().to_string();
            assert!(err.contains(why), "{id}: {err}");
        }
    }

    #[test]
    fn county_of_each_principal() {
        let node = Identity::parse("spiffe://td/county/610702/node").unwrap();
        assert_eq!(node.county().unwrap().as_str(), "610702");
        let province = Identity::parse("spiffe://td/auditor/a").unwrap();
        assert!(province.county().is_none());
    }
}
