//! What every service, the courier and the carrier endpoint share: the
//! node's identity, directory, store, signer and clock, and the per-case
//! locks. It sits below the services so that `flow`, `view` and the courier
//! can use it without pointing up into `service`.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message;
use tokio::sync::Notify;
use tongban_core::{CountyCode, Directory};
use tongban_ledger::{CaseRecord, Side, Store};
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{NodeSigner, TrustAnchor};
use tongban_proto::common::v1::{Checkpoint, SignedCheckpoint};

use crate::NodeError;
use crate::clock::Clock;
use crate::config::{Delivery, Limits, MailPolicy, NodeConfig, Review};
use crate::locks::{CaseGuard, CaseLocks};
use crate::metrics::Metrics;

/// The partners whose outbox entries the courier may not have seen yet, and
/// the wake-up that tells it. A commit that queues a handoff names its
/// partner here once the commit is durable; the courier takes the names and
/// reads only those partners' outboxes, so its cost follows the partners
/// with work, not the size of the directory.
#[derive(Default)]
pub(crate) struct Wake {
    partners: std::sync::Mutex<BTreeSet<String>>,
    notify: Notify,
}

impl Wake {
    /// `to` has entries queued (or queued again) in the store: tell the courier.
    pub(crate) fn send_to(&self, to: &str) {
        let mut partners = self.partners.lock().unwrap_or_else(|p| p.into_inner());
        if !partners.contains(to) {
            partners.insert(to.to_owned());
        }
        drop(partners);
        self.notify.notify_one();
    }

    /// The partners named since the last call.
    pub(crate) fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.partners.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until a partner is named (at once if one was since the last wait).
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }
}

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
    /// The partners with new outbox entries, and the courier's wake-up.
    pub(crate) wake: Wake,
    /// Per-case locks for read-change-commit.
    pub(crate) locks: CaseLocks,
    /// Per-request-id locks (see `requests::begin`), taken before a case lock.
    pub(crate) request_locks: CaseLocks,
    pub(crate) review: Review,
    pub(crate) mail: MailPolicy,
    /// Counters the courier bumps; gauges computed when scraped.
    pub(crate) metrics: Metrics,
    /// The checkpoint signed last, with its seq.
    last_checkpoint: std::sync::Mutex<Option<(u64, SignedCheckpoint)>>,
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
            wake: Wake::default(),
            locks: CaseLocks::default(),
            request_locks: CaseLocks::default(),
            review: config.review,
            mail: config.mail,
            metrics: Metrics::new(config.county.as_str(), &config.data_dir),
            last_checkpoint: std::sync::Mutex::new(None),
        }
    }

    /// This node's SPIFFE ID, the actor of entries the node writes itself.
    pub(crate) fn node_id(&self) -> String {
        self.signer.identity().spiffe_id()
    }

    /// A case by number, which must exist on this node.
    pub(crate) fn case(&self, case_no: &str) -> Result<CaseRecord, NodeError> {
        let case_no = checked_no(case_no)?;
        self.store
            .case_by_no(case_no)?
            .ok_or_else(|| self.no_case(case_no))
    }

    /// No case `case_no` (already checked by [`checked_no`]) on this node.
    fn no_case(&self, case_no: &str) -> NodeError {
        use tongban_core::{Reason, Refusal};
        let issuer = tongban_core::CaseNo::parse(case_no)
            .map(|p| p.county().to_string())
            .unwrap_or_default();
        NodeError::refused(
            Refusal::new(
                Reason::CaseNotFound,
                vec![
                    ("case_no", case_no.to_owned()),
                    ("county", self.county.to_string()),
                    ("issuer", issuer),
                ],
            )
            .at("case_no"),
            format!("no case {case_no} on the node of {}", self.county),
        )
    }

    /// A checkpoint of the durable ledger head, signed by this node; reuses
    /// the last one when that head has not moved. `keep` also stores it in
    /// the node's own history (the periodic and the auditors' checkpoints);
    /// the ones handoff streams carry are not stored, since that write cost
    /// a sync of its own in the next flush.
    pub(crate) fn checkpoint(&self, keep: bool) -> Result<SignedCheckpoint, NodeError> {
        // The durable head, not the head: no flush per handoff stream (it was
        // one fsync in the latency path), and never a checkpoint over entries
        // a crash could still take back.
        let (seq, hash) = self.store.durable_head();
        let last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reuse = match last {
            Some((last, signed)) if last == seq => Some(signed),
            _ => match self.store.latest_checkpoint()? {
                Some((last, bytes)) if last == seq => {
                    SignedCheckpoint::decode(bytes.as_slice()).ok()
                }
                _ => None,
            },
        };
        if let Some(signed) = reuse {
            if keep {
                self.store.put_checkpoint(seq, &signed.encode_to_vec())?;
            }
            return Ok(signed);
        }
        let checkpoint = Checkpoint {
            version: crate::protocol::FORMAT_VERSION,
            county: self.county.to_string(),
            seq,
            head_hash: hash.to_vec(),
            at: self.clock.now_rfc3339(),
        }
        .encode_to_vec();
        let signature = self
            .signer
            .sign(crate::protocol::CHECKPOINT_DOMAIN, &checkpoint)?;
        let signed = SignedCheckpoint {
            checkpoint,
            signature,
            signer_certificate: self.signer.certificate_der().to_vec(),
        };
        if keep {
            self.store.put_checkpoint(seq, &signed.encode_to_vec())?;
        }
        *self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((seq, signed.clone()));
        Ok(signed)
    }

    /// The checkpoint that opens a handoff stream: the latest one signed,
    /// as it is; only a node that has signed none since it started signs
    /// one here. Signing one per stream put a signature in every handoff's
    /// latency; the courier signs the next ([`Ctx::checkpoint`]) once a
    /// batch's receipts are recorded, off the path of any handoff: a
    /// stream carries the head as it was after an earlier batch.
    pub(crate) fn stream_checkpoint(&self) -> Result<SignedCheckpoint, NodeError> {
        let last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match last {
            Some((_, signed)) => Ok(signed),
            None => self.checkpoint(false),
        }
    }

    /// A case by number, which must be on this node's `side`.
    pub(crate) fn case_on(&self, case_no: &str, side: Side) -> Result<CaseRecord, NodeError> {
        self.on_side(self.case(case_no)?, case_no, side)
    }

    /// `case` if it is on `side`; else the case is not found there.
    fn on_side(
        &self,
        case: CaseRecord,
        case_no: &str,
        side: Side,
    ) -> Result<CaseRecord, NodeError> {
        if case.side != side {
            let (side_name, message) = match side {
                Side::Window => (
                    "window",
                    format!(
                        "case {case_no} was not taken in at the window of {}",
                        self.county
                    ),
                ),
                Side::Home => (
                    "home",
                    format!(
                        "case {case_no} was not handed to {} for review",
                        self.county
                    ),
                ),
            };
            return Err(NodeError::refused(
                tongban_core::Refusal::new(
                    tongban_core::Reason::CaseNotHere,
                    vec![
                        ("case_no", case.case_no.to_string()),
                        ("county", self.county.to_string()),
                        ("side", side_name.to_owned()),
                    ],
                )
                .at("case_no"),
                message,
            ));
        }
        Ok(case)
    }

    /// A case on `side`, locked, and read once, under the lock: the number
    /// index gives the id to lock without reading the record.
    pub(crate) async fn locked_case(
        &self,
        case_no: &str,
        side: Side,
    ) -> Result<(CaseGuard, CaseRecord), NodeError> {
        let case_no = checked_no(case_no)?;
        let id = self
            .store
            .case_id_by_no(case_no)?
            .ok_or_else(|| self.no_case(case_no))?;
        let guard = self.locks.lock(&id).await;
        let case = self.store.case(&id)?.ok_or_else(|| self.no_case(case_no))?;
        Ok((guard, self.on_side(case, case_no, side)?))
    }
}

/// A case number as given, trimmed, if it is well formed.
fn checked_no(case_no: &str) -> Result<&str, NodeError> {
    let case_no = case_no.trim();
    // The number's shape is checked first, so that a mistyped one is
    // named as such rather than as a case not found.
    tongban_core::CaseNo::parse(case_no).map_err(|e| {
        NodeError::refused(tongban_core::Refusal::from(&e).at("case_no"), e.to_string())
    })?;
    Ok(case_no)
}
