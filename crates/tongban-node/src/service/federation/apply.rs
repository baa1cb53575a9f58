//! What an accepted envelope does to this node's copy of its case, decided
//! under the case's lock at commit time (so a reviewer's concurrent change
//! is not lost): a new case, a supplement, or a step the other side reports
//! — the last only if that side may report it (`authorize`).

use tongban_core::{AuthorityError, CaseEvent, Report};
use tongban_core::{CaseState, CountyCode};
use tongban_ledger::{CaseRecord, EntryBody};
use tongban_proto::federation::v1::CaseUpdate;

use crate::ingest::Ingested;
use crate::{NodeError, flow};

use super::{Checked, Patch};

/// Who may say what: the step must be the sender's side's to report, in a
/// state of this node's copy where it can happen, moving it only where
/// that step can (see `tongban_core::authority`). A refusal names the
/// event, the side and the state.
pub(super) fn authorize(case: &CaseRecord, report: &Report) -> Result<(), NodeError> {
    report
        .check(case.side, case.state, case.delivery)
        .map_err(|e| match e {
            AuthorityError::NoLeg { .. } => {
                NodeError::Invalid(format!("case {}: {e}", case.case_no))
            }
            e => NodeError::NotPermitted(format!("case {}: {e}", case.case_no)),
        })
}

/// A report this node sends back when a received envelope changes its side
/// of the case: (event, update, detail).
type Reply = (CaseEvent, CaseUpdate, String);

/// Applies a checked envelope to the case it concerns. Returns the case, the
/// ledger entry kind and detail, a report for the sender if any, and a
/// waybill to index.
/// What applying an envelope came to.
pub(super) struct Applied {
    /// The case as it is now.
    pub(super) case: CaseRecord,
    /// The entry recording the handoff received.
    pub(super) body: EntryBody,
    /// Its detail.
    pub(super) detail: String,
    /// A step this node took on receiving it, to tell the sender.
    pub(super) reply: Option<Reply>,
    /// A waybill to index (a mail leg the update carries).
    pub(super) waybill: Option<String>,
}

pub(super) fn apply_patch(
    checked: &Checked,
    current: Option<CaseRecord>,
    ingested: &Ingested,
    sender: &CountyCode,
    now: &str,
    today: time::Date,
    calendar: &tongban_core::Calendar,
) -> Result<Applied, NodeError> {
    match &checked.patch {
        Patch::Create(case) => {
            if current.is_some() {
                return Err(NodeError::Conflict(format!(
                    "case {} was already received in another handoff",
                    case.case_no
                )));
            }
            let mut case = (**case).clone();
            case.materials = ingested.materials.clone();
            let detail = format!("received from {sender} in handoff {}", checked.handoff_id);
            Ok(Applied {
                case,
                body: EntryBody::HandoffReceived,
                detail,
                reply: None,
                waybill: None,
            })
        }
        Patch::Supplement { fulfils: true } => {
            let mut case = current.ok_or_else(|| {
                NodeError::NotFound(format!("case {} is gone", checked.application_id))
            })?;
            for m in &ingested.materials {
                match case.materials.iter_mut().find(|have| have.kind == m.kind) {
                    Some(slot) => *slot = m.clone(),
                    None => case.materials.push(m.clone()),
                }
            }
            let kinds: Vec<String> = ingested.materials.iter().map(|m| m.kind.clone()).collect();
            let mut detail = format!(
                "committed materials received from {sender} ({})",
                kinds.join(", ")
            );
            let mut outstanding = Vec::new();
            if let Some(c) = &mut case.commitment {
                outstanding = c
                    .kinds
                    .iter()
                    .filter(|k| !case.materials.iter().any(|m| &m.kind == *k))
                    .cloned()
                    .collect();
                if outstanding.is_empty() {
                    c.fulfilled_at = Some(now.to_owned());
                    detail.push_str("; commitment (告知承诺) fulfilled");
                } else {
                    detail.push_str(&format!("; still outstanding: {}", outstanding.join(", ")));
                }
            }
            case.note = detail.clone();
            Ok(Applied {
                case,
                body: EntryBody::CommitmentSupplied {
                    materials: tongban_ledger::entries::facts(&ingested.materials),
                    outstanding,
                },
                detail,
                reply: None,
                waybill: None,
            })
        }
        Patch::Supplement { fulfils: false } => {
            let mut case = current.ok_or_else(|| {
                NodeError::NotFound(format!("case {} is gone", checked.application_id))
            })?;
            if case.state != CaseState::CorrectionRequested {
                return Err(NodeError::Precondition(format!(
                    "case {} is {}; no correction request is open",
                    case.case_no, case.state
                )));
            }
            for m in &ingested.materials {
                match case.materials.iter_mut().find(|have| have.kind == m.kind) {
                    Some(slot) => *slot = m.clone(),
                    None => case.materials.push(m.clone()),
                }
            }
            if let Some(open) = case.review.corrections.last_mut() {
                open.answered_at = Some(now.to_owned());
            }
            let next = if case.review.accepted_at.is_some() {
                CaseState::UnderReview
            } else {
                CaseState::HandedOff
            };
            flow::move_to(&mut case, next)?;
            let mut note = String::new();
            if let Some(left) = case.review.paused_days_left {
                note = flow::start_clock(calendar, &mut case, today, left);
            }
            let kinds: Vec<&str> = ingested.materials.iter().map(|m| m.kind.as_str()).collect();
            let detail = format!("supplement received from {sender} ({})", kinds.join(", "));
            let resumed = match &case.review.due_date {
                Some(due) if case.review.clock_running => {
                    format!("; the clock runs again, due {due}{note}")
                }
                _ => String::new(),
            };
            case.note = format!("{detail}{resumed}");
            let report = (
                CaseEvent::SupplementReceived,
                CaseUpdate {
                    due_date: case.review.due_date.clone().unwrap_or_default(),
                    clock_running: case.review.clock_running,
                    ..Default::default()
                },
                case.note.clone(),
            );
            Ok(Applied {
                case,
                body: EntryBody::SupplementReceived,
                detail,
                reply: Some(report),
                waybill: None,
            })
        }
        Patch::Update(report, update) => {
            let mut case = current.ok_or_else(|| {
                NodeError::NotFound(format!("case {} is gone", checked.application_id))
            })?;
            authorize(&case, report)?;
            let at = if checked.sent_at.is_empty() {
                now
            } else {
                checked.sent_at.as_str()
            };
            let waybill = flow::mirror(&mut case, report.event, update, at)?;
            if report.event == CaseEvent::Approved {
                // The document itself, checked against the declared digest
                // as it arrived (`validate::update_materials`, `ingest`):
                // the window hands it out, so an approval without it is
                // refused rather than half taken.
                let [result] = ingested.materials.as_slice() else {
                    return Err(NodeError::Invalid(format!(
                        "case {}: the approval carries no result document",
                        case.case_no
                    )));
                };
                case.review.result = Some(result.clone());
            }
            let detail = format!("{} at {sender}: {}", update.event, update.detail);
            let body = EntryBody::UpdateReceived {
                event: update.event.clone(),
            };
            Ok(Applied {
                case,
                body,
                detail,
                reply: None,
                waybill,
            })
        }
    }
}
