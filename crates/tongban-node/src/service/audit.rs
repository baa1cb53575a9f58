//! The audit service: a case's ledger entries, ranges of the ledger, fresh
//! signed checkpoints and the partner checkpoints this node holds. Auditors
//! only; a county auditor reads only cases that touched its county, and only
//! province auditors may reveal personal data. Every query is itself
//! recorded in this node's ledger (who asked for what) before it is
//! answered.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use tokio_stream::Stream;
use tongban_ledger::{Batch, EntryBody, NewEntry, Payload, StoredEntry};
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

#[tonic::async_trait]
impl Audit for AuditService {
    type RangeStream = EntryStream;

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
        let entries = ctx
            .store
            .case_entries(&case.application_id)
            .map_err(NodeError::from)?
            .into_iter()
            .map(audit_entry)
            .collect();
        Ok(Response::new(CaseEntriesReply {
            entries,
            applicant: Some(view::applicant(&case.applicant, !req.reveal)),
            case_no: case.case_no.to_string(),
            receiving_county: case.receiving_county.to_string(),
            home_county: case.home_county.to_string(),
            county: ctx.county.to_string(),
            receiving_county_name: view::county_name(&ctx.directory, &case.receiving_county),
            home_county_name: view::county_name(&ctx.directory, &case.home_county),
        }))
    }

    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<EntryStream>, Status> {
        let auditor = caller(&req)?;
        let req = req.into_inner();
        let ctx = &self.ctx;
        // A county auditor sees every entry (the chain needs them all) but
        // only the payloads of cases that touched its county; the others are
        // withheld, which the entries' payload digests allow.
        let scope = match &auditor.principal {
            Principal::Auditor {
                county: Some(county),
                ..
            } if county != &ctx.county => Some(county.to_string()),
            _ => None,
        };
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
                        let _ = tx.send(Err(Status::from(NodeError::from(e)))).await;
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
}
