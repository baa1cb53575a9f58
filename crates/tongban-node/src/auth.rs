//! Who may call what. Every service is wrapped in a [`Gate`] that reads the
//! caller's identity from the single URI SAN of the client certificate
//! (already chained to the federation CA by the TLS layer), checks it against
//! the service's rule, and hands the typed [`Caller`] to handlers through
//! request extensions. Handlers never look at certificates.

use std::sync::Arc;

use tongban_core::{CountyCode, Directory};
use tongban_pki::{Identity, Principal};
use tonic::{Request, Status};

/// The audience of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Node-to-node: nodes of counties in the directory.
    Federation,
    /// Clerks of this node's county.
    Window,
    /// Reviewers of this node's county.
    Review,
    /// Clerks and reviewers of this node's county (mail).
    Mail,
    /// Auditors (province-wide, or county auditors; per-case checks follow in the handler).
    Audit,
    /// Any identity of the federation (health, reflection).
    Member,
}

/// The verified identity of the caller, put in request extensions by [`Gate`].
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// Reads the [`Caller`] a [`Gate`] stored. A request that reached a handler
/// without one is a wiring bug, reported as INTERNAL rather than trusted.
pub fn caller<T>(req: &Request<T>) -> Result<Identity, Status> {
    req.extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::internal("caller identity missing"))
}

/// An interceptor enforcing one [`Access`] rule.
#[derive(Clone)]
pub struct Gate {
    access: Access,
    county: CountyCode,
    directory: Arc<Directory>,
}

impl Gate {
    /// A gate for `access` on the node of `county`.
    pub fn new(access: Access, county: CountyCode, directory: Arc<Directory>) -> Self {
        Self {
            access,
            county,
            directory,
        }
    }

    fn identify<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let identity = Identity::from_cert_der(leaf.as_ref()).map_err(|e| {
            tracing::warn!(service = ?self.access, reason = %e, "caller refused");
            Status::unauthenticated(e.to_string())
        })?;
        if identity.trust_domain != self.directory.trust_domain {
            tracing::warn!(service = ?self.access, caller = %identity, "caller from another trust domain refused");
            return Err(Status::unauthenticated(format!(
                "{identity} is not in trust domain {}",
                self.directory.trust_domain
            )));
        }
        Ok(identity)
    }

    fn allows(&self, identity: &Identity) -> Result<(), String> {
        let own = &self.county;
        match (&self.access, &identity.principal) {
            (Access::Member, _) => Ok(()),
            (Access::Federation, Principal::Node { county }) => {
                if self.directory.county(county).is_some() {
                    Ok(())
                } else {
                    Err(format!(
                        "county {county} is not in the federation directory"
                    ))
                }
            }
            (Access::Federation, _) => {
                Err("only county nodes may call the federation service".into())
            }
            (Access::Window, Principal::Clerk { county, .. }) if county == own => Ok(()),
            (Access::Window, Principal::Clerk { county, .. }) => Err(format!(
                "a clerk of {county} may not use the window of {own}"
            )),
            (Access::Window, _) => Err("only clerks may use the window service".into()),
            (Access::Review, Principal::Reviewer { county, .. }) if county == own => Ok(()),
            (Access::Review, Principal::Reviewer { county, .. }) => {
                Err(format!("a reviewer of {county} may not review at {own}"))
            }
            (Access::Review, _) => Err("only reviewers may use the review service".into()),
            (
                Access::Mail,
                Principal::Clerk { county, .. } | Principal::Reviewer { county, .. },
            ) if county == own => Ok(()),
            (
                Access::Mail,
                Principal::Clerk { county, .. } | Principal::Reviewer { county, .. },
            ) => Err(format!(
                "a clerk or reviewer of {county} may not record mail at {own}"
            )),
            (Access::Mail, _) => Err("only clerks and reviewers may use the mail service".into()),
            (Access::Audit, Principal::Auditor { .. }) => Ok(()),
            (Access::Audit, _) => Err("only auditors may use the audit service".into()),
        }
    }
}

impl tonic::service::Interceptor for Gate {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let identity = self.identify(&req)?;
        if let Err(reason) = self.allows(&identity) {
            tracing::warn!(service = ?self.access, caller = %identity, %reason, "caller refused");
            return Err(Status::permission_denied(reason));
        }
        req.extensions_mut().insert(Caller(identity));
        Ok(req)
    }
}

/// Whether `who` may read the materials of a case held on this node: the
/// reviewer of the case's home county (on the home side) or the clerk of
/// its receiving county (on the window side). The service's [`Gate`] has
/// already tied the caller to this node's county; this ties the case to
/// it too, so one rule names both. Refusals name the counties.
pub(crate) fn may_read_material(
    who: &Identity,
    case: &tongban_ledger::CaseRecord,
) -> Result<(), String> {
    use tongban_ledger::Side;
    let no = &case.case_no;
    match (&who.principal, case.side) {
        (Principal::Reviewer { county, .. }, Side::Home) if *county == case.home_county => Ok(()),
        (Principal::Reviewer { county, .. }, _) => Err(format!(
            "a reviewer of {county} may not read the materials of case {no}, whose home county is {}",
            case.home_county
        )),
        (Principal::Clerk { county, .. }, Side::Window) if *county == case.receiving_county => {
            Ok(())
        }
        (Principal::Clerk { county, .. }, _) => Err(format!(
            "a clerk of {county} may not read the materials of case {no}, taken in at {}",
            case.receiving_county
        )),
        _ => Err("only the case's clerk or reviewer may read its materials".into()),
    }
}
