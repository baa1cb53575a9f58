//! Turning stored records into the views callers see: personal data masked,
//! missing materials listed, history read from the ledger.

use tongban_core::{Directory, Phone, ResidentId, mask_id, mask_phone};
use tongban_ledger::{
    ApplicantRecord, CaseRecord, MaterialRef, Payload, StoredEntry, records::unhex,
};
use tongban_proto::common::v1 as pb;

use crate::ctx::Ctx;
use crate::{NodeError, flow};

/// Material kinds the item requires that the case does not hold.
pub(crate) fn missing(directory: &Directory, case: &CaseRecord) -> Vec<String> {
    directory
        .item(&case.item_code)
        .map(|item| {
            item.materials
                .iter()
                .filter(|m| !case.materials.iter().any(|have| have.kind == m.kind))
                .map(|m| m.kind.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The missing material kinds no open commitment (告知承诺) covers: what
/// still stands between a case at the window and its acceptance.
pub(crate) fn uncommitted(directory: &Directory, case: &CaseRecord) -> Vec<String> {
    let committed = |kind: &String| {
        case.commitment
            .as_ref()
            .is_some_and(|c| c.kinds.contains(kind))
    };
    missing(directory, case)
        .into_iter()
        .filter(|kind| !committed(kind))
        .collect()
}

/// A commitment as sent on the wire.
pub(crate) fn commitment_pb(c: &tongban_ledger::CommitmentRecord) -> pb::Commitment {
    pb::Commitment {
        signer: c.signer.clone(),
        kinds: c.kinds.clone(),
        due_date: c.due_date.clone(),
        signed_at: c.signed_at.clone(),
        by: c.by.clone(),
        fulfilled_at: c.fulfilled_at.clone().unwrap_or_default(),
        days: c.count.as_ref().map_or(0, |n| n.days),
    }
}

/// A material as sent on the wire.
pub(crate) fn digest(m: &MaterialRef) -> pb::MaterialDigest {
    pb::MaterialDigest {
        kind: m.kind.clone(),
        filename: m.filename.clone(),
        size: m.size,
        sha256: unhex(&m.sha256).unwrap_or_default(),
    }
}

/// A material declaration as sent on the wire.
pub(crate) fn header(m: &MaterialRef) -> pb::MaterialHeader {
    pb::MaterialHeader {
        kind: m.kind.clone(),
        filename: m.filename.clone(),
        size: m.size,
        sha256: unhex(&m.sha256).unwrap_or_default(),
    }
}

/// The applicant in full (for the home authority) or masked (for views).
pub(crate) fn applicant(a: &ApplicantRecord, masked: bool) -> pb::Applicant {
    let id = |v: &ResidentId| {
        if masked {
            mask_id(v.as_str())
        } else {
            v.as_str().to_owned()
        }
    };
    let phone = |v: &Phone| {
        if masked {
            mask_phone(v.as_str())
        } else {
            v.as_str().to_owned()
        }
    };
    match a {
        ApplicantRecord::Person {
            name,
            resident_id,
            phone: p,
            address,
        } => pb::Applicant {
            who: Some(pb::applicant::Who::Person(pb::Person {
                name: name.clone(),
                resident_id: id(resident_id),
            })),
            phone: phone(p),
            address: address.clone(),
        },
        ApplicantRecord::Company {
            name,
            credit_code,
            legal_rep_name,
            legal_rep_id,
            phone: p,
            address,
        } => pb::Applicant {
            who: Some(pb::applicant::Who::Company(pb::Company {
                name: name.clone(),
                credit_code: credit_code.to_string(),
                legal_rep_name: legal_rep_name.clone(),
                legal_rep_id: id(legal_rep_id),
            })),
            phone: phone(p),
            address: address.clone(),
        },
    }
}

/// One ledger entry of a case's history as the caller sees it (also the
/// entries a commit is about to write, see `change::save`).
pub(crate) fn event(
    county: &str,
    stored: &StoredEntry,
) -> Result<pb::CaseEvent, tongban_ledger::StoreError> {
    let entry = stored.decode()?;
    let detail = match Payload::decode(&entry.kind, &stored.payload) {
        Ok(payload) => payload.detail,
        // Shown, not hidden: `audit verify` names the entry.
        Err(e) => format!("(entry {}: {e})", entry.seq),
    };
    Ok(pb::CaseEvent {
        at: entry.at,
        county: county.to_owned(),
        actor: entry.actor,
        event: entry.kind,
        detail,
        seq: entry.seq,
        entry_hash: tongban_ledger::chain::entry_hash(&stored.entry).to_vec(),
        state: entry.state,
        payload: stored.payload.to_vec(),
    })
}

/// A case as the caller sees it, with its history from this node's ledger.
pub(crate) fn case_view(
    ctx: &Ctx,
    case: &CaseRecord,
    with_history: bool,
) -> Result<pb::CaseView, NodeError> {
    let (store, directory, county) = (&ctx.store, &ctx.directory, ctx.county.as_str());
    let item = directory.item(&case.item_code);
    let history = if with_history {
        store
            .case_entries(&case.application_id)?
            .iter()
            .map(|stored| event(county, stored))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let review = &case.review;
    Ok(pb::CaseView {
        case_no: case.case_no.to_string(),
        application_id: case.application_id.clone(),
        item_code: case.item_code.to_string(),
        item_name: item.map(|i| i.name.clone()).unwrap_or_default(),
        receiving_county: case.receiving_county.to_string(),
        home_county: case.home_county.to_string(),
        delivery: case.delivery.to_string(),
        state: case.state.as_str().to_owned(),
        missing: missing(directory, case),
        materials: case.materials.iter().map(digest).collect(),
        applicant: Some(applicant(&case.applicant, true)),
        identity_check: case.identity_check.as_ref().map(|c| pb::IdentityCheck {
            method: c.method.clone(),
            by: c.by.clone(),
            at: c.at.clone(),
        }),
        created_at: case.created_at.clone(),
        promised_days: item.map(|i| i.promised_days).unwrap_or_default(),
        note: case.note.clone(),
        history,
        due_date: review.due_date.clone().unwrap_or_default(),
        working_days_left: flow::shown_days_left(&directory.calendar, case, ctx.clock.today()),
        clock_running: review.clock_running,
        corrections: review.corrections.iter().map(flow::correction_pb).collect(),
        licence_no: review.licence_no.clone(),
        result: review.result.as_ref().map(digest),
        denial_reason: review.denial_reason.clone(),
        mail: case.mail.iter().map(flow::mail_leg_pb).collect(),
        paper_received_at: review.paper_received_at.clone().unwrap_or_default(),
        paper_kinds: paper_kinds(directory, case),
        receiving_county_name: county_name(directory, &case.receiving_county),
        home_county_name: county_name(directory, &case.home_county),
        required_materials: item
            .map(|i| {
                i.materials
                    .iter()
                    .map(|m| pb::RequiredMaterial {
                        kind: m.kind.clone(),
                        name: m.name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        commitment: case.commitment.as_ref().map(commitment_pb),
        consultation: case.consultation.as_ref().map(consultation_pb),
        created_at_is_arrival: case.created_at_is_arrival,
    })
}

/// A video consultation as sent on the wire.
pub(crate) fn consultation_pb(c: &tongban_ledger::ConsultationRecord) -> pb::Consultation {
    pb::Consultation {
        at: c.at.clone(),
        reviewer: c.reviewer.clone(),
        outcome: c.outcome.clone(),
        recorded_by: c.recorded_by.clone(),
    }
}

/// A county's name from the directory, empty if it has none there.
pub(crate) fn county_name(directory: &Directory, code: &tongban_core::CountyCode) -> String {
    directory
        .county(code)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// Material kinds of the case's item whose paper originals must be mailed.
pub(crate) fn paper_kinds(directory: &Directory, case: &CaseRecord) -> Vec<String> {
    directory
        .item(&case.item_code)
        .map(|i| {
            i.materials
                .iter()
                .filter(|m| m.paper)
                .map(|m| m.kind.clone())
                .collect()
        })
        .unwrap_or_default()
}
