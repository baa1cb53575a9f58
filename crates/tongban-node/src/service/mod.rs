//! The gRPC service implementations, one module per service, and the
//! context they share.

mod audit;
mod federation;
mod review;
mod window;

use std::sync::Arc;

use tokio::sync::Notify;
use tongban_core::{CountyCode, Directory};
use tongban_ledger::{CaseRecord, Store};
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{NodeSigner, TrustAnchor};

pub(crate) use audit::AuditService;
pub(crate) use federation::FederationService;
pub(crate) use review::ReviewService;
pub(crate) use window::WindowService;

use crate::NodeError;
use crate::clock::Clock;
use crate::config::{Delivery, Limits, NodeConfig};

/// What every service and the courier share.
pub(crate) struct Ctx {
    pub(crate) county: CountyCode,
    pub(crate) directory: Arc<Directory>,
    pub(crate) limits: Limits,
    pub(crate) delivery: Delivery,
    pub(crate) store: Arc<Store>,
    pub(crate) signer: Arc<NodeSigner>,
    pub(crate) anchor: TrustAnchor,
    pub(crate) tls: TlsMaterial,
    pub(crate) clock: Clock,
    /// Wakes the courier when the outbox gains an entry.
    pub(crate) wake: Notify,
}

impl Ctx {
    pub(crate) fn new(config: &NodeConfig, store: Arc<Store>) -> Self {
        Self {
            county: config.county.clone(),
            directory: config.directory.clone(),
            limits: config.limits,
            delivery: config.delivery,
            store,
            signer: config.signer.clone(),
            anchor: config.anchor.clone(),
            tls: config.tls.clone(),
            clock: config.clock.clone(),
            wake: Notify::new(),
        }
    }

    /// This node's SPIFFE ID, the actor of entries the node writes itself.
    pub(crate) fn node_id(&self) -> String {
        self.signer.identity().spiffe_id()
    }

    /// A case by number, which must exist on this node.
    pub(crate) fn case(&self, case_no: &str) -> Result<CaseRecord, NodeError> {
        let case_no = case_no.trim();
        tongban_core::CaseNo::parse(case_no)
            .map_err(|e| NodeError::Invalid(format!("case number: {e}")))?;
        self.store.case_by_no(case_no)?.ok_or_else(|| {
            NodeError::NotFound(format!("no case {case_no} on the node of {}", self.county))
        })
    }
}
