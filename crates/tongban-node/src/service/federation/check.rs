//! Checking an envelope before its materials are read: the sender from its
//! certificate, the agreement, the applicant, sizes and digests, and
//! deduplication on (sender county, handoff id).

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_core::{CaseEvent, MailLeg, MailStatus, Report};
use tongban_core::{CaseNo, CaseState, CountyCode, ItemCode};
use tongban_ledger::records::hex;
use tongban_ledger::{CaseRecord, CommitmentRecord, ConsultationRecord, IdentityCheckRecord, Side};
use tongban_pki::Principal;
use tongban_proto::common::v1::SignedCheckpoint;
use tongban_proto::federation::v1::refusal::Code;
use tongban_proto::federation::v1::{CaseUpdate, Envelope, envelope::Body};

use crate::change::{self};
use crate::ctx::Ctx;
use crate::protocol::FORMAT_VERSION;
use crate::{NodeError, validate};

use super::{CheckFail, Checked, FederationService, Patch, receipt_result, refusal, refused};

impl FederationService {
    /// Checks an envelope from `sender`; `Err` carries the final result
    /// (refusal or replayed receipt). Large since a receipt carries its
    /// batch's inclusion path; one per envelope, moved once.
    #[allow(clippy::result_large_err)]
    pub(super) fn check(
        &self,
        sender: &CountyCode,
        bytes: &[u8],
    ) -> Result<(Checked, Vec<tongban_proto::common::v1::MaterialHeader>), CheckFail> {
        let ctx = &self.ctx;
        let envelope = Envelope::decode(bytes).map_err(|e| {
            CheckFail::Final(refusal(
                "",
                Code::Invalid,
                format!("envelope does not decode: {e}"),
            ))
        })?;
        let id = envelope.handoff_id.clone();
        // Storage trouble is this node's problem, not the envelope's: the
        // stream fails as UNAVAILABLE and the sender retries it.
        let refuse = |e: NodeError| match e {
            NodeError::Store(_) | NodeError::Unavailable(_) => CheckFail::Retry(e.into()),
            e => CheckFail::Final(refused(&id, &e)),
        };
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(refuse(NodeError::Invalid(format!(
                "handoff id {id:?} is not a UUID"
            ))));
        }
        let envelope_sha = hex(&Sha256::digest(bytes));
        match ctx.store.received(sender.as_str(), &id) {
            Ok(Some(prior)) if prior.envelope_sha256 == envelope_sha => {
                tracing::info!(peer = %sender, handoff = %id, "duplicate handoff, replaying its receipt");
                return Err(CheckFail::Replay(receipt_result(
                    &id,
                    &prior.signed_receipt,
                )));
            }
            Ok(Some(_)) => {
                tracing::warn!(peer = %sender, handoff = %id, "handoff id reused with other content, refused");
                return Err(refuse(NodeError::Conflict(format!(
                    "handoff {id} from {sender} was already received with other content"
                ))));
            }
            Ok(None) => {}
            Err(e) => return Err(refuse(NodeError::Store(e))),
        }
        self.check_new(sender, envelope, envelope_sha)
            .map_err(refuse)
    }

    fn check_new(
        &self,
        sender: &CountyCode,
        envelope: Envelope,
        envelope_sha: String,
    ) -> Result<(Checked, Vec<tongban_proto::common::v1::MaterialHeader>), NodeError> {
        let ctx = &self.ctx;
        if envelope.version != FORMAT_VERSION {
            return Err(NodeError::Invalid(format!(
                "envelope version {} is not supported (this node speaks {FORMAT_VERSION})",
                envelope.version
            )));
        }
        uuid::Uuid::parse_str(&envelope.application_id).map_err(|_| {
            NodeError::Invalid(format!(
                "application id {:?} is not a UUID",
                envelope.application_id
            ))
        })?;
        let case_no =
            CaseNo::parse(&envelope.case_no).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let receiving = validate::county(
            "receiving_county",
            "receiving county",
            &envelope.receiving_county,
        )?;
        let home = validate::county("home_county", "home county", &envelope.home_county)?;
        let claimed_applied_at = match &envelope.body {
            Some(Body::Application(app)) => app.applied_at.clone(),
            _ => String::new(),
        };
        let patch = match envelope.body {
            Some(Body::Application(mut app)) => {
                if &receiving != sender {
                    return Err(NodeError::NotPermitted(format!(
                        "the envelope names receiving county {receiving} but was sent by the node of {sender}"
                    )));
                }
                if home != ctx.county {
                    return Err(NodeError::NotPermitted(format!(
                        "the case's home county is {home}, not this node's county {}",
                        ctx.county
                    )));
                }
                if &case_no.county() != sender {
                    return Err(NodeError::NotPermitted(format!(
                        "case number {case_no} was not issued by {sender}"
                    )));
                }
                let item_code = ItemCode::parse(&app.item_code)
                    .map_err(|e| NodeError::Invalid(format!("item: {e}")))?;
                let item = ctx.directory.item(&item_code).ok_or_else(|| {
                    NodeError::Invalid(format!("item {item_code} is not in the catalogue"))
                })?;
                if !ctx.directory.covers(sender, &home, &item_code) {
                    return Err(NodeError::NotPermitted(format!(
                        "no agreement lets {sender} take in {item_code} for {home}"
                    )));
                }
                let delivery = validate::delivery(item, &app.delivery)?;
                let applicant = validate::applicant(app.applicant.as_ref(), ctx.clock.today())?;
                let check = app.identity_check.ok_or_else(|| {
                    NodeError::Invalid("the application carries no identity check".into())
                })?;
                validate::materials(item, &envelope.materials, &ctx.limits, 0)?;
                let missing: Vec<&str> = item
                    .materials
                    .iter()
                    .filter(|m| !envelope.materials.iter().any(|h| h.kind == m.kind))
                    .map(|m| m.kind.as_str())
                    .collect();
                let consultation = app
                    .consultation
                    .take()
                    .map(|c| {
                        Ok::<_, NodeError>(ConsultationRecord {
                            at: c.at,
                            reviewer: validate::text(
                                "consultation.reviewer",
                                "consultation reviewer",
                                &c.reviewer,
                                validate::SHORT_CHARS,
                            )?,
                            outcome: validate::text(
                                "consultation.outcome",
                                "consultation outcome",
                                &c.outcome,
                                validate::REASON_CHARS,
                            )?,
                            recorded_by: c.recorded_by,
                        })
                    })
                    .transpose()?;
                if item.intake == tongban_core::IntakeMode::VideoConsultation
                    && consultation.is_none()
                {
                    return Err(NodeError::Invalid(format!(
                        "item {item_code} is taken in by video consultation, and the application records none"
                    )));
                }
                // 容缺受理: only waivable materials under a commitment may be missing.
                let commitment =
                    commitment_of(item, app.commitment.take(), &self.ctx.directory.calendar)?;
                if commitment
                    .as_ref()
                    .and_then(|c| c.count.as_ref())
                    .is_some_and(|n| n.calendar.is_empty())
                {
                    crate::recount::count_again_at_next_start(ctx)?;
                }
                let uncovered: Vec<&str> = missing
                    .into_iter()
                    .filter(|kind| {
                        !commitment
                            .as_ref()
                            .is_some_and(|c| c.kinds.iter().any(|k| k.as_str() == *kind))
                    })
                    .collect();
                if !uncovered.is_empty() {
                    return Err(NodeError::Invalid(format!(
                        "the application lacks required materials: {}",
                        uncovered.join(", ")
                    )));
                }
                // 申请时间: the window's, checked; an older window's handoff
                // says none, and then the arrival is recorded as what it is.
                let arrived = ctx.clock.now();
                let (created_at, created_at_is_arrival) = if app.applied_at.is_empty() {
                    (crate::clock::rfc3339(arrived), true)
                } else {
                    let at = validate::applied_at(
                        &app.applied_at,
                        &case_no,
                        &app.accepted_at,
                        arrived,
                        ctx.delivery.receipt_skew,
                    )?;
                    (at, false)
                };
                if ctx.store.case(&envelope.application_id)?.is_some() {
                    return Err(NodeError::Conflict(format!(
                        "case {case_no} ({}) was already received in another handoff",
                        envelope.application_id
                    )));
                }
                Patch::Create(Box::new(CaseRecord {
                    application_id: envelope.application_id.clone(),
                    case_no: case_no.clone(),
                    side: Side::Home,
                    item_code,
                    receiving_county: receiving,
                    home_county: home,
                    delivery,
                    applicant,
                    materials: Vec::new(),
                    identity_check: Some(IdentityCheckRecord {
                        method: check.method,
                        by: check.by,
                        at: check.at,
                    }),
                    state: CaseState::HandedOff,
                    created_at,
                    created_at_is_arrival,
                    accepted_at: Some(app.accepted_at),
                    note: "handed over: waiting for acceptance by a reviewer".into(),
                    handoffs: Vec::new(),
                    review: Default::default(),
                    mail: Vec::new(),
                    closed_at: None,
                    commitment,
                    consultation,
                }))
            }
            Some(Body::Supplement(supplement)) => {
                let case = self.existing(&envelope.application_id, &case_no)?;
                if case.side != Side::Home || case.receiving_county != *sender {
                    return Err(NodeError::NotPermitted(format!(
                        "a supplement for {case_no} comes from its receiving window, not from {sender}"
                    )));
                }
                let item = ctx.directory.item(&case.item_code).ok_or_else(|| {
                    NodeError::Invalid(format!("item {} is not in the catalogue", case.item_code))
                })?;
                let kept: u64 = case
                    .materials
                    .iter()
                    .filter(|m| !envelope.materials.iter().any(|h| h.kind == m.kind))
                    .map(|m| m.size)
                    .sum();
                validate::materials(item, &envelope.materials, &ctx.limits, kept)?;
                let fulfils = supplement.fulfils_commitment;
                if fulfils {
                    let outstanding: Vec<&String> = match &case.commitment {
                        Some(c) if c.fulfilled_at.is_none() => c.kinds.iter().collect(),
                        _ => {
                            return Err(NodeError::Precondition(format!(
                                "case {case_no} has no open commitment (告知承诺) here"
                            )));
                        }
                    };
                    if let Some(h) = envelope
                        .materials
                        .iter()
                        .find(|h| !outstanding.contains(&&h.kind))
                    {
                        return Err(NodeError::Invalid(format!(
                            "material {:?} is not committed for case {case_no}",
                            h.kind
                        )));
                    }
                }
                Patch::Supplement { fulfils }
            }
            Some(Body::Update(update)) => {
                let case = self.existing(&envelope.application_id, &case_no)?;
                if change::peer_of(ctx, &case) != *sender {
                    return Err(NodeError::NotPermitted(format!(
                        "updates for {case_no} come from the county at its other end, not from {sender}"
                    )));
                }
                validate::update(&update)?;
                validate::update_materials(&update, &envelope.materials, &ctx.limits)?;
                // Who may say it is checked when it is applied, under the
                // case's lock and after the stream's earlier envelopes for
                // the same case (an approval and its result leg often
                // travel together).
                let report = report_of(&update)?;
                Patch::Update(report, Box::new(update))
            }
            None => return Err(NodeError::Invalid("the envelope carries nothing".into())),
        };
        Ok((
            Checked {
                handoff_id: envelope.handoff_id,
                envelope_sha,
                application_id: envelope.application_id,
                sent_at: envelope.sent_at,
                patch,
                actor: envelope.actor,
                claimed_applied_at,
            },
            envelope.materials,
        ))
    }

    /// Checks a partner's signed checkpoint is the sender's own and returns
    /// what to keep: (seq, encoded). A bad one is logged and dropped: it
    /// proves nothing. An associated function, so that it can run on a
    /// blocking thread while the stream's envelopes arrive.
    pub(super) fn check_checkpoint(
        ctx: &Ctx,
        sender: &CountyCode,
        signed: &SignedCheckpoint,
    ) -> Option<(u64, Vec<u8>)> {
        let checked = ctx
            .anchor
            .verify_signed(
                &signed.signer_certificate,
                crate::protocol::CHECKPOINT_DOMAIN,
                &signed.checkpoint,
                &signed.signature,
                std::time::SystemTime::now(),
            )
            .map_err(|e| e.to_string())
            .and_then(|signer| match signer.principal {
                Principal::Node { county } if &county == sender => Ok(()),
                _ => Err(format!("signed by {signer}, not by the node of {sender}")),
            })
            .and_then(|()| {
                tongban_proto::common::v1::Checkpoint::decode(signed.checkpoint.as_slice())
                    .map_err(|e| e.to_string())
            })
            .and_then(|cp| {
                if cp.county == sender.as_str() {
                    Ok(cp)
                } else {
                    Err(format!("checkpoint of {} sent by {sender}", cp.county))
                }
            });
        match checked {
            Ok(cp) => Some((cp.seq, signed.encode_to_vec())),
            Err(reason) => {
                tracing::warn!(peer = %sender, %reason, "partner checkpoint rejected");
                None
            }
        }
    }

    /// A case this node already holds.
    fn existing(&self, application_id: &str, case_no: &CaseNo) -> Result<CaseRecord, NodeError> {
        self.ctx.store.case(application_id)?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "case {case_no} ({application_id}) is not on this node"
            ))
        })
    }
}

/// Parses what a partner's update says happened: the event, its mail leg
/// and the state it reports (names exactly as the protocol spells them).
pub(super) fn report_of(update: &CaseUpdate) -> Result<Report, NodeError> {
    let event: CaseEvent = update
        .event
        .parse()
        .map_err(|e| NodeError::Invalid(format!("update event: {e}")))?;
    let (leg, status) = match &update.mail {
        Some(m) => (
            Some(
                m.leg
                    .parse::<MailLeg>()
                    .map_err(|e| NodeError::Invalid(format!("update mail leg: {e}")))?,
            ),
            Some(
                m.status
                    .parse::<MailStatus>()
                    .map_err(|e| NodeError::Invalid(format!("update mail status: {e}")))?,
            ),
        ),
        None => (None, None),
    };
    let state = match update.state.as_str() {
        "" => None,
        s => Some(
            CaseState::parse_wire(s)
                .map_err(|e| NodeError::Invalid(format!("update state: {e}")))?,
        ),
    };
    Ok(Report {
        event,
        leg,
        state,
        status,
    })
}

/// The commitment (告知承诺) an application carries, checked against this
/// node's directory: every committed kind is a waivable material of the
/// item, the deadline a date, the signer plain text.
fn commitment_of(
    item: &tongban_core::Item,
    commitment: Option<tongban_proto::common::v1::Commitment>,
    calendar: &tongban_core::Calendar,
) -> Result<Option<CommitmentRecord>, NodeError> {
    let Some(c) = commitment else {
        return Ok(None);
    };
    if c.kinds.is_empty() {
        return Err(NodeError::Invalid(
            "the application's commitment names no material".into(),
        ));
    }
    for kind in &c.kinds {
        if !item.material(kind).is_some_and(|m| m.waivable) {
            return Err(NodeError::Invalid(format!(
                "the application's commitment names {kind:?}, which is not a waivable material of item {}",
                item.code
            )));
        }
    }
    let Some(due) = crate::flow::parse_date(&c.due_date) else {
        return Err(NodeError::Invalid(format!(
            "the application's commitment deadline {:?} is not a YYYY-MM-DD date",
            c.due_date
        )));
    };
    // Kept so this node can count the deadline again when the calendar
    // changes. Counted here the same, it carries this node's calendar;
    // counted otherwise at the window (another directory), it carries none
    // and is counted again, and the change recorded, at this node's next
    // start.
    let signed_on =
        time::OffsetDateTime::parse(&c.signed_at, &time::format_description::well_known::Rfc3339)
            .map(|t| t.to_offset(crate::clock::CST).date());
    let count = match signed_on {
        Ok(from) if c.days > 0 => {
            let mut count = crate::flow::count(calendar, from, c.days, due);
            if calendar.add_working_days(from, c.days) != due {
                count.calendar.clear();
            }
            Some(count)
        }
        _ => None,
    };
    let signer = validate::text(
        "commitment.signer",
        "commitment signer",
        &c.signer,
        validate::SHORT_CHARS,
    )?;
    Ok(Some(CommitmentRecord {
        signer,
        kinds: c.kinds,
        due_date: c.due_date,
        signed_at: c.signed_at,
        by: c.by,
        fulfilled_at: None,
        count,
    }))
}

/// The checkpoint of each partner last checked and kept, and when: a
/// sender sends its latest until its head has moved and a new one is
/// signed, so most streams carry the one the stream before did. That one is
/// neither verified again nor written again. Bytes that differ in anything
/// are checked as new; a kept one is trusted for [`KnownCheckpoints::FOR`]
/// only, so that a certificate that has expired since is still noticed.
#[derive(Default)]
pub(super) struct KnownCheckpoints {
    kept: std::sync::Mutex<std::collections::HashMap<CountyCode, (Vec<u8>, std::time::Instant)>>,
}

impl KnownCheckpoints {
    /// How long a checked checkpoint is taken again without a check.
    const FOR: std::time::Duration = std::time::Duration::from_secs(60);

    /// Whether `sender` sent exactly this checkpoint before, recently, and
    /// it was checked and kept.
    pub(super) fn known(&self, sender: &CountyCode, signed: &SignedCheckpoint) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(sender)
            .is_some_and(|(bytes, at)| at.elapsed() < Self::FOR && *bytes == signed.encode_to_vec())
    }

    /// `sender`'s checkpoint (encoded, as checked) is kept in the store.
    pub(super) fn kept(&self, sender: &CountyCode, encoded: Vec<u8>) {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sender.clone(), (encoded, std::time::Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(seq: u8) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: vec![seq; 8],
            signature: vec![1, 2, 3],
            signer_certificate: vec![4, 5, 6],
        }
    }

    #[test]
    fn only_the_same_checkpoint_from_the_same_sender_once_kept_is_known() {
        let known = KnownCheckpoints::default();
        let (a, b): (CountyCode, CountyCode) =
            ("610702".parse().unwrap(), "610113".parse().unwrap());
        assert!(!known.known(&a, &signed(1)), "nothing kept yet");
        known.kept(&a, signed(1).encode_to_vec());
        assert!(known.known(&a, &signed(1)));
        assert!(!known.known(&a, &signed(2)), "another checkpoint");
        assert!(!known.known(&b, &signed(1)), "another sender");
        let mut other_signature = signed(1);
        other_signature.signature.push(0);
        assert!(!known.known(&a, &other_signature), "one byte differs");
        // The next one replaces it.
        known.kept(&a, signed(2).encode_to_vec());
        assert!(known.known(&a, &signed(2)) && !known.known(&a, &signed(1)));
    }
}
