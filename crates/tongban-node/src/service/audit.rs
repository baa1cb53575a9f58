//! The audit service: a case's ledger entries, ranges of the ledger, fresh
//! signed checkpoints, the partner checkpoints this node holds, and the
//! evidence behind the ledger (its stored materials re-hashed here, the
//! receipts it gave). Auditors
//! only; a county auditor reads only cases that touched its county, and only
//! province auditors may reveal personal data. Every query is itself
//! recorded in this node's ledger (who asked for what) before it is
//! answered.
//!
//! Damaged data (an entry gone from the ledger, a material that cannot be
//! read) is `DATA_LOSS` naming what is damaged, never `INTERNAL`: it is
//! what the auditor came to find.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use tokio_stream::Stream;
use tongban_ledger::{Batch, EntryBody, MaterialRef, NewEntry, Payload, StoreError, StoredEntry};
use tongban_pki::{Identity, Principal};
use tongban_proto::audit::v1::audit_server::Audit;
use tongban_proto::audit::v1::*;
use tongban_proto::common::v1::SignedCheckpoint;
use tonic::{Request, Response, Status};

use crate::auth::caller;
use crate::ctx::Ctx;
use crate::{NodeError, view};

pub(crate) struct AuditService {
    ctx: Arc<Ctx>,
}

impl AuditService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// Records an audit query in the ledger.
    async fn record(
        &self,
        auditor: &Identity,
        what: String,
        application_id: &str,
        case_no: &str,
    ) -> Result<(), NodeError> {
        let mut batch = Batch::default();
        let payload = Payload::new(what.clone(), EntryBody::AuditQuery { query: what });
        let mut entry = NewEntry::node(auditor.spiffe_id(), &payload);
        entry.application_id = application_id.to_owned();
        entry.case_no = case_no.to_owned();
        batch.append(entry);
        self.ctx.store.commit(batch).await?;
        Ok(())
    }
}

/// The status for a store error met while answering an auditor: damage to
/// this node's data is named (`DATA_LOSS`), anything else goes through the
/// node's one mapping. Only the variants whose messages hold sequence
/// numbers, digests and paths are passed on: no personal data.
fn audit_status(e: StoreError) -> Status {
    match e {
        StoreError::MissingEntry { .. } | StoreError::Damaged { .. } => {
            tracing::warn!(error = %e, "audit found damaged data");
            Status::data_loss(format!("this node's stored data is damaged: {e}"))
        }
        other => NodeError::from(other).into(),
    }
}

/// The county whose cases alone a county auditor may see on this node
/// (None: every case, for a province auditor or on its own county's node).
fn scope(auditor: &Identity, node: &tongban_core::CountyCode) -> Option<String> {
    match &auditor.principal {
        Principal::Auditor {
            county: Some(county),
            ..
        } if county != node => Some(county.to_string()),
        _ => None,
    }
}

fn province(auditor: &Identity) -> bool {
    matches!(auditor.principal, Principal::Auditor { county: None, .. })
}

fn audit_entry(e: StoredEntry) -> AuditEntry {
    AuditEntry {
        entry: e.entry,
        payload: e.payload,
        seq: e.seq,
    }
}

/// Whether an entry's payload may be shown to an auditor of `county`: only
/// for cases that touched that county.
fn visible(
    store: &tongban_ledger::Store,
    e: &StoredEntry,
    county: &str,
    seen: &mut std::collections::HashMap<String, bool>,
) -> bool {
    let Ok(entry) = tongban_proto::common::v1::LedgerEntry::decode(e.entry.as_slice()) else {
        return false;
    };
    if entry.application_id.is_empty() {
        return false;
    }
    *seen.entry(entry.application_id.clone()).or_insert_with(|| {
        store
            .case(&entry.application_id)
            .ok()
            .flatten()
            .is_some_and(|c| {
                c.receiving_county.as_str() == county || c.home_county.as_str() == county
            })
    })
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<AuditEntry, Status>> + Send>>;
type EvidenceStream = Pin<Box<dyn Stream<Item = Result<EvidenceFrame, Status>> + Send>>;

/// What re-hashing one stored material found: what the auditor compares
/// with the digest the ledger names.
fn check_material(
    case_no: &str,
    m: &MaterialRef,
    rehashed: Result<tongban_ledger::Rehashed, StoreError>,
) -> MaterialCheck {
    let mut check = MaterialCheck {
        case_no: case_no.to_owned(),
        kind: m.kind.clone(),
        recorded_sha256: m.sha256.clone(),
        sha256: String::new(),
        recorded_size: m.size,
        size: 0,
        stored_in: if m.log.is_some() { "log" } else { "file" }.into(),
        problem: String::new(),
    };
    match rehashed {
        Ok(r) => {
            check.sha256 = r.sha256;
            check.size = r.size;
        }
        Err(e) => {
            tracing::warn!(case = %case_no, kind = %m.kind, error = %e, "audit: a stored material cannot be read");
            check.problem = match e {
                StoreError::Damaged { reason, .. } => reason,
                other => other.to_string(),
            };
        }
    }
    check
}

fn frame(f: evidence_frame::Frame) -> EvidenceFrame {
    EvidenceFrame { frame: Some(f) }
}

#[tonic::async_trait]
impl Audit for AuditService {
    type RangeStream = EntryStream;
    type EvidenceStream = EvidenceStream;

    async fn case_entries(
        &self,
        req: Request<CaseEntriesRequest>,
    ) -> Result<Response<CaseEntriesReply>, Status> {
        let auditor = caller(&req)?;
        let req = req.into_inner();
        let ctx = &self.ctx;
        let case = ctx.case(&req.case_no)?;
        if let Principal::Auditor {
            county: Some(county),
            ..
        } = &auditor.principal
            && *county != case.receiving_county
            && *county != case.home_county
        {
            tracing::warn!(auditor = %auditor, case = %case.case_no, "audit refused: case outside the auditor's county");
            return Err(NodeError::NotPermitted(format!(
                "an auditor of {county} may read only cases that touched {county}; {} is between {} and {}",
                case.case_no, case.receiving_county, case.home_county
            ))
            .into());
        }
        if req.reveal && !province(&auditor) {
            return Err(NodeError::NotPermitted(
                "only province auditors may reveal personal data".into(),
            )
            .into());
        }
        let what = if req.reveal {
            format!("case {} read with personal data revealed", case.case_no)
        } else {
            format!("case {} read", case.case_no)
        };
        self.record(&auditor, what, &case.application_id, case.case_no.as_str())
            .await?;
        tracing::info!(auditor = %auditor, case = %case.case_no, reveal = req.reveal, "audit query");
        // What the ledger holds is shown and what it lost is named, for the
        // auditor's verifier to report as it reports a gap in a range.
        let (entries, missing_seqs) = ctx
            .store
            .case_entries_held(&case.application_id)
            .map_err(audit_status)?;
        if !missing_seqs.is_empty() {
            tracing::warn!(case = %case.case_no, missing = ?missing_seqs, "audit: the case index names entries the ledger does not hold");
        }
        let entries = entries.into_iter().map(audit_entry).collect();
        Ok(Response::new(CaseEntriesReply {
            entries,
            applicant: Some(view::applicant(&case.applicant, !req.reveal)),
            case_no: case.case_no.to_string(),
            receiving_county: case.receiving_county.to_string(),
            home_county: case.home_county.to_string(),
            county: ctx.county.to_string(),
            receiving_county_name: view::county_name(&ctx.directory, &case.receiving_county),
            home_county_name: view::county_name(&ctx.directory, &case.home_county),
            missing_seqs,
        }))
    }

    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<EntryStream>, Status> {
        let auditor = caller(&req)?;
        let req = req.into_inner();
        let ctx = &self.ctx;
        // A county auditor sees every entry (the chain needs them all) but
        // only the payloads of cases that touched its county; the others are
        // withheld, which the entries' payload digests allow.
        let scope = scope(&auditor, &ctx.county);
        let (head, _) = ctx.store.head().map_err(NodeError::from)?;
        let to = if req.to_seq == 0 {
            head
        } else {
            req.to_seq.min(head)
        };
        let from = req.from_seq.max(1);
        self.record(&auditor, format!("ledger range {from}..={to} read"), "", "")
            .await?;
        // Streamed in pages so a long ledger never sits in memory whole.
        let store = ctx.store.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut seen: std::collections::HashMap<String, bool> =
                std::collections::HashMap::new();
            let mut next = from;
            while next <= to {
                let last = to.min(next.saturating_add(1023));
                let page = match store.entries(next, last) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(audit_status(e))).await;
                        return;
                    }
                };
                for mut e in page {
                    if let Some(county) = &scope
                        && !visible(&store, &e, county, &mut seen)
                    {
                        e.payload.clear();
                    }
                    if tx.send(Ok(audit_entry(e))).await.is_err() {
                        return;
                    }
                }
                next = last + 1;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn latest_checkpoint(
        &self,
        req: Request<CheckpointRequest>,
    ) -> Result<Response<SignedCheckpoint>, Status> {
        let auditor = caller(&req)?;
        self.record(&auditor, "checkpoint requested".into(), "", "")
            .await?;
        Ok(Response::new(self.ctx.checkpoint(true)?))
    }

    async fn partner_checkpoints(
        &self,
        req: Request<PartnerCheckpointsRequest>,
    ) -> Result<Response<PartnerCheckpointsReply>, Status> {
        let auditor = caller(&req)?;
        self.record(&auditor, "partner checkpoints read".into(), "", "")
            .await?;
        let checkpoints = self
            .ctx
            .store
            .partner_checkpoints()
            .map_err(NodeError::from)?
            .into_iter()
            .filter_map(|(_, _, bytes)| SignedCheckpoint::decode(bytes.as_slice()).ok())
            .collect();
        Ok(Response::new(PartnerCheckpointsReply { checkpoints }))
    }

    async fn evidence(
        &self,
        req: Request<EvidenceRequest>,
    ) -> Result<Response<EvidenceStream>, Status> {
        let auditor = caller(&req)?;
        let req = req.into_inner();
        let ctx = &self.ctx;
        let scope = scope(&auditor, &ctx.county);
        let in_scope = |c: &tongban_ledger::CaseRecord| {
            scope.as_deref().is_none_or(|county| {
                c.receiving_county.as_str() == county || c.home_county.as_str() == county
            })
        };
        // Every case's evidence: the receipts are listed on one blocking
        // thread while the cases are on another (each a scan of thousands
        // of records, which took a runtime thread and ran one after the
        // other; together they were a third of an audit of 10,000 cases).
        let mut all_received = None;
        let cases = if req.case_no.is_empty() {
            self.record(&auditor, "evidence read".into(), "", "")
                .await?;
            let store = ctx.store.clone();
            all_received = Some(tokio::task::spawn_blocking(move || store.received_all()));
            let store = ctx.store.clone();
            tokio::task::spawn_blocking(move || store.cases())
                .await
                .map_err(|e| Status::internal(format!("listing the cases: {e}")))?
                .map_err(NodeError::from)?
        } else {
            let case = ctx.case(&req.case_no)?;
            if !in_scope(&case) {
                return Err(NodeError::NotPermitted(format!(
                    "an auditor of {0} may read only cases that touched {0}; {1} is between {2} and {3}",
                    scope.unwrap_or_default(),
                    case.case_no,
                    case.receiving_county,
                    case.home_county
                ))
                .into());
            }
            self.record(
                &auditor,
                format!("case {} evidence read", case.case_no),
                &case.application_id,
                case.case_no.as_str(),
            )
            .await?;
            vec![case]
        };
        let one_case = !req.case_no.is_empty();
        let mut case_nos = std::collections::HashMap::new();
        let mut materials = Vec::new();
        // The handoffs one case received, looked up by key: a trace costs
        // the case, not a scan of every receipt the node ever gave.
        let mut received_keys = Vec::new();
        for case in cases.into_iter().filter(|c| in_scope(c)) {
            if one_case {
                for h in case.handoffs.iter().filter(|h| !h.sent) {
                    received_keys.push((h.peer.to_string(), h.handoff_id.clone()));
                }
            }
            let no = case.case_no.to_string();
            // The result document is stored on both sides: at home from the
            // reviewer's upload, at the window as it came with the decision.
            for m in case.materials.iter().chain(&case.review.result) {
                materials.push((no.clone(), m.clone()));
            }
            case_nos.insert(case.application_id, no);
        }
        let received = if let Some(listing) = all_received {
            listing
                .await
                .map_err(|e| Status::internal(format!("listing the receipts: {e}")))?
                .map_err(NodeError::from)?
        } else {
            let mut found = Vec::with_capacity(received_keys.len());
            for (from, handoff_id) in received_keys {
                if let Some(r) = ctx
                    .store
                    .received(&from, &handoff_id)
                    .map_err(NodeError::from)?
                {
                    found.push((from, handoff_id, r));
                }
            }
            found
        };
        let receipts: Vec<GivenReceipt> = received
            .into_iter()
            .filter_map(|(from, handoff_id, r)| {
                let case_no = case_nos.get(&r.application_id)?.clone();
                Some(GivenReceipt {
                    from,
                    handoff_id,
                    case_no,
                    envelope_sha256: r.envelope_sha256,
                    signed_receipt: r.signed_receipt,
                })
            })
            .collect();
        let header = EvidenceHeader {
            materials: materials.len() as u64,
            material_bytes: materials.iter().map(|(_, m)| m.size).sum(),
            receipts: receipts.len() as u64,
        };
        tracing::info!(auditor = %auditor, materials = header.materials, receipts = header.receipts, "audit evidence query");
        // A blocking thread re-reads the materials (several at once, see
        // `Store::rehash_materials`) and sends the results in order; the
        // channel holds enough of them that hashing and sending overlap and
        // small materials' frames go out together.
        let store = ctx.store.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::task::spawn_blocking(move || {
            let send = |f| tx.blocking_send(Ok(frame(f))).is_ok();
            if !send(evidence_frame::Frame::Header(header)) {
                return;
            }
            let (case_nos, materials): (Vec<String>, Vec<MaterialRef>) =
                materials.into_iter().unzip();
            let mut sent_all = true;
            store.rehash_materials(&materials, |i, rehashed| {
                sent_all = send(evidence_frame::Frame::Material(check_material(
                    &case_nos[i],
                    &materials[i],
                    rehashed,
                )));
                sent_all
            });
            if !sent_all {
                return;
            }
            for r in receipts {
                if !send(evidence_frame::Frame::Receipt(r)) {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
